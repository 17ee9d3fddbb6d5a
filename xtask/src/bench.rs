//! `cargo xtask bench`: builds the benchmark harness (`crates/account-bench`) in release mode
//! and runs it; PostgreSQL figures come from a throwaway *durable* server (fsync and
//! synchronous commits on) started here, unless `ACCOUNT_BENCH_PG_URL` names one.
//!
//! `--http` also builds the `account-api` binary and has the harness load it over HTTP with wrk
//! (Debian's `wrk` package), beside the spine call alone.
//!
//! `smoke` is the `ci` step: a debug build and a `--quick` run on SQLite, so the harness cannot
//! rot while its long runs stay out of CI.

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::pg::{Durability, Postgres};
use crate::util::{build_debug, cargo, debug_binary, run_command, target_dir, workspace_root};
use anyhow::Result;
use std::path::PathBuf;
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask bench [--backend sqlite|postgres|both] [--quick] [--filter TEXT] [--show-sql]
                         [--http]

  --backend   databases to run on (default both); PostgreSQL is a throwaway durable server
              started for the run, or ACCOUNT_BENCH_PG_URL when set (an admin URL)
  --quick     small datasets and few iterations (seconds)
  --filter    only operations whose name contains TEXT
  --show-sql  print the statements each spine operation issued
  --http      load the release account-api binary with wrk instead (req/s, p50, p99 per
              endpoint at 1, 8 and 32 connections, beside the spine call alone; the access
              log's cost); --quick: 2 s per cell, else 10 s
";

/// The environment variable naming an existing server for the PostgreSQL runs.
const PG_URL_ENV: &str = "ACCOUNT_BENCH_PG_URL";

/// Runs the harness with `args` (passed through after validation).
pub fn run(args: &[String]) -> Result<u8> {
    let mut postgres = true;
    let mut http = false;
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
            "--http" => http = true,
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
    if http {
        build.extend(["--package", "account-api"]);
    }
    cargo(&build)?;
    let mut command = Command::new(release_binary("account-bench")?);
    command.args(args);
    if http {
        command.env("ACCOUNT_BENCH_API_BINARY", release_binary("account-api")?);
    }
    // `server` lives until the run ends; dropping it stops and removes the cluster.
    let _server = match std::env::var(PG_URL_ENV) {
        Ok(_) => None,
        Err(_) if postgres => {
            let server = Postgres::start_with(Durability::On)?;
            println!(
                "==> durable PostgreSQL (fsync=on, synchronous_commit=on) on 127.0.0.1:{}",
                server.port()
            );
            command.env(PG_URL_ENV, server.url());
            Some(server)
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
