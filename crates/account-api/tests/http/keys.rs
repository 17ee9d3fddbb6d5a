//! Key management over HTTP (issue 19): the owner key rotates and revokes the bootstrap key
//! and still manages keys; a key is rotated once even when twelve requests race; the last key
//! manager stays while no owner can sign in; listings compute `expired`; metadata is set and
//! replaced; `POST /v1/keys/verify` answers a service credential. On both backends.

use crate::support::{Server, refused, start, start_with_clock};
use account_spine::FixedClock;
use account_testkit::backends;
use chrono::{TimeDelta, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

async fn issue(server: &Server, key: &str, body: Value) -> Value {
    let answer = server
        .call_as(key, Method::POST, "/v1/api-keys", Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.body
}

async fn keys(server: &Server, key: &str) -> Vec<Value> {
    let answer = server
        .call_as(key, Method::GET, "/v1/api-keys?include_revoked=true", None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["items"].as_array().unwrap().clone()
}

async fn bootstrap_id(server: &Server) -> String {
    let listed = keys(server, &server.key).await;
    let bootstrap = listed.iter().find(|k| k["name"] == "bootstrap").unwrap();
    bootstrap["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_owner_rotates_and_revokes_the_bootstrap_key_and_still_manages_keys() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let bootstrap = bootstrap_id(&server).await;
        let revoke = |key: String, id: String| {
            let server = &server;
            async move {
                let path = format!("/v1/api-keys/{id}/revoke");
                let body = json!({"reason": "leaked"});
                server.call_as(&key, Method::POST, &path, Some(body)).await
            }
        };

        // Alone, the bootstrap key is the last key manager and no owner can sign in.
        let answer = revoke(server.key.clone(), bootstrap.clone()).await;
        refused(&answer, StatusCode::CONFLICT, "last_key_manager", name);

        // The owner key issues another manager key (was `permission_too_wide`).
        let manager = issue(
            &server,
            &server.key,
            json!({"name": "manager", "permissions": ["keys:manage", "read:*"]}),
        )
        .await;
        assert_eq!(
            manager["key"]["permissions"],
            json!(["keys:manage", "read:*"])
        );
        let manager_secret = manager["secret"].as_str().unwrap().to_owned();

        // It rotates the bootstrap key (was `permission_too_wide`): the successor's secret
        // once, the old key's grace expiry and successor.
        let path = format!("/v1/api-keys/{bootstrap}/rotate");
        let answer = server
            .call(Method::POST, &path, Some(json!({"grace_seconds": 60})))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{name}: {}",
            answer.body
        );
        let successor = answer.body["key"]["id"].as_str().unwrap().to_owned();
        assert!(
            answer.body["secret"]
                .as_str()
                .unwrap()
                .starts_with("acc_live_")
        );
        assert_eq!(answer.body["previous"]["successor_id"], successor.as_str());
        assert_eq!(answer.body["key"]["rotated_from_id"], bootstrap.as_str());
        assert!(answer.body["previous"]["expires_at"].is_string(), "{name}");
        // Not twice.
        let again = server
            .call(Method::POST, &path, Some(json!({"grace_seconds": 60})))
            .await;
        refused(
            &again,
            StatusCode::CONFLICT,
            "api_key_already_rotated",
            name,
        );

        // The other owner key revokes both, and keeps managing keys.
        for id in [bootstrap.clone(), successor] {
            let answer = revoke(manager_secret.clone(), id).await;
            assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
            assert_eq!(answer.body["status"], "revoked");
        }
        issue(&server, &manager_secret, json!({"name": "after"})).await;
        let answer = server.call(Method::GET, "/v1/api-keys", None).await;
        refused(&answer, StatusCode::UNAUTHORIZED, "unauthorized", name);
    }
}

#[tokio::test]
async fn racing_rotations_over_http_produce_exactly_one_successor() {
    for backend in backends().unwrap() {
        let server = Arc::new(start(&backend).await);
        let name = backend.name();
        let target = issue(&server, &server.key, json!({"name": "raced"})).await;
        let id = target["key"]["id"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (server, id) = (server.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let path = format!("/v1/api-keys/{id}/rotate");
                let answer = server
                    .call(Method::POST, &path, Some(json!({"grace_seconds": 300})))
                    .await;
                (answer.status, answer.body)
            }));
        }
        let mut created = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                StatusCode::CREATED => created += 1,
                _ => {
                    assert_eq!(status, StatusCode::CONFLICT, "{name}: {body}");
                    assert_eq!(body["error"], "api_key_already_rotated", "{name}: {body}");
                }
            }
        }
        assert_eq!(created, 1, "{name}");
        let successors = keys(&server, &server.key)
            .await
            .into_iter()
            .filter(|k| k["rotated_from_id"] == id.as_str())
            .count();
        assert_eq!(successors, 1, "{name}");
    }
}

#[tokio::test]
async fn listings_show_expired_keys_as_expired() {
    for backend in backends().unwrap() {
        let start_at = Utc.with_ymd_and_hms(2026, 12, 10, 9, 0, 0).unwrap();
        let clock = Arc::new(FixedClock::new(start_at));
        let server = start_with_clock(&backend, clock.clone()).await;
        let expires = (start_at + TimeDelta::hours(1)).to_rfc3339();
        let short = issue(
            &server,
            &server.key,
            json!({"name": "short", "expires_at": expires}),
        )
        .await;
        assert_eq!(short["key"]["status"], "active");
        clock.advance(TimeDelta::hours(2));
        let listed = keys(&server, &server.key).await;
        let short = listed.iter().find(|k| k["name"] == "short").unwrap();
        assert_eq!(short["status"], "expired", "{}", backend.name());
    }
}

#[tokio::test]
async fn metadata_is_set_at_issue_and_replaced_by_patch() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let issued = issue(
            &server,
            &server.key,
            json!({"name": "tagged", "metadata": {"team": "billing"}}),
        )
        .await;
        assert_eq!(issued["key"]["metadata"], json!({"team": "billing"}));
        let id = issued["key"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/api-keys/{id}");

        let before = server.row_counts().await;
        let too_big = json!({"blob": "x".repeat(4100)});
        for bad in [json!([1]), json!("text"), too_big] {
            let answer = server
                .call(
                    Method::POST,
                    "/v1/api-keys",
                    Some(json!({"name": "bad", "metadata": bad.clone()})),
                )
                .await;
            let fields = refused(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_metadata",
                name,
            );
            assert!(fields["metadata"].is_string(), "{name}: {fields}");
            let answer = server
                .call(Method::PATCH, &path, Some(json!({"metadata": bad})))
                .await;
            refused(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_metadata",
                name,
            );
        }
        assert_eq!(
            server.row_counts().await,
            before,
            "{name}: refusals wrote nothing"
        );

        let answer = server
            .call(
                Method::PATCH,
                &path,
                Some(json!({"metadata": {"team": "ops"}})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        assert_eq!(answer.body["metadata"], json!({"team": "ops"}));
        let answer = server
            .call(Method::PATCH, &path, Some(json!({"metadata": null})))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        assert_eq!(answer.body["metadata"], Value::Null);
        let other = format!("/v1/api-keys/{}", bootstrap_id(&server).await);
        let answer = server
            .call_as(
                &server.other_key,
                Method::PATCH,
                &other,
                Some(json!({"metadata": {}})),
            )
            .await;
        refused(&answer, StatusCode::NOT_FOUND, "api_key_not_found", name);
    }
}

#[tokio::test]
async fn a_service_credential_verifies_keys_of_its_tenant_without_spending_their_allowance() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let service = issue(
            &server,
            &server.key,
            json!({"name": "gateway", "permissions": ["keys:verify"]}),
        )
        .await;
        let service = service["secret"].as_str().unwrap().to_owned();
        let customer = issue(
            &server,
            &server.key,
            json!({"name": "customer", "rate_limit_rpm": 5, "metadata": {"plan": "gold"}}),
        )
        .await;
        let customer_id = customer["key"]["id"].as_str().unwrap().to_owned();
        let customer = customer["secret"].as_str().unwrap().to_owned();
        let verify = |presented: String| {
            let (server, service) = (&server, service.clone());
            async move {
                let body = json!({"key": presented});
                let answer = server
                    .call_as(&service, Method::POST, "/v1/keys/verify", Some(body))
                    .await;
                assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
                answer.body
            }
        };

        let verdict = verify(customer.clone()).await;
        assert_eq!(verdict["valid"], true, "{name}: {verdict}");
        assert_eq!(verdict["tenant_id"], server.tenant_id.to_string());
        assert_eq!(verdict["key_id"], customer_id.as_str());
        assert_eq!(verdict["permissions"], json!(["run:*", "read:*"]));
        assert_eq!(verdict["metadata"], json!({"plan": "gold"}));
        assert_eq!(verdict["expires_at"], Value::Null);
        assert_eq!(
            verdict["rate_limit"],
            json!({"limit": 5, "remaining": 5, "reset_seconds": 0})
        );
        // Two requests of the customer's own spend two; verifying spends none.
        for _ in 0..2 {
            let answer = server
                .call_as(&customer, Method::GET, "/v1/runs", None)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
        for _ in 0..3 {
            let verdict = verify(customer.clone()).await;
            assert_eq!(verdict["rate_limit"]["remaining"], 3, "{name}: {verdict}");
            assert!(verdict["rate_limit"]["reset_seconds"].as_u64().unwrap() > 0);
        }

        let invalid = |code: &str| json!({"valid": false, "code": code});
        assert_eq!(
            verify(server.other_key.clone()).await,
            invalid("invalid_api_key"),
            "{name}: another tenant's key is like no key"
        );
        assert_eq!(verify("nope".into()).await, invalid("malformed_api_key"));
        let path = format!("/v1/api-keys/{customer_id}/revoke");
        let answer = server
            .call(Method::POST, &path, Some(json!({"reason": "churned"})))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(verify(customer.clone()).await, invalid("api_key_revoked"));

        // A key without `keys:verify` is no service credential; the service key manages
        // nothing.
        let answer = server
            .call_as(
                &server.other_key,
                Method::POST,
                "/v1/keys/verify",
                Some(json!({"key": customer})),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{name}: the other owner key may verify"
        );
        assert_eq!(answer.body, invalid("invalid_api_key"), "{name}");
        let runner = issue(&server, &server.key, json!({"name": "runner"})).await;
        let runner = runner["secret"].as_str().unwrap().to_owned();
        let answer = server
            .call_as(
                &runner,
                Method::POST,
                "/v1/keys/verify",
                Some(json!({"key": "x"})),
            )
            .await;
        refused(&answer, StatusCode::FORBIDDEN, "forbidden", name);
        let answer = server
            .call_as(&service, Method::GET, "/v1/api-keys", None)
            .await;
        refused(&answer, StatusCode::FORBIDDEN, "forbidden", name);
    }
}
