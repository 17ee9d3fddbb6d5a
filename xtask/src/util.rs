//! Helpers the commands share: where the workspace and its build output live, running cargo and
//! other processes, and serving the API binary for a check.
//!
//! Commands import from here and never from each other's helpers, so the module graph stays
//! acyclic: `util` imports no other module of this crate.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
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

/// A debug binary of the workspace.
pub fn debug_binary(name: &str) -> Result<PathBuf> {
    Ok(target_dir()?.join("debug").join(name))
}

/// `cargo` (the one running xtask, when known) with `args`.
pub fn cargo_command(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(args);
    command
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
