//! `cargo xtask fuzz [--seconds N] [--with-api] [--release]`: runs each cargo-fuzz target of
//! `fuzz/` for a few seconds (20 by default) and fails on the first crash.
//!
//! Targets build unoptimised by default: an instrumented release build of the sea-orm stack
//! takes several times longer than the brief run it serves, so CI's smoke pass uses the dev
//! profile; long runs want `--release` (several times more executions per second).
//!
//! cargo-fuzz is installed into `target/ci-tools/cargo-fuzz` when missing; it needs nightly
//! flags, which the stable toolchain accepts under `RUSTC_BOOTSTRAP=1`. No sanitizer: the code
//! is safe Rust, and the oracle is each target's own assertions. `request_body` drives the
//! whole HTTP stack and takes longer to build instrumented, so it runs only with `--with-api`
//! (CI passes it).

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::ci::workspace_root;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// Targets that need only the models and engines crates.
const LIGHT_TARGETS: [&str; 3] = ["presented_key", "pin_key", "email"];
/// The target behind the `api` feature.
const API_TARGET: &str = "request_body";

/// Runs the targets; 0 when none crashed, 2 on a usage error.
pub fn run(args: &[String]) -> Result<u8> {
    let mut seconds = 20u64;
    let mut with_api = false;
    let mut release = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => match rest.next().and_then(|n| n.parse().ok()) {
                Some(n) => seconds = n,
                None => {
                    eprintln!("--seconds takes a number of seconds");
                    return Ok(2);
                }
            },
            "--with-api" => with_api = true,
            "--release" => release = true,
            other => {
                eprintln!(
                    "usage: cargo xtask fuzz [--seconds N] [--with-api] [--release] (got `{other}`)"
                );
                return Ok(2);
            }
        }
    }
    let root = workspace_root()?;
    let cargo_fuzz = install_cargo_fuzz(&root)?;
    let mut targets: Vec<(&str, Option<&str>)> = LIGHT_TARGETS.iter().map(|t| (*t, None)).collect();
    if with_api {
        targets.push((API_TARGET, Some("api")));
    }
    for (target, feature) in targets {
        println!("    fuzzing {target} for {seconds} s");
        let corpus = root.join("target").join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut command = Command::new(&cargo_fuzz);
        command
            .current_dir(&root)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", "--sanitizer", "none"])
            .arg("--target-dir")
            .arg(root.join("target").join("fuzz"));
        if !release {
            command.arg("--dev");
        }
        if let Some(feature) = feature {
            command.args(["--features", feature]);
        }
        command
            .arg(target)
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-max_len=4096", "-print_final_stats=1"]);
        let status = command
            .status()
            .with_context(|| format!("running {command:?}"))?;
        if !status.success() {
            bail!(
                "fuzz target {target} failed ({status}); the crashing input is under fuzz/artifacts/{target}"
            );
        }
    }
    Ok(0)
}

/// `target/ci-tools/cargo-fuzz/bin/cargo-fuzz`, installed with `cargo install --locked` once.
fn install_cargo_fuzz(root: &std::path::Path) -> Result<PathBuf> {
    let tools = root.join("target").join("ci-tools").join("cargo-fuzz");
    let binary = tools.join("bin").join("cargo-fuzz");
    if !binary.exists() {
        println!(
            "    installing cargo-fuzz into {} (about 2 minutes, once)",
            tools.display()
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["install", "cargo-fuzz", "--locked", "--root"])
            .arg(&tools)
            .status()
            .context("running cargo install cargo-fuzz")?;
        if !status.success() {
            bail!("cargo install cargo-fuzz failed ({status})");
        }
    }
    Ok(binary)
}
