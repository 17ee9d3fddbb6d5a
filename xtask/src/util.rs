//! Helpers the commands share: where the workspace and its build output live, running cargo and
//! other processes, and serving the API binary for a check.
//!
//! Commands import from here and never from each other's helpers, so the module graph stays
//! acyclic: `util` imports no other module of this crate.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The root of this workspace (xtask lives one level below it).
pub fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target/` of the workspace.
///
/// A relative `CARGO_TARGET_DIR` is taken from the workspace root, the directory every command
/// here runs cargo in. Everything xtask keeps (fuzz builds and corpora, installed tools, the
/// PostgreSQL state) lives under it, so a target directory outside the clone keeps them too.
pub fn target_dir() -> Result<PathBuf> {
    let root = workspace_root()?;
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| root.join("target"), |dir| root.join(dir)))
}

/// Where tools CI installs itself (cargo-fuzz, cargo-deny, schemathesis) live.
pub fn tools_dir() -> Result<PathBuf> {
    Ok(target_dir()?.join("ci-tools"))
}

/// The arguments of the one debug build: every binary and every test target of the workspace.
///
/// One cargo invocation resolves features once. `cargo build -p account-api` alone leaves out
/// the dev-dependencies' features (sea-orm's `mock`, via the testkit), so sea-orm and every crate
/// above it were compiled a second time beside the test build; built together, the binaries the
/// checks serve and the tests `cargo test --workspace` runs are the same artifacts.
pub const DEBUG_BUILD: [&str; 5] = ["build", "--workspace", "--locked", "--bins", "--tests"];

/// Runs [`DEBUG_BUILD`]: seconds when nothing changed.
pub fn build_debug() -> Result<()> {
    cargo(&DEBUG_BUILD)
}

/// A debug binary of the workspace (built by [`build_debug`]).
pub fn debug_binary(name: &str) -> Result<PathBuf> {
    Ok(target_dir()?.join("debug").join(name))
}

/// `cargo` (the one running xtask, when known) with `args`, without xtask's package variables
/// ([`without_package_env`]).
pub fn cargo_command(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(args);
    without_package_env(&mut command);
    if NON_INCREMENTAL.load(Ordering::Relaxed) && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        command.env("CARGO_INCREMENTAL", "0");
    }
    command
}

/// Set by [`build_without_incremental`]: the cargo children get `CARGO_INCREMENTAL=0`.
static NON_INCREMENTAL: AtomicBool = AtomicBool::new(false);

/// Makes every later [`cargo_command`] build without incremental state, unless the caller's
/// environment chose (`CARGO_INCREMENTAL` set).
///
/// `cargo xtask ci` calls it: a clean clone builds everything once, so incremental state only
/// costs time and disk (several GB across the debug, trybuild and own-domain builds; a CI run
/// on a full disk failed in the trybuild step).
pub fn build_without_incremental() {
    NON_INCREMENTAL.store(true, Ordering::Relaxed);
}

/// Clears the variables `cargo run` set for xtask itself (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_NAME`, ...) from a child that builds.
///
/// Cargo compares a build script's `rerun-if-env-changed` variables with its own environment.
/// ring's declares these, so a build run from xtask and one run from a shell each reran it and
/// rebuilt everything above it (rustls, sqlx, sea-orm, every crate here); cleared, both match.
pub fn without_package_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if is_package_variable(name) {
            command.env_remove(name);
        }
    }
    command
}

/// The per-package variables cargo sets for what it runs.
fn is_package_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
        )
}

/// The own-domain example's workspace (a host's, with its own lock file and layer table),
/// from the root.
pub const OWN_DOMAIN: &str = "examples/own-domain/Cargo.toml";

/// The own-domain example's own xtask with `args`, as `cargo xtask <args>` runs it inside that
/// workspace (`cargo run --locked --package xtask` there).
///
/// It builds in a target directory of its own, under ours: its binary is named `xtask` like
/// ours, and in one directory each build would swap `debug/xtask` for the other. It needs only
/// cargo-strata, so that build is small (under a minute cold, a second warm).
pub fn own_domain_xtask(args: &[&str]) -> Result<Command> {
    let mut command = cargo_command(&["run", "--quiet", "--locked", "--manifest-path"]);
    command
        .arg(workspace_root()?.join(OWN_DOMAIN))
        .args(["--package", "xtask", "--bin", "xtask", "--"])
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir()?.join("own-domain-xtask"));
    Ok(command)
}

/// Runs cargo with `args`; fails unless it succeeds.
pub fn cargo(args: &[&str]) -> Result<()> {
    run_command(&mut cargo_command(args))
}

/// Runs `command` to completion; fails unless it succeeds. The error shows the command with
/// its environment, so commands carrying secrets in their environment must not use this.
pub fn run_command(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} exited with {status}");
    }
    Ok(())
}

/// A loopback port nobody listens on right now (the window before a server binds it is
/// accepted: nothing else on a CI machine races for it).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A child process killed (and reaped) when dropped, on every path out.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the API on `port` answers `GET /healthz` with 200; fails if `child` exits or
/// a minute passes.
pub fn wait_for_health(port: u16, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("account-api exited early with {status}");
        }
        if let Ok(body) = http_get(port, "/healthz") {
            if body.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
            bail!(
                "GET /healthz answered: {}",
                body.lines().next().unwrap_or("")
            );
        }
        if Instant::now() > deadline {
            bail!("account-api did not answer /healthz within 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Runs `command` to completion and returns its standard output; its errors pass through.
pub fn command_output(command: &mut Command) -> Result<String> {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} exited with {}", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The value of a `name=value` line the API's subcommands print.
pub fn printed(output: &str, name: &str) -> Result<String> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
        .with_context(|| format!("the API printed no `{name}=` line"))
}

#[cfg(test)]
mod tests {
    use super::is_package_variable;

    #[test]
    fn package_variables_go_and_configuration_stays() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_CRATE_NAME",
        ] {
            assert!(is_package_variable(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "PATH",
        ] {
            assert!(!is_package_variable(name), "{name}");
        }
    }
}
