//! Graceful shutdown of the real binary: on SIGTERM it stops accepting connections, finishes
//! the request in flight (held open by a body that arrives only after the signal) with 200,
//! and exits 0.
//!
//! SQLite only: the binary's signal handling does not depend on the backend, and a temp file
//! needs nothing from the environment.

use crate::process::{BINARY, Running, command, free_port, refused_within};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Reads one response (head and `Content-Length` body) off a keep-alive connection.
fn read_response(reader: &mut BufReader<TcpStream>) -> (String, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "closed in: {head}"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().unwrap())
        })
        .unwrap_or_else(|| panic!("a Content-Length: {head}"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let database = format!("sqlite://{}/account.db?mode=rwc", dir.path().display());
    let flags = [
        "--database-url",
        database.as_str(),
        "--pepper-file",
        "account.pepper",
        "--listen",
    ];
    let listen = format!("127.0.0.1:{port}");

    let bootstrap = command(BINARY, dir.path())
        .args(flags)
        .arg(&listen)
        .args(["bootstrap", "--owner-email", "ops@example.com"])
        .output()
        .unwrap();
    assert!(bootstrap.status.success(), "{bootstrap:?}");
    let stdout = String::from_utf8(bootstrap.stdout).unwrap();
    let key = stdout
        .lines()
        .find_map(|line| line.strip_prefix("api_key="))
        .unwrap_or_else(|| panic!("an api_key line: {stdout}"))
        .to_owned();

    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut server = Running(
        command(BINARY, dir.path())
            .args(flags)
            .arg(&listen)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let server_log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    server.wait_until_listening(port, Duration::from_secs(30));

    // One answered request first, so the connection is surely accepted before the signal.
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    write!(writer, "GET /healthz HTTP/1.1\r\nHost: {listen}\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // The slow request: headers and half the body now, the rest after SIGTERM.
    let body = r#"{"value":{"state":"written during shutdown"}}"#;
    let (first, rest) = body.split_at(body.len() / 2);
    write!(
        writer,
        "PUT /v1/memory/pins/shutdown:probe HTTP/1.1\r\nHost: {listen}\r\n\
         Authorization: Bearer {key}\r\ncontent-type: application/json\r\n\
         Content-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the server reads the head meanwhile

    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    // No new connections, but still running: the request in flight holds it.
    assert!(
        refused_within(port, Duration::from_secs(10)),
        "connections still accepted after SIGTERM:\n{}",
        server_log()
    );
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "exited with a request in flight:\n{}",
        server_log()
    );

    writer.write_all(rest.as_bytes()).unwrap();
    writer.flush().unwrap();
    let (head, answer) = read_response(&mut reader);
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{head}{answer}\n{}",
        server_log()
    );
    let pin: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(pin["key"], "shutdown:probe", "{answer}");
    assert_eq!(pin["value"]["state"], "written during shutdown");
    // The connection closes after the last answer instead of waiting for another request.
    let mut after = Vec::new();
    assert_eq!(reader.read_to_end(&mut after).unwrap(), 0, "{after:?}");

    let status = server
        .wait_within(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", server_log()));
    assert!(status.success(), "{status}:\n{}", server_log());
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
}
