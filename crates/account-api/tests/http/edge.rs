//! The edge against raw TCP clients, on each backend: a client trickling its headers is
//! disconnected after the header timeout, a stalled body is answered 408, an idle kept-alive
//! connection is closed, an oversized `Content-Length` is refused with 413 before the body is
//! sent, and `X-Forwarded-For` names the client only when a trusted proxy sent it.
//!
//! The timeouts are configured short (300 ms); the bounds the tests wait for are generous
//! (seconds), so a slow machine cannot fail them.

use crate::support::{Server, refused, start_with_edge};
use account_api::{EdgeSettings, MAX_BODY_BYTES};
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);
/// How long a test waits for what a short timeout should cause.
const GENEROUS: Duration = Duration::from_secs(10);

fn edge(header: Duration, body: Duration, idle: Duration) -> EdgeSettings {
    EdgeSettings::default().with_timeouts(header, body, idle)
}

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `GENEROUS` passes: then `None`); returns
/// what was read.
async fn read_to_close(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    timeout(GENEROUS, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// Reads one response's head and its `Content-Length` body, as JSON.
async fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    timeout(GENEROUS, async {
        loop {
            let text = String::from_utf8_lossy(&seen).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return (status, serde_json::from_str(body).unwrap_or(Value::Null));
                }
            }
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed before a full response: {text}");
            seen.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("a response in time")
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected() {
    for backend in backends().unwrap() {
        let server = start_with_edge(&backend, edge(SHORT, LONG, LONG)).await;
        let mut stream = connect(&server).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        // One header line every 100 ms for up to a minute: never a complete head.
        let trickle = async {
            for line in 0..600 {
                let header = format!("x-trickle-{line}: y\r\n");
                if stream.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let closed = timeout(GENEROUS, trickle).await;
        assert!(closed.is_ok(), "{}: still open", backend.name());
        let mut stream = connect(&server).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut stream).await;
        assert_eq!(
            answer.as_deref(),
            Some(""),
            "{}: closed, no answer",
            backend.name()
        );
    }
}

#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    for backend in backends().unwrap() {
        let server = start_with_edge(&backend, edge(LONG, SHORT, LONG)).await;
        let mut stream = connect(&server).await;
        let head = format!(
            "POST /v1/runs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"worker_id\"",
            server.key
        );
        let rows_before = server.row_counts().await;
        stream.write_all(head.as_bytes()).await.unwrap();
        let (status, body) = read_response(&mut stream).await;
        assert_eq!(status, 408, "{}: {body}", backend.name());
        assert_eq!(body["error"], "body_timeout", "{}", backend.name());
        assert_eq!(server.row_counts().await, rows_before, "{}", backend.name());
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    for backend in backends().unwrap() {
        let server = start_with_edge(&backend, edge(LONG, LONG, SHORT)).await;
        let mut stream = connect(&server).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let (status, _) = read_response(&mut stream).await;
        assert_eq!(status, 200, "{}", backend.name());
        // Kept alive, then idle: the server ends it on its own.
        let rest = read_to_close(&mut stream).await;
        assert_eq!(rest.as_deref(), Some(""), "{}", backend.name());
    }
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_before_the_body() {
    for backend in backends().unwrap() {
        let server = start_with_edge(&backend, EdgeSettings::default()).await;
        let rows_before = server.row_counts().await;
        let mut stream = connect(&server).await;
        // A gigabyte announced and none of it sent: the answer cannot wait for the body.
        let head = format!(
            "PUT /v1/memory/pins/big HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: 1000000000\r\n\r\n",
            server.key
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let (status, body) = read_response(&mut stream).await;
        assert_eq!(status, 413, "{}: {body}", backend.name());
        assert_eq!(body["error"], "payload_too_large", "{}", backend.name());

        // Chunked, so no length up front: refused once the limit is passed.
        let mut stream = connect(&server).await;
        let head = format!(
            "PUT /v1/memory/pins/big HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            server.key
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 16 * 1024];
        for _ in 0..=(MAX_BODY_BYTES / chunk.len()) {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            if stream.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let (status, body) = read_response(&mut stream).await;
        assert_eq!(status, 413, "{}: {body}", backend.name());
        assert_eq!(body["error"], "payload_too_large", "{}", backend.name());
        assert_eq!(server.row_counts().await, rows_before, "{}", backend.name());

        // Through an HTTP client too: the JSON error shape with its request id.
        let answer = server
            .send(
                server
                    .request(Method::PUT, "/v1/memory/pins/big")
                    .bearer_auth(&server.key)
                    .header("content-type", "application/json")
                    .body(vec![b' '; MAX_BODY_BYTES + 1]),
            )
            .await;
        refused(
            &answer,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            backend.name(),
        );
    }
}

/// Admits a run with `X-Forwarded-For: 203.0.113.9`; returns the audit rows it added.
async fn audited_with_forwarded_for(server: &Server) -> Vec<String> {
    let before = server.audit_rows().await;
    let answer = server
        .send(
            server
                .request(Method::POST, "/v1/runs")
                .bearer_auth(&server.key)
                .header("x-forwarded-for", "203.0.113.9")
                .json(&json!({"worker_id": "w", "task": "t"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    server
        .audit_rows()
        .await
        .into_iter()
        .filter(|row| !before.contains(row))
        .collect()
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_from_a_trusted_proxy() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let untrusted = start_with_edge(&backend, EdgeSettings::default()).await;
        let rows = audited_with_forwarded_for(&untrusted).await;
        assert!(!rows.is_empty(), "{name}: an audit row");
        assert!(
            rows.iter()
                .all(|row| row.contains("127.0.0.1") && !row.contains("203.0.113.9")),
            "{name}: the peer, not the header: {rows:?}"
        );
        drop(untrusted);

        let proxy = EdgeSettings::default().with_trusted_proxies("127.0.0.0/8".parse().unwrap());
        let trusted = start_with_edge(&backend, proxy).await;
        let rows = audited_with_forwarded_for(&trusted).await;
        assert!(!rows.is_empty(), "{name}: an audit row");
        assert!(
            rows.iter()
                .all(|row| row.contains("203.0.113.9") && !row.contains("127.0.0.1")),
            "{name}: the proxy's client: {rows:?}"
        );
    }
}
