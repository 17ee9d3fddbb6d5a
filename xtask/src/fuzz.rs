//! `cargo xtask fuzz [--seconds N] [--with-api] [--release]`: runs each cargo-fuzz target of
//! `fuzz/` for a few seconds (20 by default) and fails on the first crash.
//!
//! Targets build unoptimised by default: an optimised build takes longer than the brief run it
//! serves, so CI's pass uses the dev profile; long runs want `--release` (several times more
//! executions per second). Only this repository's crates are instrumented for coverage
//! ([`rustc_wrapper`]): the light targets need only `account-values` (about 30 s to build),
//! `request_body` the whole HTTP stack (about 3 minutes cold on 2 cores, down from 15 with
//! every dependency instrumented).
//!
//! Builds, corpora and the tool live under cargo's target directory (`CARGO_TARGET_DIR` when
//! set). cargo-fuzz is installed into its `ci-tools/cargo-fuzz` when missing; it needs nightly
//! flags, which the stable toolchain accepts under `RUSTC_BOOTSTRAP=1`. No sanitizer: the code
//! is safe Rust, and the oracle is each target's own assertions. `request_body` drives the
//! whole HTTP stack and takes longer to build, so it runs only with `--with-api` (CI passes it).

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::util::{target_dir, tools_dir, without_package_env, workspace_root};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// Targets that need only the value parsers (`account-values`).
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
    let out = target_dir()?;
    let cargo_fuzz = install_cargo_fuzz()?;
    let wrapper = stable_copy_of_this_binary(&out)?;
    let mut targets: Vec<(&str, Option<&str>)> = LIGHT_TARGETS.iter().map(|t| (*t, None)).collect();
    if with_api {
        targets.push((API_TARGET, Some("api")));
    }
    for (target, feature) in targets {
        println!("    fuzzing {target} for {seconds} s");
        let corpus = out.join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut command = Command::new(&cargo_fuzz);
        without_package_env(&mut command)
            .current_dir(&root)
            .env("RUSTC_BOOTSTRAP", "1")
            // Coverage instrumentation for this repository's crates only (see `rustc_wrapper`).
            .env("RUSTC_WRAPPER", &wrapper)
            .env(INSTRUMENT_ROOT_VAR, &root)
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", "--sanitizer", "none"])
            .arg("--target-dir")
            .arg(out.join("fuzz"));
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
        let artifacts = root.join("fuzz").join("artifacts").join(target);
        let before = entries(&artifacts);
        let status = command
            .status()
            .with_context(|| format!("running {command:?}"))?;
        if !status.success() {
            // cargo-fuzz exits 1 for a crash and for a failed build alike: a new artifact
            // tells them apart.
            let found: Vec<_> = entries(&artifacts).difference(&before).cloned().collect();
            match found.first() {
                Some(input) => bail!(
                    "fuzz target {target} crashed ({status}); the crashing input is {}",
                    input.display()
                ),
                None => bail!("cargo fuzz could not build or run {target} ({status}); see above"),
            }
        }
    }
    Ok(0)
}

/// The files in `dir` (none when it does not exist).
fn entries(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect()
}

/// A copy of the running xtask binary for `RUSTC_WRAPPER`: a build of the workspace (as
/// `cargo xtask ci` runs one) may replace `target/debug/xtask` while this process runs, and
/// the path of a replaced binary no longer executes.
fn stable_copy_of_this_binary(out: &std::path::Path) -> Result<std::path::PathBuf> {
    let copy = out.join("fuzz").join("xtask-rustc-wrapper");
    std::fs::create_dir_all(out.join("fuzz"))?;
    // Through a temporary name: a wrapper still running from an earlier build stays intact.
    let staged = copy.with_extension("new");
    // `/proc/self/exe` still opens this process's binary after its path was replaced.
    let this = std::path::Path::new("/proc/self/exe");
    let source = if this.exists() {
        this.to_path_buf()
    } else {
        std::env::current_exe()?
    };
    std::fs::copy(source, &staged)?;
    std::fs::rename(&staged, &copy)?;
    Ok(copy)
}

/// Set for the `cargo fuzz` child: the xtask binary is then its `RUSTC_WRAPPER`, and this is
/// the directory whose crates keep their coverage instrumentation.
pub const INSTRUMENT_ROOT_VAR: &str = "ACCOUNT_FUZZ_INSTRUMENT_ROOT";

/// Runs as cargo's `RUSTC_WRAPPER` during a fuzz build: `rustc` with the sanitizer-coverage
/// flags removed for crates outside `root` (registry crates), kept for ours.
///
/// libFuzzer needs coverage only of the code under test; instrumenting the whole sea-orm,
/// sqlx and axum stack as well made the build of `request_body` several times slower. The
/// crates still get `--cfg fuzzing` and the rest of cargo-fuzz's flags.
pub fn rustc_wrapper(root: &std::path::Path, args: &[String]) -> Result<u8> {
    let Some((rustc, rest)) = args.split_first() else {
        bail!("{INSTRUMENT_ROOT_VAR} is set but no rustc command was given");
    };
    let ours = std::env::var_os("CARGO_MANIFEST_DIR")
        .is_some_and(|dir| std::path::Path::new(&dir).starts_with(root));
    let args = if ours {
        rest.to_vec()
    } else {
        without_coverage_flags(rest)
    };
    let status = Command::new(rustc)
        .args(&args)
        .status()
        .with_context(|| format!("running {rustc}"))?;
    Ok(status
        .code()
        .map_or(1, |code| u8::try_from(code).unwrap_or(1)))
}

/// `args` without `-Cpasses=sancov-module` and `-Cllvm-args=-sanitizer-coverage-…`, in either
/// the joined (`-Cx=y`) or the split (`-C x=y`) form.
fn without_coverage_flags(args: &[String]) -> Vec<String> {
    let is_coverage = |codegen: &str| {
        codegen == "passes=sancov-module" || codegen.starts_with("llvm-args=-sanitizer-coverage")
    };
    let mut kept = Vec::with_capacity(args.len());
    let mut rest = args.iter().peekable();
    while let Some(arg) = rest.next() {
        if let Some(codegen) = arg.strip_prefix("-C").filter(|c| !c.is_empty()) {
            if is_coverage(codegen) {
                continue;
            }
        } else if arg == "-C" && rest.peek().is_some_and(|next| is_coverage(next)) {
            rest.next();
            continue;
        }
        kept.push(arg.clone());
    }
    kept
}

/// `<target>/ci-tools/cargo-fuzz/bin/cargo-fuzz`, installed with `cargo install --locked` once.
fn install_cargo_fuzz() -> Result<PathBuf> {
    let tools = tools_dir()?.join("cargo-fuzz");
    let binary = tools.join("bin").join("cargo-fuzz");
    if !binary.exists() {
        println!(
            "    installing cargo-fuzz into {} (about a minute, once)",
            tools.display()
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = without_package_env(&mut Command::new(cargo))
            // `--debug`: a dev build of the tool compiles in about half the time of a release
            // build, and its own speed does not matter (it only drives cargo).
            .args(["install", "cargo-fuzz", "--locked", "--debug", "--root"])
            .arg(&tools)
            .status()
            .context("running cargo install cargo-fuzz")?;
        if !status.success() {
            bail!("cargo install cargo-fuzz failed ({status})");
        }
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::without_coverage_flags;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn coverage_flags_go_in_both_forms_and_nothing_else_does() {
        let args = strings(&[
            "--crate-name",
            "sea_orm",
            "-Cpasses=sancov-module",
            "-Cllvm-args=-sanitizer-coverage-level=4",
            "-C",
            "llvm-args=-sanitizer-coverage-trace-compares",
            "-C",
            "opt-level=0",
            "-Cdebug-assertions",
            "--cfg",
            "fuzzing",
        ]);
        assert_eq!(
            without_coverage_flags(&args),
            strings(&[
                "--crate-name",
                "sea_orm",
                "-C",
                "opt-level=0",
                "-Cdebug-assertions",
                "--cfg",
                "fuzzing"
            ])
        );
    }
}
