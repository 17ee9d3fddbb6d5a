//! A throwaway PostgreSQL server for the test suite.
//!
//! The machine has PostgreSQL's binaries (Debian's packages) but no running server, and the
//! server refuses to run as root. So the kit initialises a fresh cluster in a temporary
//! directory owned by an unprivileged user, starts it on a free loopback port with trust
//! authentication, and removes it all when the [`Postgres`] value is dropped, whether the tests
//! passed or not. Durability is switched off for tests (this cluster only ever holds test
//! data); benchmarks ask for a durable one ([`Durability::On`]) so commit costs are real.
//!
//! [`Postgres::start_replica`] adds a streaming replica of such a cluster (`pg_basebackup`,
//! then a hot standby on a port of its own), for the read-replica tests (exported as
//! `ACCOUNT_TEST_PG_REPLICA_URL`) and `cargo xtask cluster`. This is the one place a replica
//! is made; tests drive it through SQL only (pausing replay, reading positions). The tests get
//! a second one, [`Postgres::start_spare_replica`], which they may stop and start with its own
//! `pg_ctl` (the shared one serves other tests meanwhile): [`Postgres::spare_replica_env`].

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::util::{free_port, run_command, target_dir};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The unprivileged account the server runs as when we are root.
const SERVER_USER: &str = "postgres";

/// The variable naming the replica's admin URL for the tests (`account_testkit` reads it).
pub const REPLICA_URL_VAR: &str = "ACCOUNT_TEST_PG_REPLICA_URL";

/// The variables naming the spare replica for the tests that stop it (`account_testkit`'s
/// `replica::spare_replica` reads them): its admin URL, its data directory, its `pg_ctl`, and
/// the account to run that as (empty: the caller's own).
pub const SPARE_REPLICA_VARS: [&str; 4] = [
    "ACCOUNT_TEST_PG_SPARE_REPLICA_URL",
    "ACCOUNT_TEST_PG_SPARE_REPLICA_DATA",
    "ACCOUNT_TEST_PG_SPARE_REPLICA_PG_CTL",
    "ACCOUNT_TEST_PG_SPARE_REPLICA_RUN_AS",
];

/// The spare replica's replication slot on the primary: the primary keeps the WAL the spare
/// has not received while a test holds it stopped (without it a checkpoint in that window
/// could recycle a segment the spare still needs, and it would never stream again).
const SPARE_SLOT: &str = "account_spare_replica";

/// Whether commits reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `fsync=off`, `synchronous_commit=off`: fast, for tests.
    Off,
    /// `fsync=on`, `synchronous_commit=on`, `shared_buffers=1GB`: production-like commit cost,
    /// for benchmarks (the settings the perf anchors were measured with).
    On,
}

/// A running throwaway cluster; dropping it stops the server and deletes its files.
#[derive(Debug)]
pub struct Postgres {
    bin_dir: PathBuf,
    root: PathBuf,
    port: u16,
    run_as: Option<String>,
    durability: Durability,
    stopped: bool,
}

impl Postgres {
    /// Initialises and starts a new cluster without durability (tests).
    pub fn start() -> Result<Self> {
        Self::start_with(Durability::Off)
    }

    /// Initialises and starts a new cluster, installing PostgreSQL with apt when missing.
    pub fn start_with(durability: Durability) -> Result<Self> {
        let bin_dir = match find_bin_dir() {
            Some(dir) => dir,
            None => {
                install_with_apt()?;
                find_bin_dir().context("PostgreSQL binaries not found after apt-get install")?
            }
        };
        let run_as = if is_root()? {
            ensure_user(SERVER_USER)?;
            Some(SERVER_USER.to_owned())
        } else {
            None
        };
        let port = free_port()?;
        let root = std::env::temp_dir().join(format!("account-pg-{}-{port}", std::process::id()));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        let server = Self {
            bin_dir,
            root,
            port,
            run_as,
            durability,
            stopped: false,
        };
        server.chown_root()?;
        server.initdb()?;
        server.pg_ctl_start()?;
        Ok(server)
    }

    /// The admin URL tests create their databases from.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn chown_root(&self) -> Result<()> {
        if let Some(user) = &self.run_as {
            run_command(Command::new("chown").arg("-R").arg(user).arg(&self.root))?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn initdb(&self) -> Result<()> {
        let mut command = self.command("initdb");
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null());
        run_command(&mut command).context("initdb failed")
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let durability = match self.durability {
            Durability::Off => "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            Durability::On => "-c fsync=on -c synchronous_commit=on -c shared_buffers=1GB",
        };
        // A hot standby needs max_connections at least the primary's: both use this line.
        // On a standby, replay waits at most 1 s for sessions it conflicts with (the tests
        // drop their databases while the replica may still hold sessions on them; the
        // default 30 s stalled every other test's wait for the replica), and the standby
        // tells the primary which rows it still reads, so cleanup does not conflict.
        let options = format!(
            "-p {port} -k {socket} -c listen_addresses=127.0.0.1 -c max_connections=400 \
             -c max_standby_streaming_delay=1s -c hot_standby_feedback=on {durability}",
            port = self.port,
            socket = self.root.display(),
        );
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.root.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null());
        run_command(&mut command).with_context(|| {
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            format!("pg_ctl start failed; server log:\n{log}")
        })
    }

    /// Stops the server and removes its files; idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        // The spare replica may be down already (a test binary killed while it held it
        // stopped); its files must go all the same.
        let stopped = if self.is_running().unwrap_or(true) {
            let mut command = self.command("pg_ctl");
            command
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null());
            run_command(&mut command)
        } else {
            Ok(())
        };
        std::fs::remove_dir_all(&self.root)
            .with_context(|| format!("removing {}", self.root.display()))?;
        stopped
    }

    /// Whether a server runs on the data directory (`pg_ctl status`: 3 means none does).
    fn is_running(&self) -> Result<bool> {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running pg_ctl status")?;
        Ok(status.code() != Some(3))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("warning: stopping the throwaway PostgreSQL failed: {error:#}");
        }
    }
}

impl Postgres {
    /// Starts a streaming replica of this cluster on a free port: a base backup with
    /// `pg_basebackup -R -X stream -c fast` (the default `pg_hba.conf` of a trust cluster
    /// allows local replication), started as a hot standby, returned once it reports
    /// `streaming` (`pg_stat_wal_receiver`). It has the primary's durability. Dropping it
    /// stops it and deletes its files.
    pub fn start_replica(&self) -> Result<Postgres> {
        self.replica("replica", None)
    }

    /// A second replica like [`Postgres::start_replica`], for the tests that stop and start
    /// it ([`Postgres::spare_replica_env`]), streaming through a replication slot of its own
    /// so that it catches up after any pause. At most one per primary (one slot name).
    pub fn start_spare_replica(&self) -> Result<Postgres> {
        self.replica("spare", Some(SPARE_SLOT))
    }

    /// What the tests need to stop and start this (spare) replica themselves, as
    /// [`SPARE_REPLICA_VARS`] name them: its admin URL, data directory, `pg_ctl`, and the
    /// account to run it as (empty when not root).
    pub fn spare_replica_env(&self) -> [(&'static str, String); 4] {
        let [url, data, pg_ctl, run_as] = SPARE_REPLICA_VARS;
        [
            (url, self.url()),
            (data, self.data_dir().display().to_string()),
            (pg_ctl, self.bin_dir.join("pg_ctl").display().to_string()),
            (run_as, self.run_as.clone().unwrap_or_default()),
        ]
    }

    /// A replica in `account-pg-<kind>-<pid>-<port>`, through the replication slot `slot`
    /// (created by the base backup) if any.
    fn replica(&self, kind: &str, slot: Option<&str>) -> Result<Postgres> {
        let port = free_port()?;
        let root =
            std::env::temp_dir().join(format!("account-pg-{kind}-{}-{port}", std::process::id()));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        let replica = Self {
            bin_dir: self.bin_dir.clone(),
            root,
            port,
            run_as: self.run_as.clone(),
            durability: self.durability,
            stopped: false,
        };
        replica.chown_root()?;
        let mut backup = replica.command("pg_basebackup");
        backup
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("-D")
            .arg(replica.data_dir())
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
            .stdout(Stdio::null());
        if let Some(slot) = slot {
            // `-R` then names the slot in the replica's configuration.
            backup.args(["-C", "-S", slot]);
        }
        run_command(&mut backup).context("pg_basebackup failed")?;
        replica.pg_ctl_start()?;
        replica.wait_for_streaming()?;
        Ok(replica)
    }

    /// Waits (up to a minute) until this replica streams from its primary (asked of the
    /// replica: the primary's `pg_stat_replication` cannot tell two replicas apart).
    fn wait_for_streaming(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let output = self
                .command("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .args([
                    "-d",
                    "postgres",
                    "-Atc",
                    "SELECT status FROM pg_stat_wal_receiver",
                ])
                .output()
                .context("running psql")?;
            if String::from_utf8_lossy(&output.stdout).trim() == "streaming" {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("the replica did not stream within 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The admin URL of this server with the database part `database`.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The state file's lines for this server (bin dir, root, port).
    fn state_lines(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.bin_dir.display(),
            self.root.display(),
            self.port
        )
    }

    /// A server recorded by [`Postgres::state_lines`], to stop it.
    fn from_state(lines: &mut std::str::Lines<'_>) -> Result<Option<Self>> {
        let (Some(bin_dir), Some(root), Some(port)) = (lines.next(), lines.next(), lines.next())
        else {
            return Ok(None);
        };
        Ok(Some(Postgres {
            bin_dir: bin_dir.into(),
            root: root.into(),
            port: port.parse()?,
            run_as: if is_root()? {
                Some(SERVER_USER.to_owned())
            } else {
                None
            },
            durability: Durability::Off,
            stopped: false,
        }))
    }
}

/// `cargo xtask pg start|stop`: a server, a streaming replica of it and a spare replica (for
/// the tests that stop one) for local test runs, kept until `stop`.
pub fn run(args: &[String]) -> Result<u8> {
    let state = state_file()?;
    match args.first().map(String::as_str) {
        Some("start") => {
            if state.exists() {
                bail!(
                    "already running (see {}); `cargo xtask pg stop` first",
                    state.display()
                );
            }
            let mut server = Postgres::start()?;
            let mut replica = server.start_replica()?;
            let mut spare = server.start_spare_replica()?;
            std::fs::create_dir_all(state.parent().unwrap_or(Path::new(".")))?;
            std::fs::write(
                &state,
                format!(
                    "{}{}{}",
                    server.state_lines(),
                    replica.state_lines(),
                    spare.state_lines()
                ),
            )?;
            // Keep them running: forget the guards on purpose.
            server.stopped = true;
            replica.stopped = true;
            spare.stopped = true;
            println!("export ACCOUNT_TEST_PG_URL={}", server.url());
            println!("export {REPLICA_URL_VAR}={}", replica.url());
            for (name, value) in spare.spare_replica_env() {
                println!("export {name}={value}");
            }
            Ok(0)
        }
        Some("stop") => {
            let saved = std::fs::read_to_string(&state)
                .with_context(|| format!("no server recorded in {}", state.display()))?;
            let mut lines = saved.lines();
            let Some(mut server) = Postgres::from_state(&mut lines)? else {
                bail!("corrupt state file {}", state.display());
            };
            // The replicas first: stopped after their primary, they would wait for it.
            while let Some(mut replica) = Postgres::from_state(&mut lines)? {
                replica.stop()?;
            }
            server.stop()?;
            std::fs::remove_file(&state)?;
            println!("stopped");
            Ok(0)
        }
        _ => {
            eprintln!("usage: cargo xtask pg start|stop");
            Ok(2)
        }
    }
}

fn state_file() -> Result<PathBuf> {
    Ok(target_dir()?.join("xtask-pg").join("state"))
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn install_with_apt() -> Result<()> {
    if !is_root()? {
        bail!("PostgreSQL is not installed and we are not root: run `apt-get install postgresql`");
    }
    eprintln!("==> installing PostgreSQL with apt-get");
    let quiet = |command: &mut Command| {
        command
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null());
        run_command(command)
    };
    quiet(Command::new("apt-get").arg("update").arg("-qq"))?;
    quiet(Command::new("apt-get").args(["install", "-y", "-qq", "postgresql"]))
}

fn is_root() -> Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("running `id -u`")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn ensure_user(user: &str) -> Result<()> {
    let exists = Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !exists {
        run_command(Command::new("useradd").args(["--system", "--no-create-home", user]))?;
    }
    Ok(())
}
