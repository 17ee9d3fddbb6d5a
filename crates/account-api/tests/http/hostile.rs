//! Hostile input against the real server, on each backend. SQL-injection-shaped strings and
//! `LIKE` wildcards are data: in every path, query and body field that reaches a query they
//! either fail their parser (a 4xx) or match and store literally, never widening a query.
//! Oversized, deeply nested, non-UTF-8 and unknown-field input is a 4xx with a JSON message,
//! and a refusal writes nothing: every table's row count is the same afterwards.

use crate::support::{Answer, Server, refused, start};
use account_api::MAX_BODY_BYTES;
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const INJECTIONS: [&str; 2] = ["' OR 1=1 --", "'; DROP TABLE tenants; --"];
const WILDCARDS: [&str; 3] = ["%", "_", "\\"];
const JSON: &str = "application/json";

/// Pins the `LIKE` tests list: a wildcard would also match the ones that merely contain it.
const PIN_KEYS: [&str; 6] = ["plain", "%lit", "50%off", "_under", "a_b", "axb"];

/// `text` as one path segment or query value: every byte outside the unreserved set escaped.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Any 4xx with the JSON error shape (the status depends on which parser refuses).
fn client_error(answer: &Answer, what: &str) {
    assert!(
        answer.status.is_client_error(),
        "{what}: {} {}",
        answer.status,
        answer.body
    );
    let code = answer.body["error"].as_str().unwrap_or_default().to_owned();
    refused(answer, answer.status, &code, what);
}

/// The keys of a pin listing, in order.
async fn listed(server: &Server, prefix: &str) -> Answer {
    server
        .call(
            Method::GET,
            &format!(
                "/v1/memory/pins?include_expired=true&limit=100&prefix={}",
                encode(prefix)
            ),
            None,
        )
        .await
}

fn keys(answer: &Answer) -> Vec<String> {
    answer.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", answer.body))
        .iter()
        .map(|pin| pin["key"].as_str().unwrap().to_owned())
        .collect()
}

async fn put_pin(server: &Server, key: &str, value: Value) -> Answer {
    server
        .call(
            Method::PUT,
            &format!("/v1/memory/pins/{}", encode(key)),
            Some(json!({ "value": value })),
        )
        .await
}

#[tokio::test]
async fn injection_shaped_strings_and_like_wildcards_are_only_ever_data() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        for key in PIN_KEYS {
            let answer = put_pin(&server, key, json!({"k": key})).await;
            assert_eq!(answer.status, StatusCode::OK, "{key}: {}", answer.body);
        }
        let answer = server
            .call(
                Method::POST,
                "/v1/runs",
                Some(json!({"worker_id": "w1", "task": "t"})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        let before = server.row_counts().await;
        let events_before = server.events.all().len();

        // A LIKE prefix matches literally: `%` and `_` are characters, not wildcards.
        for (prefix, expected) in [
            ("%", vec!["%lit"]),
            ("_", vec!["_under"]),
            ("a_", vec!["a_b"]),
            ("50%", vec!["50%off"]),
            ("", vec!["%lit", "50%off", "_under", "a_b", "axb", "plain"]),
        ] {
            let answer = listed(&server, prefix).await;
            assert_eq!(answer.status, StatusCode::OK, "{prefix:?}: {}", answer.body);
            let mut found = keys(&answer);
            found.sort();
            assert_eq!(found, expected, "prefix {prefix:?} on {}", backend.name());
        }
        let answer = listed(&server, "\\").await;
        refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pin_key",
            "backslash prefix",
        );

        for text in INJECTIONS.into_iter().chain(WILDCARDS) {
            let what = |place: &str| format!("{text:?} in {place} on {}", backend.name());
            let segment = encode(text);

            // Pin key in the path: no such pin (or not a key), never another pin.
            for method in [Method::GET, Method::DELETE] {
                let answer = server
                    .call(method.clone(), &format!("/v1/memory/pins/{segment}"), None)
                    .await;
                client_error(&answer, &what(&format!("{method} pin key")));
            }
            // Pin prefix in the query: only keys that literally start with it.
            let answer = listed(&server, text).await;
            if answer.status == StatusCode::OK {
                let found = keys(&answer);
                assert!(
                    found.iter().all(|key| key.starts_with(text)),
                    "{}: {found:?}",
                    what("prefix")
                );
                assert!(found.len() <= 1, "{}: {found:?}", what("prefix"));
            } else {
                client_error(&answer, &what("prefix"));
            }
            // Worker id filter: the run of `w1` never matches.
            let answer = server
                .call(Method::GET, &format!("/v1/runs?worker_id={segment}"), None)
                .await;
            if answer.status == StatusCode::OK {
                assert_eq!(answer.body["total"], 0, "{}", what("worker_id filter"));
            } else {
                client_error(&answer, &what("worker_id filter"));
            }
            // Ids in paths are typed: a 400 naming the parameter.
            for (method, path) in [
                (Method::GET, format!("/v1/runs/{segment}")),
                (Method::POST, format!("/v1/api-keys/{segment}/revoke")),
                (Method::POST, format!("/v1/api-keys/{segment}/rotate")),
                (Method::DELETE, format!("/v1/users/{segment}")),
                (Method::POST, format!("/v1/invitations/{segment}/revoke")),
            ] {
                let answer = server
                    .call(method, &path, Some(json!({"reason": "x"})))
                    .await;
                refused(
                    &answer,
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    &what(&path),
                );
            }
            // Enums and numbers in queries.
            for query in [
                format!("/v1/users?role={segment}"),
                format!("/v1/users?status={segment}"),
                format!("/v1/runs?status={segment}"),
                format!("/v1/runs?limit={segment}"),
                format!("/v1/memory/pins?offset={segment}"),
                format!("/v1/api-keys?include_revoked={segment}"),
                format!("/v1/invitations?status={segment}"),
            ] {
                let answer = server.call(Method::GET, &query, None).await;
                refused(
                    &answer,
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    &what(&query),
                );
            }
            // Body fields that must parse: emails, worker ids, time zones.
            for email in [text.to_owned(), format!("ann@{text}.com")] {
                let answer = server
                    .call(
                        Method::POST,
                        "/v1/invitations",
                        Some(json!({"email": email, "role": "member"})),
                    )
                    .await;
                client_error(&answer, &what("invitation email"));
            }
            if text != "_" {
                // `_` is a valid worker id: admitting it would be correct, and a write.
                let answer = server
                    .call(
                        Method::POST,
                        "/v1/runs",
                        Some(json!({"worker_id": text, "task": "t"})),
                    )
                    .await;
                client_error(&answer, &what("worker_id"));
            }
            let answer = server
                .call(
                    Method::PATCH,
                    "/v1/profile",
                    Some(json!({"time_zone": text})),
                )
                .await;
            client_error(&answer, &what("time zone"));
        }
        assert_eq!(
            server.row_counts().await,
            before,
            "refusals wrote nothing on {}",
            backend.name()
        );
        assert_eq!(server.events.all().len(), events_before, "no domain event");

        // Valid fields holding injection text are stored and matched as written.
        for text in INJECTIONS {
            let answer = put_pin(&server, text, json!({"q": text})).await;
            assert_eq!(answer.status, StatusCode::OK, "{text:?}: {}", answer.body);
            assert_eq!(answer.body["key"], text);
            let answer = server
                .call(
                    Method::GET,
                    &format!("/v1/memory/pins/{}", encode(text)),
                    None,
                )
                .await;
            assert_eq!(answer.body["value"], json!({"q": text}), "{text:?}");
            let answer = server
                .call(Method::POST, "/v1/api-keys", Some(json!({"name": text})))
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
            assert_eq!(answer.body["key"]["name"], text, "{}", answer.body);
        }
        let mut found = keys(&listed(&server, "'").await);
        found.sort();
        assert_eq!(found, INJECTIONS.map(str::to_owned).to_vec());
        let after = server.row_counts().await;
        for (table, delta) in [
            ("memory_pins", 2),
            ("api_keys", 2),
            ("tenants", 0),
            ("users", 0),
        ] {
            assert_eq!(
                after[table],
                before[table] + delta,
                "{table} on {}",
                backend.name()
            );
        }
        // The other tenant sees none of it.
        let answer = server
            .call_as(
                &server.other_key.clone(),
                Method::GET,
                "/v1/memory/pins?include_expired=true",
                None,
            )
            .await;
        assert_eq!(answer.body["total"], 0, "{}", answer.body);
    }
}

/// `{"value": {"a": <levels of [ ]>}}`: nesting far past serde_json's recursion limit.
fn deep_arrays(levels: usize) -> String {
    format!(r#"{{"a":{}{}}}"#, "[".repeat(levels), "]".repeat(levels))
}

/// A JSON body of exactly `size` bytes: a pin value padded with a long string.
fn body_of_size(size: usize) -> String {
    let frame = r#"{"value":{"pad":""}}"#.len();
    format!(r#"{{"value":{{"pad":"{}"}}}}"#, "x".repeat(size - frame))
}

#[tokio::test]
async fn oversized_deep_non_utf8_and_unknown_input_is_refused_and_writes_nothing() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let before = server.row_counts().await;
        let events_before = server.events.all().len();
        let name = backend.name();

        // Oversized bodies: one byte over the limit is 413 on every JSON route; at the limit
        // it is read (and refused by the pin's own size limit, not as a 413).
        let at_limit = body_of_size(MAX_BODY_BYTES);
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        let answer = server
            .call_raw(Method::PUT, "/v1/memory/pins/big", JSON, at_limit)
            .await;
        client_error(&answer, "a body at the limit");
        assert_ne!(answer.body["error"], "payload_too_large", "{name}");
        for (method, path) in [
            (Method::PUT, "/v1/memory/pins/big"),
            (Method::PATCH, "/v1/profile"),
            (Method::POST, "/v1/api-keys"),
            (Method::POST, "/v1/runs"),
        ] {
            let answer = server
                .call_raw(method, path, JSON, body_of_size(MAX_BODY_BYTES + 1))
                .await;
            refused(
                &answer,
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("{path} one byte over on {name}"),
            );
        }

        // Deep nesting: refused by the parser's recursion limit (no stack overflow), and a
        // shallower nesting by the preference depth bound.
        for levels in [10_000, 200] {
            let pin = format!(r#"{{"value":{}}}"#, deep_arrays(levels));
            let answer = server
                .call_raw(Method::PUT, "/v1/memory/pins/deep", JSON, pin)
                .await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &format!("pin {levels} deep"),
            );
            let preferences = format!(r#"{{"preferences":{}}}"#, deep_arrays(levels));
            let answer = server
                .call_raw(Method::PATCH, "/v1/profile", JSON, preferences)
                .await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &format!("preferences {levels} deep"),
            );
        }
        let objects = format!(
            r#"{{"preferences":{}1{}}}"#,
            r#"{"a":"#.repeat(10_000),
            "}".repeat(10_000)
        );
        let answer = server
            .call_raw(Method::PATCH, "/v1/profile", JSON, objects)
            .await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "10 000 nested objects",
        );
        let answer = server
            .call(
                Method::PATCH,
                "/v1/profile",
                Some(json!({"preferences": {"a": [[[[[1]]]]]}})),
            )
            .await;
        refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_preferences",
            "preferences past depth 4",
        );

        // Invalid UTF-8: in a body, inside a JSON string, and in path segments.
        for body in [
            b"\xff\xfe".to_vec(),
            b"{\"worker_id\":\"\xff\",\"task\":\"t\"}".to_vec(),
            b"{\"worker_id\":\"w\",\"task\":\"\xc3\x28\"}".to_vec(),
        ] {
            let answer = server.call_raw(Method::POST, "/v1/runs", JSON, body).await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "invalid UTF-8 body",
            );
        }
        for (method, path) in [
            (Method::GET, "/v1/memory/pins/%FF%FE"),
            (Method::DELETE, "/v1/memory/pins/a%C3%28"),
            (Method::PUT, "/v1/memory/pins/%FF"),
            (Method::GET, "/v1/runs/%FF"),
            (Method::POST, "/v1/api-keys/%FF/revoke"),
        ] {
            let answer = server
                .call(method, path, Some(json!({"value": {}, "reason": "x"})))
                .await;
            refused(
                &answer,
                StatusCode::BAD_REQUEST,
                "invalid_path",
                &format!("invalid UTF-8 in {path}"),
            );
        }

        // Unknown fields name themselves.
        for (method, path, body, field) in [
            (
                Method::PATCH,
                "/v1/profile",
                json!({"nickname": "x"}),
                "nickname",
            ),
            (
                Method::PUT,
                "/v1/memory/pins/k",
                json!({"value": {}, "owner": "x"}),
                "owner",
            ),
            (
                Method::POST,
                "/v1/api-keys",
                json!({"name": "k", "scopes": []}),
                "scopes",
            ),
            (
                Method::POST,
                "/v1/invitations",
                json!({"email": "a@example.com", "role": "member", "admin": true}),
                "admin",
            ),
        ] {
            let answer = server.call(method, path, Some(body)).await;
            let fields = refused(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                &format!("unknown field on {path}"),
            );
            assert!(
                fields[field]
                    .as_str()
                    .is_some_and(|m| m.contains("not a known field")),
                "{path}: {fields}"
            );
        }

        // Pagination at the integer edges: a 4xx or an empty page, never a server error.
        for query in [
            "offset=18446744073709551615",
            "offset=9223372036854775807",
            "offset=9223372036854775808",
        ] {
            for list in ["/v1/memory/pins", "/v1/runs", "/v1/api-keys", "/v1/users"] {
                let answer = server
                    .call(Method::GET, &format!("{list}?{query}"), None)
                    .await;
                if answer.status == StatusCode::OK {
                    assert_eq!(answer.body["items"], json!([]), "{list}?{query}");
                } else {
                    client_error(&answer, &format!("{list}?{query} on {name}"));
                }
            }
        }
        for query in [
            "limit=18446744073709551616",
            "limit=-1",
            "limit=1e3",
            "offset=%FF",
            "limit=%00",
        ] {
            let answer = server
                .call(Method::GET, &format!("/v1/memory/pins?{query}"), None)
                .await;
            refused(&answer, StatusCode::BAD_REQUEST, "invalid_query", query);
        }

        assert_eq!(
            server.row_counts().await,
            before,
            "refusals wrote nothing on {name}"
        );
        assert_eq!(server.events.all().len(), events_before, "no domain event");
    }
}
