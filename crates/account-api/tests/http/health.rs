//! Liveness and readiness over HTTP on every backend.

use crate::support::start;
use account_testkit::backends;
use reqwest::Method;

#[tokio::test]
async fn health_and_readiness_answer_over_http() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let health = server.send(server.request(Method::GET, "/healthz")).await;
        assert_eq!(health.status, 200);
        let ready = server.send(server.request(Method::GET, "/readyz")).await;
        assert_eq!(ready.body["status"], "ready");
        assert_eq!(ready.body["database"], backend.name());
    }
}
