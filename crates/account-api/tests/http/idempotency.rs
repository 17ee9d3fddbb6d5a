//! `Idempotency-Key` over HTTP, on each backend: fifty parallel retries of one `POST /v1/runs`
//! admit one run and all answer alike; a replay says so; another body under the key is 422 and
//! a malformed key 400; a key issued under an idempotency key replays the same secret, which
//! is stored sealed; without the header nothing is stored.

use crate::support::{Answer, Server, refused, start};
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// `POST path` with the first tenant's key, `body` and the raw `Idempotency-Key` value.
async fn post_keyed(server: &Server, path: &str, key: &str, body: &Value) -> Answer {
    server
        .send(
            server
                .request(Method::POST, path)
                .bearer_auth(&server.key)
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
}

fn replayed(answer: &Answer) -> bool {
    answer
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn fifty_parallel_admissions_under_one_key_admit_one_run_and_answer_alike() {
    for backend in backends().unwrap() {
        let server = Arc::new(start(&backend).await);
        let name = backend.name();
        let body = json!({"worker_id": "business-builder", "task": "plan the launch"});
        let start = Arc::new(tokio::sync::Barrier::new(50));
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let (server, body, start) = (server.clone(), body.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let key = "\"0b5c7a52-9d6e-4df3-8f0e-2f3f1c6c7d10\"";
                    post_keyed(&server, "/v1/runs", key, &body).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap());
        }
        for answer in &answers {
            assert_eq!(
                answer.status,
                StatusCode::CREATED,
                "{name}: {}",
                answer.body
            );
            assert_eq!(
                answer.body, answers[0].body,
                "{name}: every retry answers alike"
            );
        }
        let first = answers.iter().filter(|a| !replayed(a)).count();
        assert_eq!(
            first, 1,
            "{name}: one answer is the admission, 49 its replays"
        );
        let runs = server.call(Method::GET, "/v1/runs", None).await;
        assert_eq!(runs.body["total"], 1, "{name}: one run: {}", runs.body);
        assert_eq!(runs.body["items"][0]["id"], answers[0].body["id"], "{name}");
    }
}

#[tokio::test]
async fn a_replay_says_so_another_body_is_422_and_a_malformed_key_400() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let body = json!({"worker_id": "w", "task": "a"});
        let first = post_keyed(&server, "/v1/runs", "retry-1", &body).await;
        assert_eq!(first.status, StatusCode::CREATED, "{name}: {}", first.body);
        assert!(!replayed(&first), "{name}");
        // The bare key and its structured-field string are the same key.
        let again = post_keyed(&server, "/v1/runs", "\"retry-1\"", &body).await;
        assert_eq!(again.status, StatusCode::CREATED, "{name}");
        assert!(replayed(&again), "{name}");
        assert_eq!(again.body, first.body, "{name}");
        assert_eq!(again.headers["content-type"], "application/json", "{name}");

        let other = json!({"worker_id": "w", "task": "b"});
        let reused = post_keyed(&server, "/v1/runs", "retry-1", &other).await;
        refused(
            &reused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            name,
        );
        // Another path under the key is another request too.
        let elsewhere = post_keyed(&server, "/v1/support/tickets", "retry-1", &body).await;
        assert_eq!(elsewhere.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");

        for bad in ["\"open", "two words", "\"a\\nb\"", &"k".repeat(256)] {
            let answer = post_keyed(&server, "/v1/runs", bad, &other).await;
            let fields = refused(&answer, StatusCode::BAD_REQUEST, "invalid_header", name);
            assert!(
                fields["Idempotency-Key"].is_string(),
                "{name}: {bad}: {fields}"
            );
        }
        let runs = server.call(Method::GET, "/v1/runs", None).await;
        assert_eq!(runs.body["total"], 1, "{name}: nothing else admitted");

        // A refused request stores nothing: its retry runs again (and is refused again).
        let invalid = json!({"worker_id": "Not Valid", "task": "a"});
        let no = post_keyed(&server, "/v1/runs", "retry-2", &invalid).await;
        assert_eq!(
            no.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            no.body
        );
        let fixed = json!({"worker_id": "w", "task": "c"});
        let yes = post_keyed(&server, "/v1/runs", "retry-2", &fixed).await;
        assert_eq!(yes.status, StatusCode::CREATED, "{name}: {}", yes.body);
        assert!(!replayed(&yes), "{name}");
    }
}

#[tokio::test]
async fn an_issued_key_replays_its_secret_which_is_stored_sealed() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let body = json!({"name": "ci", "permissions": ["run:*", "read:*"]});
        let issued = post_keyed(&server, "/v1/api-keys", "issue-ci", &body).await;
        assert_eq!(
            issued.status,
            StatusCode::CREATED,
            "{name}: {}",
            issued.body
        );
        let secret = issued.body["secret"].as_str().unwrap().to_owned();
        let again = post_keyed(&server, "/v1/api-keys", "issue-ci", &body).await;
        assert!(replayed(&again), "{name}");
        assert_eq!(
            again.body["secret"],
            secret.as_str(),
            "{name}: the same secret"
        );
        assert_eq!(again.body["key"]["id"], issued.body["key"]["id"], "{name}");

        // One key was issued, and the replayed secret is that key.
        let keys = server.call(Method::GET, "/v1/api-keys", None).await;
        assert_eq!(keys.body["total"], 2, "{name}: the owner's and this one");
        let runs = server.call_as(&secret, Method::GET, "/v1/runs", None).await;
        assert_eq!(runs.status, StatusCode::OK, "{name}");

        // Stored sealed: neither the secret nor its bytes appear in the row.
        let rows = server.rows_of("idempotency_keys").await;
        assert_eq!(rows.len(), 1, "{name}");
        let row = rows[0].to_ascii_lowercase();
        assert!(!row.contains(&secret.to_ascii_lowercase()), "{name}: {row}");
        assert!(!row.contains(&hex(secret.as_bytes())), "{name}: {row}");
    }
}

#[tokio::test]
async fn without_the_header_nothing_is_stored() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let body = json!({"worker_id": "w", "task": "a"});
        for _ in 0..2 {
            let answer = server
                .call(Method::POST, "/v1/runs", Some(body.clone()))
                .await;
            assert_eq!(answer.status, StatusCode::CREATED);
            assert!(!replayed(&answer));
        }
        let counts = server.row_counts().await;
        assert_eq!(
            counts.get("idempotency_keys"),
            Some(&0),
            "{}",
            backend.name()
        );
        assert_eq!(counts.get("worker_runs"), Some(&2), "{}", backend.name());
    }
}

#[test]
fn the_document_names_the_header_on_every_write_that_takes_it() {
    let document = serde_json::to_value(account_api::openapi()).unwrap();
    let mut keyed = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let Some(post) = item.get("post") else {
            continue;
        };
        let takes = post["parameters"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
        });
        let id = post["operationId"].as_str().unwrap();
        let expected = ![
            "accept_invitation",
            "verify_api_key",
            "platform_create_plan_version",
            "platform_retire_plan",
            "create_project",
            "restore_project",
            "erase_me",
            "platform_erase_user",
            "leave_project",
            "platform_start_trial",
        ]
        .contains(&id);
        assert_eq!(takes, expected, "{path} ({id})");
        if takes {
            keyed.push(id.to_owned());
            assert!(post["responses"]["409"].is_object(), "{id}");
            assert!(post["responses"]["422"].is_object(), "{id}");
        }
    }
    assert_eq!(keyed.len(), 19, "{keyed:?}");
}
