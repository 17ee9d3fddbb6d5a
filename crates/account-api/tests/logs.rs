//! The request id is in every log line of a request (accepted from `x-request-id` or
//! generated and echoed), with the key's id; the key itself never is, valid or not.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

#[path = "http/support.rs"]
mod support;

use account_testkit::backends;
use reqwest::Method;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Every log line, as the binary would write them (without colours).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn logs_carry_the_request_id_and_never_the_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Global: the server's tasks run on other threads. Everything at TRACE, so any leak shows.
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .init();

    for backend in backends().unwrap() {
        let server = support::start(&backend).await;
        let wrong_key = format!("{}x", &server.key[..server.key.len() - 1]);
        let chosen = format!("req-logs-{}", backend.name());

        let answer = server
            .send(
                server
                    .request(Method::GET, "/v1/runs")
                    .bearer_auth(&server.key)
                    .header("x-request-id", &chosen),
            )
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.headers["x-request-id"], chosen.as_str());
        let key_id = server.call(Method::GET, "/v1/api-keys", None).await.body["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let answer = server
            .send(
                server
                    .request(Method::POST, "/v1/runs")
                    .header("x-api-key", &wrong_key)
                    .json(&serde_json::json!({"worker_id": "w", "task": "t"})),
            )
            .await;
        assert_eq!(answer.status, 401);
        let generated = answer.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(generated.len(), 36, "a generated UUID: {generated}");

        let text = captured.text();
        let lines = |id: &str| {
            text.lines()
                .filter(|l| l.contains(&format!("request_id={id}")))
                .collect::<Vec<_>>()
        };
        let chosen_lines = lines(&chosen);
        assert!(
            chosen_lines.iter().any(|l| l.contains("status=200")),
            "the response line carries the chosen id:\n{text}"
        );
        assert!(
            chosen_lines
                .iter()
                .any(|l| l.contains(&format!("api_key_id={key_id}"))),
            "and the key's id:\n{text}"
        );
        assert!(
            lines(&generated).iter().any(|l| l.contains("status=401")),
            "a generated id is logged too:\n{text}"
        );
        assert!(
            !text.contains(&server.key),
            "the key never appears in the logs"
        );
        assert!(!text.contains(&wrong_key), "nor a wrong one");
        assert!(!text.contains(&server.key[10..]), "nor its secret part");
    }
}
