//! The request id is in every log line of a request (accepted from `x-request-id` or
//! generated and echoed), with the key's id; the key itself never is, valid or not.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod log_capture;
#[path = "http/support.rs"]
mod support;

use account_testkit::backends;
use log_capture::Captured;
use reqwest::Method;

#[tokio::test]
async fn logs_carry_the_request_id_and_never_the_key() {
    let captured = Captured::install();

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
