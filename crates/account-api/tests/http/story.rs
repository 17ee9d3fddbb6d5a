//! The real server over HTTP through a story, on each backend, on a clock the test steps:
//! runs up to each quota (concurrent runs, runs per day, tokens per month) and the refusal
//! after it, the daily counter starting again at midnight; completion; a pin with a TTL
//! expiring (gone from reads and lists, removed by cleanup); a key issued, rotated and revoked;
//! unknown keys; cross-tenant ids.

use crate::support::{Answer, Server, start_with_clock};
use account_spine::FixedClock;
use account_testkit::backends;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A call with `key` as `(status, body)`.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let Answer { status, body, .. } = server.call_as(key, method, path, body).await;
    (status, body)
}

/// Completes run `id` successfully.
async fn complete(server: &Server, key: &str, id: &str) {
    let (status, body) = call(
        server,
        Method::POST,
        &format!("/v1/runs/{id}/complete"),
        key,
        Some(json!({"success": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A quota refusal: 429 with `code`, `Retry-After` equal to the quota object's
/// `retry_after_seconds`, and the object's limit, period and reset.
fn assert_quota_refusal(
    answer: &Answer,
    code: &str,
    period: &str,
    resets_at: Option<&str>,
    retry_after: u64,
) {
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some(code)),
        "{}",
        answer.body
    );
    let header = answer
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("Retry-After: {}", answer.body));
    assert_eq!(header.to_str().unwrap(), retry_after.to_string());
    let quota = &answer.body["quota"];
    assert_eq!(quota["limit"], code.trim_start_matches("quota_"), "{quota}");
    assert_eq!(quota["period"], period, "{quota}");
    assert_eq!(quota["retry_after_seconds"], retry_after, "{quota}");
    match resets_at {
        Some(expected) => assert_eq!(
            at(quota["resets_at"].as_str().unwrap()),
            at(expected),
            "{quota}"
        ),
        None => assert_eq!(quota["resets_at"], Value::Null, "{quota}"),
    }
}

#[tokio::test]
async fn a_tenant_story_over_http() {
    for backend in backends().unwrap() {
        let clock = Arc::new(FixedClock::new(at("2026-03-10T10:00:00Z")));
        let server = start_with_clock(&backend, clock.clone()).await;
        let key = server.key.clone();
        let other = server.other_key.clone();
        let name = backend.name();

        // Runs up to the free plan's 5 concurrent runs, then a 429 naming the quota.
        let run = json!({"worker_id": "business-builder", "task": "plan"});
        let mut ids = Vec::new();
        for _ in 0..5 {
            let (status, body) =
                call(&server, Method::POST, "/v1/runs", &key, Some(run.clone())).await;
            assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
        let answer = server
            .call(Method::POST, "/v1/runs", Some(run.clone()))
            .await;
        assert_quota_refusal(&answer, "quota_concurrent_runs", "concurrent", None, 10);

        let done = json!({"success": true, "total_tokens": 1000, "cost_cents": 4});
        let (status, body) = call(
            &server,
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
        let (status, body) = call(&server, Method::POST, "/v1/runs", &key, Some(run.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "a finished run frees a slot");
        ids.push(body["id"].as_str().unwrap().to_owned());
        let (status, body) = call(&server, Method::GET, "/v1/runs?limit=2", &key, None).await;
        assert_eq!(
            (status, body["total"].as_u64(), body["has_more"].as_bool()),
            (StatusCode::OK, Some(6), Some(true))
        );

        // Another tenant's run id is not found, never someone else's data.
        let (status, body) = call(
            &server,
            Method::GET,
            &format!("/v1/runs/{}", ids[0]),
            &other,
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("run_not_found"))
        );

        // Runs per day: 100 admitted today (6 so far), then a refusal until midnight UTC.
        for id in ids.drain(1..) {
            complete(&server, &key, &id).await;
        }
        for _ in 6..100 {
            let (status, body) =
                call(&server, Method::POST, "/v1/runs", &key, Some(run.clone())).await;
            assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
            complete(&server, &key, body["id"].as_str().unwrap()).await;
        }
        let answer = server
            .call(Method::POST, "/v1/runs", Some(run.clone()))
            .await;
        let until_midnight: u64 = 14 * 3600;
        assert_quota_refusal(
            &answer,
            "quota_runs_per_day",
            "day",
            Some("2026-03-11T00:00:00Z"),
            until_midnight,
        );
        // One second before midnight it still holds; at midnight the counter starts again.
        clock.advance(TimeDelta::seconds(
            i64::try_from(until_midnight).unwrap() - 1,
        ));
        let answer = server
            .call(Method::POST, "/v1/runs", Some(run.clone()))
            .await;
        assert_quota_refusal(
            &answer,
            "quota_runs_per_day",
            "day",
            Some("2026-03-11T00:00:00Z"),
            1,
        );
        clock.advance(TimeDelta::seconds(1));
        let (status, body) = call(&server, Method::POST, "/v1/runs", &key, Some(run.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: a new day: {body}");
        let today = body["id"].as_str().unwrap().to_owned();

        // Tokens per month: 1 000 000 used (1000 of them yesterday), then a refusal until the
        // first of next month.
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("/v1/runs/{today}/complete"),
            &key,
            Some(json!({"success": true, "total_tokens": 999_000})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let answer = server
            .call(Method::POST, "/v1/runs", Some(run.clone()))
            .await;
        assert_quota_refusal(
            &answer,
            "quota_tokens_per_month",
            "month",
            Some("2026-04-01T00:00:00Z"),
            21 * 86_400,
        );

        // Pins: one with a TTL of an hour, one without.
        let (status, _) = call(
            &server,
            Method::PUT,
            "/v1/memory/pins/agent:cfg",
            &key,
            Some(json!({"value": {"a": 1}, "ttl_seconds": 3600})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(
            &server,
            Method::PUT,
            "/v1/memory/pins/agent:keep",
            &key,
            Some(json!({"value": {"b": 2}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(
            &server,
            Method::GET,
            "/v1/memory/pins/agent:cfg",
            &key,
            None,
        )
        .await;
        assert_eq!((status, &body["value"]), (StatusCode::OK, &json!({"a": 1})));
        let (status, body) = call(
            &server,
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
        let (status, _) = call(
            &server,
            Method::GET,
            "/v1/memory/pins/agent:cfg",
            &other,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // An hour and a second later the TTL pin is gone from reads and lists, but still
        // stored until a cleanup removes it.
        let pin_keys = |body: &Value| -> Vec<String> {
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pin| pin["key"].as_str().unwrap().to_owned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        clock.advance(TimeDelta::seconds(3601));
        let (status, body) = call(
            &server,
            Method::GET,
            "/v1/memory/pins/agent:cfg",
            &key,
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("pin_not_found")),
            "{name}: {body}"
        );
        let (status, body) = call(&server, Method::GET, "/v1/memory/pins", &key, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(pin_keys(&body), ["agent:keep"], "{name}: {body}");
        assert_eq!(body["total"], 1, "{name}: {body}");
        let expired_too = "/v1/memory/pins?include_expired=true";
        let (_, body) = call(&server, Method::GET, expired_too, &key, None).await;
        assert_eq!(
            pin_keys(&body),
            ["agent:cfg", "agent:keep"],
            "{name}: {body}"
        );
        let (status, body) =
            call(&server, Method::POST, "/v1/memory/pins/cleanup", &key, None).await;
        assert_eq!(
            (status, &body["removed"]),
            (StatusCode::OK, &json!(1)),
            "{name}: {body}"
        );
        let (_, body) = call(&server, Method::GET, expired_too, &key, None).await;
        assert_eq!(pin_keys(&body), ["agent:keep"], "{name}: {body}");
        let (_, body) = call(&server, Method::POST, "/v1/memory/pins/cleanup", &key, None).await;
        assert_eq!(body["removed"], 0, "{name}: nothing left to remove");

        // A second key: issued, used, refused writes.
        let (status, body) = call(
            &server,
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
            call(&server, Method::GET, "/v1/runs", &ci_key, None)
                .await
                .0,
            StatusCode::OK
        );
        let (status, _) = call(
            &server,
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

        // Rotated with five minutes' grace: both work until the grace ends, then only the new.
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("/v1/api-keys/{ci_id}/rotate"),
            &key,
            Some(json!({"grace_seconds": 300})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let (new_key, new_id) = (
            body["secret"].as_str().unwrap().to_owned(),
            body["key"]["id"].as_str().unwrap().to_owned(),
        );
        assert_ne!(new_key, ci_key);
        assert_eq!(body["key"]["permissions"], json!(["read:*"]), "{body}");
        for (which, secret) in [("old", &ci_key), ("new", &new_key)] {
            let (status, body) = call(&server, Method::GET, "/v1/runs", secret, None).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{name}: {which} key in grace: {body}"
            );
        }
        clock.advance(TimeDelta::seconds(301));
        let unknown = call(&server, Method::GET, "/v1/runs", "acc_live_not-a-key", None).await;
        assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
        let old = call(&server, Method::GET, "/v1/runs", &ci_key, None).await;
        assert_eq!(
            old, unknown,
            "{name}: the old key after its grace, like an unknown key"
        );
        let (status, body) = call(&server, Method::GET, "/v1/runs", &new_key, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: the new key: {body}");

        // Revoked: refused with the same 401 as an unknown key.
        let (status, _) = call(
            &server,
            Method::POST,
            &format!("/v1/api-keys/{new_id}/revoke"),
            &key,
            Some(json!({"reason": "done"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let revoked = call(&server, Method::GET, "/v1/runs", &new_key, None).await;
        assert_eq!(revoked.0, StatusCode::UNAUTHORIZED);
        assert_eq!(revoked, unknown, "no hint of which check failed");

        // The request id is echoed.
        let answer = server
            .send(
                server
                    .request(Method::GET, "/healthz")
                    .header("x-request-id", "req-42"),
            )
            .await;
        assert_eq!(answer.headers["x-request-id"], "req-42");
    }
}
