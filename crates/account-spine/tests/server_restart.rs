//! The PostgreSQL server crashes and comes back during a mixed workload (run admissions,
//! completions, key issuances; the workload of `connection_faults.rs`).
//!
//! The test crash-stops the very server `ACCOUNT_TEST_PG_URL` points to
//! (`pg_ctl stop -m immediate`), keeps it down while the callers keep calling, and restarts it
//! with the options it ran with. Every call must return in time, without a panic, either `Ok`
//! or `storage_unavailable` (503); at least one call in flight during the outage must have
//! failed (the outage reached the spine); once the server is back, each kind of call succeeds
//! again within [`RECOVERY_LIMIT`] and every later call succeeds; and afterwards the counters
//! equal the admitted runs, every committed change has exactly one audit row and every
//! acknowledged change is stored.
//!
//! A restart breaks every connection on the server, so this file holds one test only (cargo
//! runs test binaries one after another) and brings the server back up even when the test
//! fails. It finds the server's data directory and `pg_ctl` through the admin connection and
//! needs to reach them: run it on the server's host, as the server's owner or as root (then it
//! runs `pg_ctl` as the owner with `runuser`). Skipped, with the reason printed, when no
//! PostgreSQL is configured.
//!
//! The spine's sessions commit with `synchronous_commit = on` (production's default; the test
//! server runs with it off): with it off, the crash loses commits already acknowledged, which
//! the after-checks catch ("Admitted(..) is not stored", 4 runs out of 4).
//!
//! Measured on the 2-core build host: about 4.2 s in all, 260 to 450 calls, of the about 20 in
//! flight while the server was down (1.7 to 1.9 s) 11 to 14 failed, all 503, and every kind of
//! call succeeded again 40 to 90 ms after the server was back.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout, clippy::print_stderr)] // figures and a skip's reason are the report

mod fault_workload;

use fault_workload::{
    CALL_TIMEOUT, Call, Timed, assert_every_change_whole, caller, each_kind_once, env_with, failed,
    owner, tenant,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the workload runs before the crash, and on after recovery.
const STEADY: Duration = Duration::from_secs(1);
/// How long the server stays down while the callers keep calling.
const DOWNTIME: Duration = Duration::from_millis(1500);
/// How soon after the server is back every kind of call must succeed again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// The server behind the admin connection, driven with its own `pg_ctl`.
struct Server {
    pg_ctl: PathBuf,
    data: PathBuf,
    /// The server's account, when we are root (PostgreSQL refuses to run as root).
    run_as: Option<String>,
}

async fn setting(admin: &DatabaseConnection, sql: &str, column: &str) -> String {
    let row = admin
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e} (the admin connection must be a superuser's)"))
        .unwrap();
    row.try_get::<String>("", column).unwrap()
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Server {
    async fn behind(admin: &DatabaseConnection) -> Self {
        let data = PathBuf::from(setting(admin, "SHOW data_directory", "data_directory").await);
        let bin = setting(
            admin,
            "SELECT setting FROM pg_config WHERE name = 'BINDIR'",
            "setting",
        )
        .await;
        let pg_ctl = Path::new(&bin).join("pg_ctl");
        let unreachable = |what: &Path, e: std::io::Error| -> ! {
            panic!(
                "PostgreSQL is configured but {} is not reachable from here ({e}); the restart \
                 test must run on the server's host, as the server's owner or as root",
                what.display()
            )
        };
        let owner = std::fs::metadata(&data)
            .unwrap_or_else(|e| unreachable(&data, e))
            .uid();
        if let Err(e) = std::fs::metadata(&pg_ctl) {
            unreachable(&pg_ctl, e);
        }
        let me: u32 = output("id", &["-u"]).parse().unwrap();
        let run_as = if me == owner {
            None
        } else if me == 0 {
            Some(output("id", &["-nu", &owner.to_string()]))
        } else {
            panic!(
                "{} belongs to uid {owner} and we are uid {me}: run the restart test as the \
                 server's owner or as root",
                data.display()
            )
        };
        Self {
            pg_ctl,
            data,
            run_as,
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&self.pg_ctl);
                command
            }
            None => Command::new(&self.pg_ctl),
        };
        // The server's account may not be allowed into our working directory.
        let root = self.data.parent().unwrap();
        command
            .current_dir(root)
            .arg("-D")
            .arg(&self.data)
            .args(args);
        let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{command:?}: {out:?}"))
        }
    }

    /// Stops the server the way a crash would (no checkpoint, every backend killed at once).
    /// Until [`Outage::end`], dropping the outage brings the server back.
    fn crash(&self) -> Outage<'_> {
        let outage = Outage {
            server: self,
            over: false,
        };
        tokio::task::block_in_place(|| self.pg_ctl(&["stop", "-m", "immediate", "-w"]))
            .unwrap_or_else(|e| panic!("crash-stopping PostgreSQL failed: {e}"));
        outage
    }

    /// Starts the stopped server again and waits until it accepts connections. `restart`
    /// reads `postmaster.opts`, so the server comes back with the port, socket directory and
    /// settings it ran with.
    fn start(&self) -> Result<(), String> {
        let log = self.data.parent().unwrap().join("server.log");
        self.pg_ctl(&["-w", "-t", "60", "-l", log.to_str().unwrap(), "restart"])
    }
}

/// The server is down until this ends; later test binaries need it up, so a failing
/// assertion brings it back too.
struct Outage<'a> {
    server: &'a Server,
    over: bool,
}

impl Outage<'_> {
    fn end(mut self) {
        tokio::task::block_in_place(|| self.server.start())
            .unwrap_or_else(|e| panic!("restarting PostgreSQL failed: {e}"));
        self.over = true;
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        if !self.over
            && let Err(e) = self.server.start()
        {
            eprintln!("PostgreSQL could not be restarted after the failed test: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_server_fails_calls_with_503_then_serves_them_with_every_change_whole() {
    let Some(backend) = fault_workload::postgres("a restart needs a server to restart") else {
        return;
    };
    // Production's commit setting (the test server runs without it): a commit is
    // acknowledged only once it is in the WAL, so the crash cannot take an acknowledged one.
    let env = env_with(&backend, &[("synchronous_commit", "on")]).await;
    let server = Server::behind(&env.admin).await;
    let spine_session = Database::connect(env.spine_url.as_str()).await.unwrap();
    assert_eq!(
        setting(
            &spine_session,
            "SHOW synchronous_commit",
            "synchronous_commit"
        )
        .await,
        "on"
    );
    spine_session.close().await.unwrap();
    let conn = env.db.conn();
    let (tenant, owners) = tenant(conn, 1).await;
    let principal = owner(tenant, owners[0]);
    let started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..6)
        .map(|_| tokio::spawn(caller(env.spine.clone(), principal.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(STEADY).await;

    let down_from = Instant::now();
    let outage = server.crash();
    tokio::time::sleep(DOWNTIME).await;
    outage.end();
    let back_at = Instant::now();

    // Recovery: each kind of call succeeds again, in bounded time.
    let mut acknowledged = Vec::new();
    let mut probes = Vec::new();
    let recovered_at = loop {
        let probe_started = Instant::now();
        let attempt = tokio::time::timeout(
            CALL_TIMEOUT,
            each_kind_once(&env.spine, &principal, &mut acknowledged),
        )
        .await
        .unwrap_or_else(|_| panic!("a call hung for more than {CALL_TIMEOUT:?} after the restart"));
        match attempt {
            Ok(()) => break Instant::now(),
            Err(error) => probes.push(Timed {
                call: failed(&error),
                started: probe_started,
                finished: Instant::now(),
            }),
        }
        assert!(
            back_at.elapsed() < RECOVERY_LIMIT,
            "the spine still fails {RECOVERY_LIMIT:?} after the server came back: {:?}",
            probes.last()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(STEADY).await;
    stop.store(true, Ordering::SeqCst);
    let mut calls = probes;
    for caller in callers {
        calls.extend(caller.await.expect("a caller panicked"));
    }

    // Every failure, down or not, is one the API answers with 503 (the client may retry).
    let mut failures: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for timed in &calls {
        if let Call::Failed(code, status, debug) = &timed.call {
            *failures.entry((code, *status)).or_default() += 1;
            if (*code, *status) != ("storage_unavailable", 503) {
                unexpected.push(debug.clone());
            }
        }
    }
    let is_failure = |t: &&Timed| matches!(t.call, Call::Failed(..));
    let during = calls.iter().filter(|t| t.overlaps(down_from, back_at));
    let (during, failed_during) = (during.clone().count(), during.filter(is_failure).count());
    let after: Vec<_> = calls.iter().filter(|t| t.started >= recovered_at).collect();
    let failed_after: Vec<_> = after.iter().copied().filter(is_failure).collect();
    println!(
        "{} calls, {during} in flight while the server was down ({:.2?}), {failed_during} of \
         them failed; failures by (code, status): {failures:?}; every kind of call succeeded \
         {:.2?} after the server was back; {} calls after that",
        calls.len(),
        back_at - down_from,
        recovered_at - back_at,
        after.len()
    );
    assert!(
        unexpected.is_empty(),
        "{} failures are not 503 storage_unavailable: {:#?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    assert!(
        failed_during > 0,
        "{during} calls were in flight while the server was down and none failed: the outage \
         never reached the spine"
    );
    assert!(
        !after.is_empty() && failed_after.is_empty(),
        "after recovery, {} of {} calls failed (connections left dead in the pool?): {:?}",
        failed_after.len(),
        after.len(),
        failed_after.first()
    );

    let mut calls: Vec<Call> = calls.into_iter().map(|t| t.call).collect();
    calls.append(&mut acknowledged);
    assert_every_change_whole(conn, tenant, &calls).await;
    println!("server restart: {:.2?} in all", started.elapsed());
}
