//! The built `account-api` binary as a child process: in a temporary working directory, on a
//! free loopback port, without the caller's `DATABASE_URL`/`ACCOUNT_*` settings, killed if the
//! test fails before it ends.

#![allow(dead_code)] // each test binary uses part of it

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary cargo built for these tests.
pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_account-api");

/// The settings the binary reads from the environment, removed so a test sees its defaults.
const SETTINGS: [&str; 5] = [
    "DATABASE_URL",
    "ACCOUNT_LISTEN",
    "ACCOUNT_PEPPER_FILE",
    "ACCOUNT_DB_MAX_CONNECTIONS",
    "RUST_LOG",
];

/// A loopback port nobody listens on (the OS picks it; free again once the probe closes).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `program` run in `dir` without the binary's settings in its environment.
pub(crate) fn command(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir);
    for name in SETTINGS {
        command.env_remove(name);
    }
    command
}

/// A running child, killed and reaped on drop unless it already exited.
pub(crate) struct Running(pub(crate) std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Running {
    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Its exit status if it ends within `bound`.
    pub(crate) fn wait_within(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until something accepts connections on `port` (within `bound`); panics if the
    /// child exits first.
    pub(crate) fn wait_until_listening(&mut self, port: u16, bound: Duration) {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + bound;
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.0.try_wait().unwrap() {
                panic!("the server exited before listening on {port}: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {port} after {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until connections to `port` are refused (within `bound`); false if they never are.
pub(crate) fn refused_within(port: u16, bound: Duration) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + bound;
    loop {
        match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => return true,
            _ if Instant::now() >= deadline => return false,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// `account-api serve` on `url` at `127.0.0.1:port`, with `pepper` as its pepper file in `dir`
/// and its log in `dir/server-<port>.log`; returns once it listens.
pub(crate) fn serve(url: &str, dir: &Path, port: u16, pepper: &[u8], flags: &[&str]) -> Running {
    std::fs::write(dir.join("account.pepper"), pepper).unwrap();
    let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap();
    let mut server = Running(
        command(BINARY, dir)
            .args(["--database-url", url, "--pepper-file", "account.pepper"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    server.wait_until_listening(port, Duration::from_secs(30));
    server
}
