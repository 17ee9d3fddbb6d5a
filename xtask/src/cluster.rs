//! `cargo xtask cluster`: a throwaway PostgreSQL primary, one streaming replica of it and
//! three `account-api` instances on loopback, reading from the replica, until Ctrl-C.
//!
//! It bootstraps a tenant and creates an operator key, prints both keys and every URL, then
//! waits for Ctrl-C (or SIGTERM). Everything it started is stopped by drop guards on every
//! path out: the instances first, then the replica, then the primary, and the scratch
//! directory (pepper, logs) is removed.
//!
//! The binary is the workspace's one debug build (`util::DEBUG_BUILD`, the one tests and CI
//! use, so seconds when warm); `--release` builds and serves an optimised one instead, for
//! load tests (minutes the first time).

#![allow(clippy::print_stdout, clippy::print_stderr)] // the URLs and keys are the output

use crate::pg::Postgres;
use crate::util::{
    ChildGuard, build_debug, cargo, command_output, debug_binary, free_port, printed, target_dir,
    wait_for_health,
};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How many API instances serve.
const INSTANCES: usize = 3;

const USAGE: &str = "usage: cargo xtask cluster [--release]";

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cargo xtask cluster [--release]`.
pub fn run(args: &[String]) -> Result<u8> {
    let release = match args {
        [] => false,
        [flag] if flag == "--release" => true,
        _ => {
            eprintln!("{USAGE}");
            return Ok(2);
        }
    };
    let binary = if release {
        cargo(&["build", "--release", "--locked", "-p", "account-api"])?;
        target_dir()?.join("release").join("account-api")
    } else {
        build_debug()?;
        debug_binary("account-api")?
    };

    let primary = Postgres::start()?;
    let replica = primary.start_replica()?;
    let (primary_url, replica_url) = (primary.url(), replica.url());
    let scratch =
        Scratch(std::env::temp_dir().join(format!("account-cluster-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let api = |args: &[&str]| -> Command {
        let mut command = Command::new(&binary);
        command
            .current_dir(&scratch.0)
            .env_remove("DATABASE_URL")
            .args([
                "--database-url",
                &primary_url,
                "--pepper-file",
                "account.pepper",
            ])
            .args(args);
        command
    };
    // Migrates, then creates the tenant and the keys (shown once).
    let bootstrap = command_output(&mut api(&[
        "bootstrap",
        "--owner-email",
        "owner@example.com",
        "--tenant-name",
        "Cluster",
    ]))?;
    let owner_key = printed(&bootstrap, "api_key")?;
    let operator = command_output(&mut api(&["operator-key", "create", "--name", "cluster"]))?;
    let operator_key = printed(&operator, "operator_key")?;

    let mut instances = Vec::with_capacity(INSTANCES);
    let mut ports = Vec::with_capacity(INSTANCES);
    for n in 1..=INSTANCES {
        let port = free_port()?;
        let log = std::fs::File::create(scratch.0.join(format!("instance-{n}.log")))?;
        let child = api(&["--replica-url", &replica_url])
            .args(["--listen", &format!("127.0.0.1:{port}"), "serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut child = ChildGuard(child);
        wait_for_health(port, &mut child.0)
            .with_context(|| log_tail(&scratch.0.join(format!("instance-{n}.log"))))?;
        instances.push(child);
        ports.push(port);
    }

    println!("primary   {primary_url}");
    println!("replica   {replica_url}");
    for (n, port) in ports.iter().enumerate() {
        println!("api #{}    http://127.0.0.1:{port}", n + 1);
    }
    println!("owner key     {owner_key}");
    println!("operator key  {operator_key}");
    println!("logs          {}", scratch.0.display());
    println!(
        "try: curl -s http://127.0.0.1:{}/v1/runs -H \"Authorization: Bearer {owner_key}\"",
        ports[0]
    );
    println!(
        "     curl -s http://127.0.0.1:{}/metrics | grep account_reads_total",
        ports[0]
    );
    println!("Ctrl-C stops everything.");

    wait_for_signal()?;
    println!("stopping");
    // Instances, then the replica, then the primary (drop order is the reverse of this).
    drop(instances);
    drop(replica);
    drop(primary);
    drop(scratch);
    Ok(0)
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted?,
            _ = terminate.recv() => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    Ok(())
}

/// The last lines of an instance's log, for a start that failed.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.is_empty() {
        "the instance logged nothing".to_owned()
    } else {
        format!("its log ends:\n{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_arguments_are_a_usage_error() -> Result<()> {
        assert_eq!(run(&["--nope".to_owned()])?, 2);
        Ok(())
    }
}
