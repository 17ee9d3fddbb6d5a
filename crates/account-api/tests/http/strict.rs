//! Input exactly as the OpenAPI document spells it, on each backend: a field documented as an
//! object takes only an object, an enum only its documented spelling (`owner`, not `OWNER` nor
//! `" Pro "`). Each refusal is a 422 (400 in a query) naming the field, and writes nothing.

use crate::support::{Server, refused, start};
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A run to complete, for the `output` refusals.
async fn queued_run(server: &Server) -> String {
    let run = server
        .call(
            Method::POST,
            "/v1/runs",
            Some(json!({"worker_id": "w", "task": "t"})),
        )
        .await;
    assert_eq!(run.status, StatusCode::CREATED, "{}", run.body);
    format!("/v1/runs/{}/complete", run.body["id"].as_str().unwrap())
}

#[tokio::test]
async fn object_fields_take_only_objects() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let complete = queued_run(&server).await;
        let rows_before = server.row_counts().await;
        for not_object in [json!([1, 2]), json!("text"), json!(42), json!(true)] {
            let refusals = [
                (
                    Method::PUT,
                    "/v1/memory/pins/agent:x",
                    json!({"value": not_object}),
                    "value",
                ),
                (
                    Method::POST,
                    "/v1/runs",
                    json!({"worker_id": "w", "task": "t", "input": not_object}),
                    "input",
                ),
                (
                    Method::POST,
                    complete.as_str(),
                    json!({"success": true, "output": not_object}),
                    "output",
                ),
                (
                    Method::PATCH,
                    "/v1/profile",
                    json!({"preferences": not_object}),
                    "preferences",
                ),
            ];
            for (method, path, body, field) in refusals {
                let what = format!("{name}: {method} {path} {body}");
                let answer = server.call(method, path, Some(body)).await;
                let fields = refused(
                    &answer,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request",
                    &what,
                );
                assert!(
                    fields[field]
                        .as_str()
                        .is_some_and(|m| m.starts_with("must be a JSON object")),
                    "{what}: {}",
                    answer.body
                );
            }
        }
        assert_eq!(server.row_counts().await, rows_before, "{name}: no row");
        // An object still is one.
        let answer = server
            .call(
                Method::PUT,
                "/v1/memory/pins/agent:x",
                Some(json!({"value": {"a": [1]}})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
    }
}

/// The refusal names `field` and lists the accepted values.
fn names_field_and_values(answer: &crate::support::Answer, field: &str, values: &str, what: &str) {
    let problem = answer.body["fields"][field].as_str().unwrap_or_default();
    assert!(
        problem.contains(&format!("expected one of: {values}")),
        "{what}: {}",
        answer.body
    );
}

#[tokio::test]
async fn enums_take_exactly_the_documented_spelling() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let rows_before = server.row_counts().await;
        let roles = "owner, admin, member, viewer";
        for role in ["OWNER", "Member", " member", "member "] {
            let what = format!("{name}: role {role:?}");
            let answer = server
                .call(
                    Method::POST,
                    "/v1/invitations",
                    Some(json!({"email": "new@example.com", "role": role})),
                )
                .await;
            refused(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                &what,
            );
            names_field_and_values(&answer, "role", roles, &what);
        }
        for priority in ["HIGH", " high "] {
            let what = format!("{name}: priority {priority:?}");
            let answer = server
                .call(
                    Method::POST,
                    "/v1/support/tickets",
                    Some(json!({"subject": "s", "description": "d", "priority": priority})),
                )
                .await;
            refused(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                &what,
            );
            names_field_and_values(&answer, "priority", "low, medium, high, critical", &what);
        }
        let answer = server
            .call(
                Method::POST,
                "/v1/onboarding/advance",
                Some(json!({"state": "complete"})),
            )
            .await;
        refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            name,
        );
        let answer = server
            .call(Method::GET, "/v1/runs?status=QUEUED", None)
            .await;
        refused(&answer, StatusCode::BAD_REQUEST, "invalid_query", name);
        names_field_and_values(
            &answer,
            "status",
            "queued, running, completed, failed, crashed",
            name,
        );
        assert_eq!(server.row_counts().await, rows_before, "{name}: no row");

        // The documented spelling is accepted.
        let answer = server
            .call(
                Method::POST,
                "/v1/invitations",
                Some(json!({"email": "new@example.com", "role": "member"})),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{name}: {}",
            answer.body
        );
        let answer = server
            .call(Method::GET, "/v1/runs?status=queued", None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        assert!(answer.body["items"].is_array(), "{name}: {}", answer.body);
    }
}

/// Found in issue 19: a NUL in a lifecycle reason was stored on SQLite and a 500 on PostgreSQL.
/// Every stored text now goes through one rule (account-values' `FreeText` and bounded text
/// types): no control character but line feed and tab, NUL refused the same on every backend.
#[tokio::test]
async fn free_text_with_control_characters_is_refused_alike_on_every_backend() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let operator = server
            .spine
            .create_operator_key(&crate::support::operator(), "ops")
            .await
            .unwrap();
        let operator_key = operator.plaintext.expose().to_owned();
        let tenant = server.tenant_id;
        let rows_before = server.row_counts().await;
        let events_before = server.events.all().len();
        let platform = [
            (
                format!("/v1/platform/tenants/{tenant}/lifecycle"),
                json!({"action": "suspend", "reason": "spam\u{0}"}),
                "invalid_reason",
                "reason",
                "must not contain the NUL character",
            ),
            (
                format!("/v1/platform/tenants/{tenant}/onboarding/complete"),
                json!({"reason": "waived\u{0}"}),
                "invalid_reason",
                "reason",
                "must not contain the NUL character",
            ),
        ];
        let tenant_routes = [
            (
                "/v1/runs".to_owned(),
                json!({"worker_id": "w", "task": "ring\u{7}"}),
                "text_has_control_character",
                "task",
                "must not contain control characters",
            ),
            (
                "/v1/runs".to_owned(),
                json!({"worker_id": "w", "task": "a\u{0}b"}),
                "text_has_nul",
                "task",
                "must not contain the NUL character",
            ),
            (
                "/v1/support/tickets".to_owned(),
                json!({"subject": "s\u{0}", "description": "d"}),
                "invalid_ticket",
                "subject",
                "must not contain the NUL character",
            ),
        ];
        let calls = platform
            .into_iter()
            .map(|call| (operator_key.clone(), call))
            .chain(
                tenant_routes
                    .into_iter()
                    .map(|call| (server.key.clone(), call)),
            );
        for (key, (path, body, code, field, problem)) in calls {
            let what = format!("{name}: {path} {body}");
            let answer = server.call_as(&key, Method::POST, &path, Some(body)).await;
            refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, code, &what);
            let message = answer.body["message"].as_str().unwrap_or_default();
            assert!(message.contains(problem), "{what}: {}", answer.body);
            if answer.body["fields"].is_object() {
                assert!(
                    answer.body["fields"].get(field).is_some(),
                    "{what}: {}",
                    answer.body
                );
            }
        }
        assert_eq!(server.row_counts().await, rows_before, "{name}: no row");
        assert_eq!(server.events.all().len(), events_before, "{name}: no event");
        // Line feed and tab are text.
        let answer = server
            .call_as(
                &operator_key,
                Method::POST,
                &format!("/v1/platform/tenants/{tenant}/lifecycle"),
                Some(json!({"action": "suspend", "reason": "spam\n\tsee ticket"})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
    }
}
