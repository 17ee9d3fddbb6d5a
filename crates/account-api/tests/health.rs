//! The real server over HTTP: liveness and readiness on every backend.

use account_api::{AppState, router};
use account_spine::{DatabaseConfig, Spine};
use account_testkit::{backends, empty_db};

#[tokio::test]
async fn health_and_readiness_answer_over_http() {
    for backend in backends().unwrap() {
        let db = empty_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap();
        spine.migrate().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server =
            tokio::spawn(axum::serve(listener, router(AppState::new(spine))).into_future());

        let client = reqwest::Client::new();
        let health = client
            .get(format!("http://{address}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let ready: serde_json::Value = client
            .get(format!("http://{address}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["database"], backend.name());
        server.abort();
    }
}
