//! The streaming replicas of the PostgreSQL server under test, as tests drive them (xtask's
//! `pg` module starts both): the shared one with SQL only (see [`crate::pg_replica`]), and a
//! spare one that a test may really stop and start ([`spare_replica`]), since stopping the
//! shared one would fail the other tests reading from it.

use crate::{Backend, REQUIRE_PG_VAR, TestDb, TestkitError, backends, plain_connection};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, MutexGuard};

/// Names the spare replica's admin URL (a streaming replica of `ACCOUNT_TEST_PG_URL`'s
/// server beside the shared one), for the tests that stop a replica.
pub const SPARE_REPLICA_URL_VAR: &str = "ACCOUNT_TEST_PG_SPARE_REPLICA_URL";
/// The spare replica's data directory (its server log is `server.log` beside it).
pub const SPARE_REPLICA_DATA_VAR: &str = "ACCOUNT_TEST_PG_SPARE_REPLICA_DATA";
/// The `pg_ctl` that controls the spare replica.
pub const SPARE_REPLICA_PG_CTL_VAR: &str = "ACCOUNT_TEST_PG_SPARE_REPLICA_PG_CTL";
/// The account to run that `pg_ctl` as (with `runuser`, when we are root and the server is
/// not: PostgreSQL refuses to run as root); unset or empty, as ourselves.
pub const SPARE_REPLICA_RUN_AS_VAR: &str = "ACCOUNT_TEST_PG_SPARE_REPLICA_RUN_AS";

/// How long the helpers wait for the replica before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

async fn text(conn: &DatabaseConnection, sql: &str) -> Result<Option<String>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(row.and_then(|row| row.try_get_by_index::<Option<String>>(0).ok().flatten()))
}

fn timed_out(what: &str) -> TestkitError {
    TestkitError::Database(DbErr::Custom(format!(
        "the replica did not {what} within {PATIENCE:?}"
    )))
}

impl TestDb {
    /// This database's URL on the replica whose admin URL is `replica_admin_url`, once the
    /// replica has replayed everything committed on the primary so far (its creation, our
    /// schema, the test's rows). PostgreSQL only: an error on SQLite.
    pub async fn caught_up_replica(&self, replica_admin_url: &str) -> Result<String, TestkitError> {
        let url = self.replica_url(replica_admin_url).ok_or_else(|| {
            TestkitError::Database(DbErr::Custom("replicas are PostgreSQL's".into()))
        })?;
        let written = text(self.conn(), "SELECT pg_current_wal_insert_lsn()::text")
            .await?
            .unwrap_or_default();
        let caught_up = format!("SELECT (pg_last_wal_replay_lsn() >= '{written}')::text");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(replica) = plain_connection(&url).await {
                let done = text(&replica, &caught_up).await;
                let _ = replica.close().await;
                if matches!(done.as_ref().map(Option::as_deref), Ok(Some("true"))) {
                    return Ok(url);
                }
            }
            if Instant::now() > deadline {
                return Err(timed_out("catch up"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Pauses of replay in this process, one at a time: replay is paused for the whole replica,
/// so one test's guard resuming it would end another test's pause while it expects a lag.
static PAUSES: Mutex<()> = Mutex::const_new(());

/// Replay paused on a replica ([`pause_replay`]); resumed when dropped, whatever the test
/// did meanwhile (on a thread with a runtime of its own, as the test's may be ending).
#[derive(Debug)]
#[must_use = "replay resumes when this is dropped"]
pub struct ReplayPaused {
    url: String,
    /// This process's turn to pause, given up once replay has resumed (fields drop after
    /// `Drop::drop`).
    _turn: MutexGuard<'static, ()>,
}

/// Pauses WAL replay on the replica at `url` (`pg_wal_replay_pause()`, as a superuser) and
/// returns once it is paused: the replica then lags the primary until the guard drops.
/// Pauses within one test binary take turns: this waits while another guard is alive (so a
/// test must not pause twice at once).
pub async fn pause_replay(url: &str) -> Result<ReplayPaused, TestkitError> {
    let turn = PAUSES.lock().await;
    let replica = plain_connection(url).await?;
    replica
        .execute_unprepared("SELECT pg_wal_replay_pause()")
        .await?;
    let guard = ReplayPaused {
        url: url.to_owned(),
        _turn: turn,
    };
    let deadline = Instant::now() + PATIENCE;
    while text(&replica, "SELECT pg_get_wal_replay_pause_state()")
        .await?
        .as_deref()
        != Some("paused")
    {
        if Instant::now() > deadline {
            return Err(timed_out("pause"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = replica.close().await;
    Ok(guard)
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let replica = plain_connection(&url).await.ok()?;
                let resumed = replica
                    .execute_unprepared("SELECT pg_wal_replay_resume()")
                    .await;
                let _ = replica.close().await;
                resumed.ok()
            })
        })
        .join();
    }
}

/// Users of the spare replica in this process, one at a time for as long as they hold it:
/// it is down while one of them has it stopped.
static SPARE: Mutex<()> = Mutex::const_new(());

/// How the spare replica's server is controlled: its own `pg_ctl` on its data directory.
#[derive(Clone, Debug)]
struct PgCtl {
    program: PathBuf,
    data: PathBuf,
    run_as: Option<String>,
}

fn spare_error(message: impl Into<String>) -> TestkitError {
    TestkitError::SpareReplica(message.into())
}

impl PgCtl {
    fn from_env() -> Result<Self, TestkitError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let missing = |name: &str| {
            spare_error(format!(
                "{SPARE_REPLICA_URL_VAR} is set but {name} is not; export all that \
                 `cargo xtask pg start` prints"
            ))
        };
        Ok(Self {
            program: var(SPARE_REPLICA_PG_CTL_VAR)
                .ok_or_else(|| missing(SPARE_REPLICA_PG_CTL_VAR))?
                .into(),
            data: var(SPARE_REPLICA_DATA_VAR)
                .ok_or_else(|| missing(SPARE_REPLICA_DATA_VAR))?
                .into(),
            run_as: var(SPARE_REPLICA_RUN_AS_VAR),
        })
    }

    /// `pg_ctl -D <data> <args>`, run from the data directory's parent (the server's account
    /// may not be allowed into our working directory).
    fn run(&self, args: &[&str]) -> Result<Output, TestkitError> {
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        if let Some(parent) = self.data.parent() {
            command.current_dir(parent);
        }
        command.arg("-D").arg(&self.data).args(args);
        command
            .output()
            .map_err(|e| spare_error(format!("{command:?}: {e}")))
    }

    fn run_ok(&self, args: &[&str]) -> Result<(), TestkitError> {
        let output = self.run(args)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(spare_error(format!(
                "pg_ctl {args:?}: {}; {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Whether the server runs (`pg_ctl status`: 0 it does, 3 it does not).
    fn is_running(&self) -> Result<bool, TestkitError> {
        let output = self.run(&["status"])?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(spare_error(format!(
                "pg_ctl status: {}; {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))),
        }
    }

    /// Stops the server the way an operator would (`-m fast`: sessions are ended, a
    /// restartpoint is written) and waits until it is down.
    fn stop(&self) -> Result<(), TestkitError> {
        self.run_ok(&["stop", "-m", "fast", "-w", "-t", "60"])
    }

    /// Starts the server if it is down and waits until it accepts connections. `restart`
    /// rather than `start`: on a stopped server it starts it with the options it last ran
    /// with (`postmaster.opts`: port, socket directory, settings), which xtask passed on the
    /// command line and a plain `start` would not know.
    fn start_if_down(&self) -> Result<(), TestkitError> {
        if self.is_running()? {
            return Ok(());
        }
        let log = self.data.with_file_name("server.log");
        let log = log.to_string_lossy();
        self.run_ok(&["restart", "-w", "-t", "60", "-l", &log])
    }
}

/// Runs `work` (a `pg_ctl` call, which blocks for up to seconds) off the async threads.
async fn blocking(
    work: impl FnOnce() -> Result<(), TestkitError> + Send + 'static,
) -> Result<(), TestkitError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| spare_error(format!("pg_ctl task: {e}")))?
}

/// Waits until the replica at `admin_url` accepts connections and streams from its primary
/// (`pg_stat_wal_receiver`).
async fn wait_for_streaming(admin_url: &str) -> Result<(), TestkitError> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(replica) = plain_connection(admin_url).await {
            let status = text(&replica, "SELECT status FROM pg_stat_wal_receiver").await;
            let _ = replica.close().await;
            if matches!(status.as_ref().map(Option::as_deref), Ok(Some("streaming"))) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(timed_out("stream again"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The spare replica, held by one test of this process at a time ([`spare_replica`]), which
/// may [stop](SpareReplica::stop) and [start](SpareReplica::start) it. Dropped while stopped
/// (a failed assertion, a panic), it starts the replica again before the next test gets it.
#[derive(Debug)]
#[must_use = "the spare replica is given up when this is dropped"]
pub struct SpareReplica {
    admin_url: String,
    pg_ctl: PgCtl,
    /// Whether it may be down: set before a stop is attempted, cleared once it streams again.
    stopped: bool,
    /// This test's turn, given up after the replica is started again (fields drop after
    /// `Drop::drop`).
    _turn: MutexGuard<'static, ()>,
}

/// The spare replica of the PostgreSQL server under test (`ACCOUNT_TEST_PG_SPARE_REPLICA_URL`
/// and the variables beside it, which `cargo xtask pg start` and `cargo xtask ci` set), for a
/// test that stops a replica: waits for the previous holder in this process to give it up,
/// and returns it running and streaming (started first if a test binary killed while it was
/// stopped left it down). `None` to skip such tests (PostgreSQL is not under test, or no
/// spare replica is named and PostgreSQL is not required); an error when PostgreSQL is
/// required (`ACCOUNT_TEST_REQUIRE_PG=1`) but none is named, or it cannot be started.
///
/// Its admin URL names a superuser session; a test database's copy on it is
/// [`TestDb::caught_up_replica`] of [`SpareReplica::admin_url`]. Test binaries run one after
/// another, so holding it within this process is holding it.
pub async fn spare_replica() -> Result<Option<SpareReplica>, TestkitError> {
    let Some(Backend::Postgres { .. }) = backends()?.into_iter().find(|b| b.name() == "postgres")
    else {
        return Ok(None);
    };
    let admin_url = match std::env::var(SPARE_REPLICA_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var(REQUIRE_PG_VAR).is_ok_and(|v| v == "1") => {
            return Err(TestkitError::SpareReplicaRequired);
        }
        _ => return Ok(None),
    };
    let mut spare = SpareReplica {
        admin_url,
        pg_ctl: PgCtl::from_env()?,
        // Unknown until checked: the drop must start it if the check fails half way.
        stopped: true,
        _turn: SPARE.lock().await,
    };
    spare.start().await?;
    Ok(Some(spare))
}

impl SpareReplica {
    /// The replica's admin URL (a superuser session on its `postgres` database).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Stops the replica's server (`pg_ctl stop -m fast`: its sessions are ended) and returns
    /// once it is down. It stays down until [`SpareReplica::start`] or this value's drop.
    pub async fn stop(&mut self) -> Result<(), TestkitError> {
        self.stopped = true;
        let pg_ctl = self.pg_ctl.clone();
        blocking(move || pg_ctl.stop()).await
    }

    /// Starts the replica's server if it is down, with the options it ran with, and returns
    /// once it accepts connections and streams from the primary again (it may still be
    /// replaying what it missed).
    pub async fn start(&mut self) -> Result<(), TestkitError> {
        let pg_ctl = self.pg_ctl.clone();
        blocking(move || pg_ctl.start_if_down()).await?;
        wait_for_streaming(&self.admin_url).await?;
        self.stopped = false;
        Ok(())
    }
}

impl Drop for SpareReplica {
    /// Starts the replica again if it may be down, on a thread with a runtime of its own (the
    /// test's may be ending), before the next holder's turn.
    fn drop(&mut self) {
        if !self.stopped {
            return;
        }
        let pg_ctl = self.pg_ctl.clone();
        let admin_url = self.admin_url.clone();
        let started = std::thread::spawn(move || {
            pg_ctl.start_if_down()?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| spare_error(format!("a runtime to wait for the replica: {e}")))?
                .block_on(wait_for_streaming(&admin_url))
        })
        .join();
        if let Ok(Err(error)) = started {
            // Nobody else sees this failure: the next holder would only find it down.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("the spare replica could not be started again: {error}");
            }
        }
    }
}
