//! The real server over HTTP through a story, on each backend: bootstrap, key issue, runs up
//! to the concurrency quota and the refusal after it, completion, pins with a TTL, key
//! revocation, unknown keys, and cross-tenant ids.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_api::{AppState, router};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine};
use account_testkit::{backends, empty_db};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Server {
    base: String,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

async fn start(spine: Spine) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(axum::serve(listener, router(AppState::new(spine))).into_future());
    Server {
        base: format!("http://{address}"),
        client: reqwest::Client::new(),
        task,
    }
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
}

#[tokio::test]
async fn a_tenant_story_over_http() {
    for backend in backends().unwrap() {
        let db = empty_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap()
            .with_pepper(ApiKeyPepper::from_bytes(&[3u8; 32]).unwrap());
        spine.migrate().await.unwrap();
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (_, owner_key) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        let (_, other_key) = spine
            .bootstrap(&operator, "other@example.com", "Other")
            .await
            .unwrap();
        let key = owner_key.plaintext.expose().to_owned();
        let server = start(spine).await;
        use reqwest::Method;

        // Runs up to the free plan's 5 concurrent runs, then a 429 naming the quota.
        let run = json!({"worker_id": "business-builder", "task": "plan"});
        let mut ids = Vec::new();
        for _ in 0..5 {
            let (status, body) = server
                .call(Method::POST, "/v1/runs", &key, Some(run.clone()))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{}: {body}", backend.name());
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
        let (status, body) = server
            .call(Method::POST, "/v1/runs", &key, Some(run.clone()))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"], "quota_concurrent_runs");

        let done = json!({"success": true, "total_tokens": 1000, "cost_cents": 4});
        let (status, body) = server
            .call(
                Method::POST,
                &format!("/v1/runs/{}/complete", ids[0]),
                &key,
                Some(done.clone()),
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("completed"))
        );
        let (status, _) = server.call(Method::POST, "/v1/runs", &key, Some(run)).await;
        assert_eq!(status, StatusCode::CREATED, "a finished run frees a slot");
        let (status, body) = server
            .call(Method::GET, "/v1/runs?limit=2", &key, None)
            .await;
        assert_eq!(
            (status, body["total"].as_u64(), body["has_more"].as_bool()),
            (StatusCode::OK, Some(6), Some(true))
        );

        // Another tenant's run id is not found, never someone else's data.
        let other = other_key.plaintext.expose();
        let (status, body) = server
            .call(Method::GET, &format!("/v1/runs/{}", ids[0]), other, None)
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("run_not_found"))
        );

        // Pins.
        let (status, _) = server
            .call(
                Method::PUT,
                "/v1/memory/pins/agent:cfg",
                &key,
                Some(json!({"value": {"a": 1}, "ttl_seconds": 3600})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server
            .call(Method::GET, "/v1/memory/pins/agent:cfg", &key, None)
            .await;
        assert_eq!((status, &body["value"]), (StatusCode::OK, &json!({"a": 1})));
        let (status, body) = server
            .call(
                Method::PUT,
                "/v1/memory/pins/bad..key",
                &key,
                Some(json!({"value": {}})),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_pin_key"))
        );
        let (status, _) = server
            .call(Method::GET, "/v1/memory/pins/agent:cfg", other, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // A second key: issued, used, revoked, refused with the same 401 as an unknown key.
        let (status, body) = server
            .call(
                Method::POST,
                "/v1/api-keys",
                &key,
                Some(json!({"name": "ci", "permissions": ["read:*"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (ci_key, ci_id) = (
            body["secret"].as_str().unwrap().to_owned(),
            body["key"]["id"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            server.call(Method::GET, "/v1/runs", &ci_key, None).await.0,
            StatusCode::OK
        );
        let (status, _) = server
            .call(
                Method::POST,
                "/v1/runs",
                &ci_key,
                Some(json!({"worker_id": "w", "task": "t"})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "a read-only key cannot start runs"
        );
        let (status, _) = server
            .call(
                Method::POST,
                &format!("/v1/api-keys/{ci_id}/revoke"),
                &key,
                Some(json!({"reason": "done"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let revoked = server.call(Method::GET, "/v1/runs", &ci_key, None).await;
        let unknown = server
            .call(Method::GET, "/v1/runs", "acc_live_not-a-key", None)
            .await;
        assert_eq!(revoked.0, StatusCode::UNAUTHORIZED);
        assert_eq!(revoked, unknown, "no hint of which check failed");

        // The request id is echoed.
        let response = server
            .client
            .get(format!("{}/healthz", server.base))
            .header("x-request-id", "req-42")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "req-42");
        server.task.abort();
    }
}
