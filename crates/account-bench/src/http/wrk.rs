//! One cell of load from wrk (Debian's `wrk`): closed loop, each connection sends its next
//! request when the previous answer arrived. `wrk.lua` builds the requests and prints the
//! figures as one JSON line from its `done` hook, parsed here.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The script, written next to the key files at the start of a run.
pub(crate) const SCRIPT: &str = include_str!("wrk.lua");

/// wrk counts a request slower than this as a timeout and drops it from the latency figures
/// (its histogram ends there), so it is far above any stall worth seeing (default 2 s).
const TIMEOUT: &str = "60s";

/// What to send.
#[derive(Clone, Debug)]
pub(crate) struct Load {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) body: Option<String>,
    /// API keys, one a line; requests rotate over them.
    pub(crate) keys_file: PathBuf,
}

/// wrk's figures for one cell.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Figures {
    pub(crate) requests: u64,
    pub(crate) duration: Duration,
    /// Answers with a status over 399 (wrk's `errors.status`).
    pub(crate) non_2xx: u64,
    /// Connect, read and write errors.
    pub(crate) socket_errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Figures {
    /// Completed requests per second.
    pub(crate) fn rate(&self) -> f64 {
        let seconds = self.duration.as_secs_f64();
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    /// Parses the line `wrk.lua`'s `done` printed.
    pub(crate) fn parse(line: &str) -> Result<Self> {
        let json: Value = serde_json::from_str(line).context("wrk.lua's result line")?;
        let field = |name: &str| {
            json.get(name)
                .and_then(Value::as_u64)
                .with_context(|| format!("wrk.lua's result has no `{name}`"))
        };
        let micros = |name: &str| field(name).map(Duration::from_micros);
        Ok(Self {
            requests: field("requests")?,
            duration: micros("duration_us")?,
            non_2xx: field("status_errors")?,
            socket_errors: field("connect_errors")?
                + field("read_errors")?
                + field("write_errors")?,
            timeouts: field("timeouts")?,
            p50: micros("p50_us")?,
            p99: micros("p99_us")?,
            max: micros("max_us")?,
        })
    }
}

/// Fails with the install command when wrk is missing.
pub(crate) fn check_installed() -> Result<()> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("wrk is not installed: apt-get install wrk")
        }
        Err(e) => Err(e).context("running wrk --version"),
    }
}

/// Runs `load` against the API on `port` with `connections` connections for `seconds`.
pub(crate) async fn run(
    script: &Path,
    port: u16,
    load: &Load,
    connections: usize,
    seconds: u64,
) -> Result<Figures> {
    let mut command = Command::new("wrk");
    command
        // wrk needs at least one connection per thread; two threads feed two cores.
        .args(["-t", &connections.min(2).to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s")])
        .args(["--timeout", TIMEOUT])
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .env("ACCOUNT_WRK_METHOD", load.method)
        .env("ACCOUNT_WRK_PATH", &load.path)
        .env("ACCOUNT_WRK_BODY", load.body.as_deref().unwrap_or(""))
        .env("ACCOUNT_WRK_KEYS", &load.keys_file);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk exited with {}: {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("wrk printed no result line:\n{stdout}"))?;
    Figures::parse(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_done_line_parses() {
        let figures = Figures::parse(
            r#"{"requests":2000,"duration_us":2000000,"connect_errors":0,"read_errors":1,"write_errors":2,"status_errors":3,"timeouts":4,"p50_us":800,"p99_us":5000,"max_us":9000}"#,
        )
        .unwrap();
        assert_eq!(figures.requests, 2000);
        assert_eq!(figures.non_2xx, 3);
        assert_eq!(figures.socket_errors, 3);
        assert_eq!(figures.timeouts, 4);
        assert_eq!(figures.p99, Duration::from_micros(5000));
        assert!((figures.rate() - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn a_missing_field_is_an_error() {
        assert!(Figures::parse(r#"{"requests":1}"#).is_err());
    }
}
