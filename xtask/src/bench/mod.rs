//! `cargo xtask bench`: builds the benchmark harness (`crates/account-bench`) in release mode
//! and runs it; PostgreSQL figures come from a throwaway *durable* server (fsync and
//! synchronous commits on) started here, unless `ACCOUNT_BENCH_PG_URL` names one.
//!
//! `--http` also builds the `account-api` binary and has the harness load it over HTTP with wrk
//! (Debian's `wrk` package), beside the spine call alone.
//!
//! `--profile OP` counts the instructions of one operation's call under callgrind instead, for
//! the spine and its baselines (`callgrind.rs`).
//!
//! `smoke` is the `ci` step: a debug build and a `--quick` run on SQLite, so the harness cannot
//! rot while its long runs stay out of CI.

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

mod callgrind;

use crate::pg::{Durability, Postgres};
use crate::util::{build_debug, cargo, debug_binary, run_command, target_dir, workspace_root};
use anyhow::Result;
use std::path::PathBuf;
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask bench [--backend sqlite|postgres|both] [--quick] [--filter TEXT] [--show-sql]
                         [--http] [--profile OP [--calls N]] [--audit-export [--audit-rows N]]

  --backend   databases to run on (default both); PostgreSQL is a throwaway durable server
              started for the run, or ACCOUNT_BENCH_PG_URL when set (an admin URL)
  --quick     small datasets and few iterations (seconds)
  --filter    only operations whose name contains TEXT
  --show-sql  print the statements each spine operation issued
  --http      load the release account-api binary with wrk instead (req/s, p50, p99 per
              endpoint at 1, 8 and 32 connections, beside the spine call alone; the access
              log's cost); --quick: 2 s per cell, else 10 s
  --profile   instructions per call of the latency operation whose name contains OP, counted
              by callgrind (valgrind) on SQLite for the spine, plain sea-orm and raw, and where
              the spine's extra instructions go (BENCHMARKS.md, issue 20); each way runs twice,
              with 0 and N calls (--calls, default 300); the files stay in target/callgrind/;
              ACCOUNT_BENCH_HARNESS=PATH profiles another build of the harness (before/after)
  --audit-export  the release account-api's resident memory while it streams an audit export
              of the newest 10,000 rows and of all N (--audit-rows, default 1,000,000) seeded
              on PostgreSQL, each on a fresh server (BENCHMARKS.md, issue 22)
";

/// The environment variable naming an existing server for the PostgreSQL runs.
const PG_URL_ENV: &str = "ACCOUNT_BENCH_PG_URL";
/// The environment variable naming the harness binary `--profile` runs (default: this build's).
const HARNESS_ENV: &str = "ACCOUNT_BENCH_HARNESS";

/// Runs the harness with `args` (passed through after validation).
pub fn run(args: &[String]) -> Result<u8> {
    let mut postgres = true;
    // `--http` and `--audit-export` run the release API binary: it is built beside.
    let mut needs_api = false;
    let mut profile = None;
    let mut calls = 300;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--backend" => match iter.next().map(String::as_str) {
                Some("sqlite") => postgres = false,
                Some("postgres" | "both") => {}
                _ => {
                    eprintln!("{USAGE}");
                    return Ok(2);
                }
            },
            "--filter" => {
                if iter.next().is_none() {
                    eprintln!("{USAGE}");
                    return Ok(2);
                }
            }
            "--http" | "--audit-export" => needs_api = true,
            "--audit-rows" => {
                if iter.next().and_then(|n| n.parse::<u64>().ok()).is_none() {
                    eprintln!("--audit-rows takes a number\n\n{USAGE}");
                    return Ok(2);
                }
            }
            "--profile" => match iter.next() {
                Some(operation) => profile = Some(operation.clone()),
                None => {
                    eprintln!("{USAGE}");
                    return Ok(2);
                }
            },
            "--calls" => match iter.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => calls = n,
                _ => {
                    eprintln!("--calls takes a positive number\n\n{USAGE}");
                    return Ok(2);
                }
            },
            "--quick" | "--show-sql" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            other => {
                eprintln!("unknown option `{other}`\n\n{USAGE}");
                return Ok(2);
            }
        }
    }
    std::env::set_current_dir(workspace_root()?)?;
    let mut build = vec![
        "build",
        "--locked",
        "--release",
        "--package",
        "account-bench",
    ];
    if needs_api {
        build.extend(["--package", "account-api"]);
    }
    cargo(&build)?;
    if let Some(operation) = profile {
        // Another build of the harness (a before/after comparison) when named.
        // Its files then go to a directory named after it, beside this build's.
        let files = target_dir()?.join("callgrind");
        let (harness, files) = match std::env::var_os(HARNESS_ENV) {
            Some(path) => {
                let path = PathBuf::from(path);
                let name = path.file_name().unwrap_or_default().to_owned();
                (path, files.join(name))
            }
            None => (release_binary("account-bench")?, files),
        };
        callgrind::run(&harness, &files, &operation, calls)?;
        return Ok(0);
    }
    let mut command = Command::new(release_binary("account-bench")?);
    command.args(args);
    if needs_api {
        command.env("ACCOUNT_BENCH_API_BINARY", release_binary("account-api")?);
    }
    // `servers` live until the run ends; dropping them stops and removes the clusters.
    let _servers = match std::env::var(PG_URL_ENV) {
        Ok(_) => None,
        Err(_) if postgres => {
            let server = Postgres::start_with(Durability::On)?;
            println!(
                "==> durable PostgreSQL (fsync=on, synchronous_commit=on) on 127.0.0.1:{}",
                server.port()
            );
            command.env(PG_URL_ENV, server.url());
            // Reads are measured through a streaming replica too (same machine, same cores).
            let replica = server.start_replica()?;
            println!("==> its streaming replica on 127.0.0.1:{}", replica.port());
            command.env("ACCOUNT_BENCH_PG_REPLICA_URL", replica.url());
            Some((replica, server))
        }
        Err(_) => None,
    };
    run_command(&mut command)?;
    Ok(0)
}

/// The `ci` step: quick run on SQLite of the workspace's debug build (`util::DEBUG_BUILD`, not
/// a build of this package alone, which would resolve features differently and recompile).
pub fn smoke() -> Result<()> {
    build_debug()?;
    run_command(
        Command::new(debug_binary("account-bench")?)
            .args(["--backend", "sqlite", "--quick"])
            .env_remove(PG_URL_ENV),
    )
}

fn release_binary(name: &str) -> Result<PathBuf> {
    Ok(target_dir()?.join("release").join(name))
}
