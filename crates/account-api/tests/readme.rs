//! The README's "A first tenant" block works as written: its commands run in order in a fresh
//! working directory, with two substitutions only: the built binary for `cargo run -p
//! account-api`, and a free port for 8080 (the serve command gets it through `ACCOUNT_LISTEN`,
//! since it relies on the default). Every `curl` command must answer 2xx with JSON.
//!
//! SQLite only: the README's default, a file in the working directory. (PostgreSQL is covered
//! by the end-to-end stories in `tests/http`.)

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

#[path = "http/process.rs"]
mod process;

use process::{BINARY, Running, command};
use std::io::Read;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));

/// What curl reports after each transfer (read from `$CURL_HOME/.curlrc`, so the commands
/// stay as written): the status, on stderr.
const CURLRC: &str = "write-out = \"%{stderr}\\nhttp_status=%{http_code}\\n\"\n";

/// The commands of the `sh` block under "## A first tenant": continuation lines joined, comment
/// lines dropped.
fn first_tenant_commands() -> Vec<String> {
    let section = README
        .split_once("## A first tenant")
        .expect("README.md has a section \"A first tenant\"")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the section has an sh block")
        .0;
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        if current.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        current.push_str(line);
        if line.ends_with('\\') {
            current.push('\n');
        } else {
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

/// `line` with the binary and the port substituted.
fn substitute(line: &str, port: u16) -> String {
    line.replace("cargo run -p account-api --", BINARY)
        .replace("cargo run -p account-api", BINARY)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
}

/// Runs `script` with `sh -c` in `dir` with `vars`, within a minute.
fn run_sh(script: &str, dir: &Path, vars: &[(String, String)]) -> Output {
    let mut child = Running(
        command("sh", dir)
            .arg("-c")
            .arg(script)
            .envs(vars.iter().cloned())
            .env("CURL_HOME", dir.join("curl"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = child
        .wait_within(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("still running after a minute: {script}"));
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `NAME` of a `NAME=...` assignment.
fn assigned_name(line: &str) -> Option<&str> {
    let (name, _) = line.split_once('=')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')).then_some(name)
}

#[test]
fn the_readme_first_tenant_commands_work_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("curl")).unwrap();
    std::fs::write(dir.path().join("curl/.curlrc"), CURLRC).unwrap();
    let port = process::free_port();
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut server: Option<Running> = None;
    let (mut assignments, mut curls) = (0, 0);

    for line in first_tenant_commands() {
        let script = substitute(&line, port);
        if let Some(name) = assigned_name(&line) {
            // Run it, then read the variable back for the commands after it.
            let output = run_sh(
                &format!("{script}\nprintf %s \"${name}\""),
                dir.path(),
                &vars,
            );
            let value = String::from_utf8(output.stdout).unwrap();
            assert!(
                output.status.success() && !value.is_empty(),
                "{line}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            vars.push((name.to_owned(), value));
            assignments += 1;
        } else if let Some(serve) = script
            .split(" #")
            .next()
            .and_then(|command| command.trim_end().strip_suffix('&'))
        {
            assert!(server.is_none(), "one server: {line}");
            let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
            server = Some(Running(
                command("sh", dir.path())
                    .arg("-c")
                    .arg(format!("exec {serve}"))
                    .env("ACCOUNT_LISTEN", format!("127.0.0.1:{port}"))
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap(),
            ));
        } else if line.starts_with("curl ") {
            let output = run_sh(&script, dir.path(), &vars);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let status = stderr
                .lines()
                .filter_map(|l| l.strip_prefix("http_status="))
                .next_back()
                .unwrap_or_else(|| panic!("{line}: no answer\n{stderr}"));
            let body = String::from_utf8_lossy(&output.stdout);
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            assert!(
                output.status.success() && status.starts_with('2'),
                "{line}\nanswered {status}: {body}\n{stderr}\nserver log:\n{log}"
            );
            let json: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{line}\nanswered {status}, not JSON ({e}): {body}"));
            assert!(json.is_object(), "{line}: {json}");
            curls += 1;
        } else {
            panic!("tests/readme.rs does not know how to check this README command: {line}");
        }
    }
    assert!(server.is_some(), "the block starts the server");
    assert_eq!(assignments, 1, "the block bootstraps and keeps the key");
    assert!(curls >= 4, "the block shows its curl examples: {curls}");
}
