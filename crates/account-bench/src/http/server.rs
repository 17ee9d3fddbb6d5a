//! The `account-api` binary as a child process: started on the benchmark's database, waited
//! for until `/readyz` answers, stopped the way a supervisor stops it (SIGTERM, then a kill).

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary's default filter (`account-api`'s `main`), spelled out so the harness's own
/// `RUST_LOG` cannot change what the server logs.
const LOG_ON: &str = "info,sqlx=warn,sea_orm=warn";
/// The same without the access log: tower-http's response line is the only event of its
/// `on_response` target, so this drops one line per request and nothing else.
const LOG_OFF: &str = "info,sqlx=warn,sea_orm=warn,tower_http::trace::on_response=off";
/// The message of tower-http's response line, counted in the log after a run.
const ACCESS_LINE: &str = "finished processing request";

/// A running API; killed on drop if [`ApiServer::stop`] was not called.
pub(crate) struct ApiServer {
    child: Option<Child>,
    pub(crate) port: u16,
    log: PathBuf,
}

impl ApiServer {
    /// Starts `binary` on `database_url`, its stderr (the log) going to `log`, and waits until
    /// it is ready.
    pub(crate) fn start(
        binary: &Path,
        database_url: &str,
        pepper_file: &Path,
        log: &Path,
        access_log: bool,
    ) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("ACCOUNT_LISTEN", format!("127.0.0.1:{port}"))
            .env("ACCOUNT_PEPPER_FILE", pepper_file)
            .env("RUST_LOG", if access_log { LOG_ON } else { LOG_OFF })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // A file, as a deployment's log would be: a pipe nobody drains would stall it.
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self {
            child: Some(child),
            port,
            log: log.to_owned(),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// The server's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "account-api exited early with {status}; its log: {}",
                    self.log.display()
                );
            }
            if let Ok(response) = get(self.port, "/readyz")
                && response.starts_with("HTTP/1.1 200")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("account-api was not ready within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM (in-flight requests finish, key use is flushed), a kill after 10 s; returns the
    /// access-log lines the server wrote.
    pub(crate) fn stop(mut self) -> Result<u64> {
        if let Some(mut child) = self.child.take() {
            let terminated = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            let deadline = Instant::now() + Duration::from_secs(10);
            while terminated && child.try_wait()?.is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if child.try_wait()?.is_none() {
                eprintln!("    account-api did not stop on SIGTERM within 10 s: killing it");
                child.kill()?;
                child.wait()?;
            }
        }
        let mut lines = 0;
        for line in BufReader::new(std::fs::File::open(&self.log)?).lines() {
            if line?.contains(ACCESS_LINE) {
                lines += 1;
            }
        }
        Ok(lines)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One plain HTTP/1.1 GET (the readiness probe; the load itself is wrk's).
fn get(port: u16, path: &str) -> std::io::Result<String> {
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
