//! Every rejection answers `{"error", "message"}` (and `fields` for input) with its 4xx, and
//! leaves no trace: no run, pin or key, no domain event.

use crate::support::{Answer, Server, start};
use account_testkit::backends;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The answer is an error body with this status and code; returns its `fields`.
fn refused(answer: &Answer, status: StatusCode, code: &str, what: &str) -> Value {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert_eq!(answer.body["error"], code, "{what}: {}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: a message: {}",
        answer.body
    );
    assert!(
        answer.headers.contains_key("x-request-id"),
        "{what}: a request id"
    );
    answer.body["fields"].clone()
}

async fn raw(
    server: &Server,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> Answer {
    server
        .send(
            server
                .request(method, path)
                .bearer_auth(&server.key)
                .header(CONTENT_TYPE, content_type)
                .body(body.to_owned()),
        )
        .await
}

/// What the first tenant holds, as the API shows it: runs, pins and keys.
async fn holdings(server: &Server) -> (u64, u64, u64) {
    let total = |a: Answer| a.body["total"].as_u64().unwrap();
    (
        total(server.call(Method::GET, "/v1/runs", None).await),
        total(
            server
                .call(Method::GET, "/v1/memory/pins?include_expired=true", None)
                .await,
        ),
        total(
            server
                .call(Method::GET, "/v1/api-keys?include_revoked=true", None)
                .await,
        ),
    )
}

#[tokio::test]
async fn every_rejection_is_a_json_error_and_writes_nothing() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let before = holdings(&server).await;
        let events_before = server.events.all().len();
        let json = "application/json";

        // Bodies.
        let answer = raw(
            &server,
            Method::POST,
            "/v1/runs",
            json,
            r#"{"worker_id": "w","#,
        )
        .await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "truncated JSON",
        );
        let answer = raw(
            &server,
            Method::POST,
            "/v1/runs",
            json,
            r#"{"worker_id":"w","task":"t"} x"#,
        )
        .await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "trailing characters",
        );
        let answer = raw(&server, Method::POST, "/v1/runs", json, "").await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "empty body",
        );

        let answer = server
            .call(
                Method::POST,
                "/v1/runs",
                Some(json!({"worker_id": "w", "task": "t", "colour": 1})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "unknown field",
        );
        assert!(
            fields["colour"]
                .as_str()
                .is_some_and(|m| m.contains("not a known field")),
            "{fields}"
        );

        let answer = server
            .call(
                Method::POST,
                "/v1/runs",
                Some(json!({"worker_id": 7, "task": "t"})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "wrong type",
        );
        assert!(
            fields["worker_id"]
                .as_str()
                .is_some_and(|m| m.contains("invalid type")),
            "{fields}"
        );

        let answer = server
            .call(Method::POST, "/v1/runs", Some(json!({"task": "t"})))
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "missing field",
        );
        assert_eq!(fields, json!({"worker_id": "is required"}));

        let answer = server
            .call(
                Method::POST,
                "/v1/runs",
                Some(json!(["not", "an", "object"])),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "array body",
        );
        assert!(fields["body"].is_string(), "{fields}");

        // A value that is no object is refused as it is parsed (its type is the document's
        // `Object`), before the ranges are checked.
        let answer = server
            .call(
                Method::PUT,
                "/v1/memory/pins/agent:cfg",
                Some(json!({"value": [1], "ttl_seconds": -1})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "pin value",
        );
        assert_eq!(fields["value"], "must be a JSON object, not an array");
        // Out of range.
        let answer = server
            .call(
                Method::PUT,
                "/v1/memory/pins/agent:cfg",
                Some(json!({"value": {}, "ttl_seconds": -1})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "pin ranges",
        );
        assert!(
            fields["ttl_seconds"]
                .as_str()
                .unwrap()
                .starts_with("must be between 0 and 31536000"),
            "{fields}"
        );
        let answer = server
            .call(
                Method::PUT,
                "/v1/memory/pins/agent:cfg",
                Some(json!({"value": {}, "ttl_seconds": 99_999_999_999_i64})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "i32 overflow",
        );
        assert!(fields["ttl_seconds"].is_string(), "{fields}");
        let answer = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": " ", "rate_limit_rpm": 1001, "max_concurrent_runs": 0})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "key ranges",
        );
        assert_eq!(
            fields.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["max_concurrent_runs", "name", "rate_limit_rpm"]
        );
        let answer = server
            .call(
                Method::POST,
                &format!("/v1/runs/{}/complete", uuid_like()),
                Some(json!({"success": true, "total_tokens": -1, "error": "e".repeat(10_001)})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "negative metric, error text over 10,000 characters",
        );
        assert!(fields["total_tokens"].is_string(), "{fields}");
        assert!(fields["error"].is_string(), "{fields}");

        // Refusals the engines make name their field too.
        let answer = server
            .call(
                Method::PUT,
                "/v1/memory/pins/bad..key",
                Some(json!({"value": {}})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pin_key",
            "pin key",
        );
        assert!(fields["key"].is_string(), "{fields}");
        let answer = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "ci", "permissions": ["root"]})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_permission",
            "permission",
        );
        assert!(fields["permissions"].is_string(), "{fields}");

        // Media type and size.
        let answer = raw(
            &server,
            Method::POST,
            "/v1/runs",
            "text/plain",
            r#"{"worker_id":"w","task":"t"}"#,
        )
        .await;
        refused(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "text/plain",
        );
        let answer = server
            .send(
                server
                    .request(Method::POST, "/v1/runs")
                    .bearer_auth(&server.key)
                    .body("{}"),
            )
            .await;
        refused(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "no content type",
        );
        let big = json!({"value": {"blob": "x".repeat(account_api::MAX_BODY_BYTES)}});
        let answer = server
            .call(Method::PUT, "/v1/memory/pins/agent:big", Some(big))
            .await;
        refused(
            &answer,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "oversized body",
        );

        // Path and query parameters.
        let answer = server
            .call(Method::GET, "/v1/runs/not-a-run-id", None)
            .await;
        let fields = refused(&answer, StatusCode::BAD_REQUEST, "invalid_path", "run id");
        assert!(
            fields["id"].as_str().unwrap().contains("not-a-run-id"),
            "{fields}"
        );
        let answer = server
            .call(
                Method::POST,
                "/v1/api-keys/42/revoke",
                Some(json!({"reason": "x"})),
            )
            .await;
        let fields = refused(&answer, StatusCode::BAD_REQUEST, "invalid_path", "key id");
        assert!(fields["id"].is_string(), "{fields}");
        for (query, field) in [
            ("limit=abc", "limit"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("offset=-1", "offset"),
            ("status=bogus", "status"),
            ("colour=red", "colour"),
        ] {
            let answer = server
                .call(Method::GET, &format!("/v1/runs?{query}"), None)
                .await;
            let fields = refused(&answer, StatusCode::BAD_REQUEST, "invalid_query", query);
            assert!(fields[field].is_string(), "{query}: {fields}");
        }
        let answer = server
            .call(
                Method::GET,
                "/v1/usage?start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z",
                None,
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "start after end",
        );
        assert!(fields["start"].is_string(), "{fields}");
        let answer = server
            .call(Method::GET, "/v1/usage?start=yesterday", None)
            .await;
        let fields = refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "not a timestamp",
        );
        assert!(fields["start"].is_string(), "{fields}");

        // Routes and methods.
        let answer = server.call(Method::GET, "/v1/nothing-here", None).await;
        refused(
            &answer,
            StatusCode::NOT_FOUND,
            "route_not_found",
            "unknown route",
        );
        let answer = server.send(server.request(Method::GET, "/")).await;
        refused(&answer, StatusCode::NOT_FOUND, "route_not_found", "root");
        let answer = server.call(Method::DELETE, "/v1/runs", None).await;
        refused(
            &answer,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "DELETE /v1/runs",
        );
        let allow = answer.headers["allow"].to_str().unwrap();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        let answer = server.call(Method::PATCH, "/healthz", None).await;
        refused(
            &answer,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "PATCH /healthz",
        );

        // Credentials come first, and their refusal is JSON too.
        let answer = server
            .send(
                server
                    .request(Method::POST, "/v1/runs")
                    .header(CONTENT_TYPE, json)
                    .body("{"),
            )
            .await;
        refused(&answer, StatusCode::UNAUTHORIZED, "unauthorized", "no key");

        // Invitation accept (unauthenticated) parses the same way.
        let answer = server
            .send(
                server
                    .request(
                        Method::POST,
                        &format!("/v1/invitations/{}/{}/accept", uuid_like(), uuid_like()),
                    )
                    .json(&json!({"token": "t", "extra": true})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "accept body",
        );
        assert!(fields["extra"].is_string(), "{fields}");
        let answer = server
            .send(
                server
                    .request(Method::POST, "/v1/invitations/acme/1/accept")
                    .json(&json!({"token": "t"})),
            )
            .await;
        let fields = refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "accept path",
        );
        assert!(fields["tenant"].is_string(), "{fields}");

        // Nothing was written.
        assert_eq!(holdings(&server).await, before, "{}", backend.name());
        assert_eq!(server.events.all().len(), events_before, "no domain event");

        // And the bounds agree with the engines': the extremes are accepted end to end.
        let answer = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "x".repeat(100), "rate_limit_rpm": 1000, "max_concurrent_runs": 100})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        let answer = server
            .call(
                Method::PUT,
                "/v1/memory/pins/agent:cfg",
                Some(json!({"value": {}, "ttl_seconds": 31_536_000})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let answer = server
            .call(
                Method::GET,
                "/v1/runs?limit=100&offset=0&status=queued",
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
}

/// A well-formed id that names nothing.
fn uuid_like() -> &'static str {
    "0190a8b6-5c3e-7d2a-9f11-123456789abc"
}

/// Found by schemathesis: PostgreSQL cannot store the NUL character in `jsonb` or `text`
/// (SQLite can), which answered 500. Every backend now refuses it alike, with a 422 naming
/// the field, and writes nothing.
#[tokio::test]
async fn json_holding_nul_is_refused_with_its_field_and_writes_nothing() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let run = server
            .call(
                Method::POST,
                "/v1/runs",
                Some(json!({"worker_id": "w", "task": "t"})),
            )
            .await;
        assert_eq!(run.status, StatusCode::CREATED, "{name}: {}", run.body);
        let complete = format!("/v1/runs/{}/complete", run.body["id"].as_str().unwrap());
        let profile_before = server.call(Method::GET, "/v1/profile", None).await;
        assert_eq!(profile_before.status, StatusCode::OK, "{name}");
        let rows_before = server.row_counts().await;
        let events_before = server.events.all().len();

        let refusals = [
            (
                Method::PUT,
                "/v1/memory/pins/agent:nul",
                json!({"value": {"a": "x\u{0}y"}}),
                "value.a",
            ),
            (
                Method::PUT,
                "/v1/memory/pins/agent:nul",
                json!({"value": {"a": {"k\u{0}": 1}}}),
                "value.a",
            ),
            (
                Method::PATCH,
                "/v1/profile",
                json!({"preferences": {"theme": ["x\u{0}"]}}),
                "preferences.theme[0]",
            ),
            (
                Method::PATCH,
                "/v1/profile",
                json!({"display_name": "Ann", "preferences": {"k\u{0}": "v"}}),
                "preferences",
            ),
            (
                Method::POST,
                complete.as_str(),
                json!({"success": true, "output": {"a": {"b c": "\u{0}"}}}),
                "output.a.b c",
            ),
            (
                Method::POST,
                complete.as_str(),
                json!({"success": false, "error": "boom\u{0}"}),
                "error",
            ),
            (
                Method::POST,
                "/v1/runs",
                json!({"worker_id": "w", "task": "t", "input": {"\u{0}": 1}}),
                "input",
            ),
        ];
        for (method, path, body, field) in refusals {
            let what = format!("{name}: {method} {path} {body}");
            let answer = server.call(method, path, Some(body)).await;
            let fields = refused(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "text_has_nul",
                &what,
            );
            assert!(
                fields[field]
                    .as_str()
                    .is_some_and(|m| m.contains("must not contain the NUL character")),
                "{what}: {}",
                answer.body
            );
        }

        assert_eq!(server.row_counts().await, rows_before, "{name}: no row");
        assert_eq!(server.events.all().len(), events_before, "{name}: no event");
        let profile_after = server.call(Method::GET, "/v1/profile", None).await;
        assert_eq!(profile_after.body, profile_before.body, "{name}");
        let run_after = server
            .call(
                Method::GET,
                &format!("/v1/runs/{}", run.body["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(run_after.body["status"], "queued", "{name}");
    }
}
