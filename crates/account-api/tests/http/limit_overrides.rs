//! Per-tenant limit overrides over HTTP on each backend: an operator sets one (the tenant's
//! quotas show it and its writes obey it), lists it, replaces it and removes it (the plan's
//! value applies again); refusals name their field, tenant keys never reach these routes, and
//! a refused request writes nothing.

use crate::support::{Answer, Server, operator, refused, start};
use account_spine::limits::LimitName;
use account_spine::types::PlanCode;
use account_testkit::backends;
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The tenant's quotas, read with its own key.
async fn quotas(server: &Server, key: &str) -> Value {
    let answer = server.call_as(key, Method::GET, "/v1/quotas", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

/// Every limit of a quotas or limits body.
fn limits_of(body: &Value) -> Value {
    Value::Object(
        LimitName::ALL
            .iter()
            .map(|limit| (limit.as_str().to_owned(), body[limit.as_str()].clone()))
            .collect(),
    )
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn operators_set_list_and_remove_a_tenants_limit_override() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let created = server
            .spine
            .create_operator_key(&operator(), "ops team")
            .await
            .unwrap();
        let op_key = created.plaintext.expose().to_owned();
        let tenant = server.tenant_id;
        let limits = format!("/v1/platform/tenants/{tenant}/limits");
        let api_keys = format!("{limits}/max_api_keys");
        let overrides = format!("{limits}/overrides");
        let plan = account_spine::types::PlanQuotas::built_in(&PlanCode::free()).unwrap();
        let before = quotas(&server, &server.key).await;
        assert_eq!(before["plan"], "free", "{name}");
        assert_eq!(before["max_api_keys"], plan.max_api_keys, "{name}");
        let other_before = quotas(&server, &server.other_key).await;

        // Set, until tomorrow: the answer carries the limits in force, and the tenant sees them.
        // Whole seconds: PostgreSQL keeps microseconds only.
        let until = DateTime::from_timestamp(Utc::now().timestamp() + 86_400, 0).unwrap();
        let set = server
            .call_as(
                &op_key,
                Method::PUT,
                &api_keys,
                Some(json!({
                    "value": 1,
                    "expires_at": until.to_rfc3339(),
                    "reason": "  key hygiene trial  ",
                })),
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{name}: {}", set.body);
        assert_eq!(set.body["limit"], "max_api_keys", "{name}");
        assert_eq!(set.body["value"], 1, "{name}");
        assert_eq!(time(&set.body["expires_at"]), until, "{name}");
        assert_eq!(set.body["reason"], "key hygiene trial", "{name}");
        let set_by = set.body["set_by"].as_str().unwrap().to_owned();
        assert!(set_by.starts_with("operator_key:"), "{name}: {set_by}");
        // The override as stored: the list shows the same `created_at`.
        let created_at = set.body["created_at"].clone();
        assert!(created_at.is_string(), "{name}: {}", set.body);
        let mut expected = limits_of(&before);
        expected["max_api_keys"] = json!(1);
        assert_eq!(set.body["limits"], expected, "{name}");
        let during = quotas(&server, &server.key).await;
        assert_eq!(limits_of(&during), expected, "{name}");
        assert_eq!(
            quotas(&server, &server.other_key).await,
            other_before,
            "{name}: another tenant keeps its limits"
        );
        // The tenant's writes obey it: the owner's key is its one key.
        let issue = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "second"})),
            )
            .await;
        refused(&issue, StatusCode::CONFLICT, "api_key_quota_exceeded", name);

        // Listed, as set.
        let listed = server.call_as(&op_key, Method::GET, &overrides, None).await;
        assert_eq!(listed.status, StatusCode::OK, "{name}: {}", listed.body);
        assert_eq!(listed.body["total"], 1, "{name}: {}", listed.body);
        assert_eq!(listed.body["has_more"], false, "{name}");
        let item = &listed.body["items"][0];
        assert_eq!(item["limit"], "max_api_keys", "{name}");
        assert_eq!(item["value"], 1, "{name}");
        assert_eq!(time(&item["expires_at"]), until, "{name}");
        assert_eq!(item["reason"], "key hygiene trial", "{name}");
        assert_eq!(item["set_by"], set_by.as_str(), "{name}");
        assert_eq!(
            time(&item["created_at"]),
            time(&created_at),
            "{name}: {item}"
        );

        // Replaced, now without an end: still one override.
        let replaced = server
            .call_as(
                &op_key,
                Method::PUT,
                &api_keys,
                Some(json!({"value": 12, "reason": "larger team"})),
            )
            .await;
        assert_eq!(replaced.status, StatusCode::OK, "{name}: {}", replaced.body);
        assert!(replaced.body["expires_at"].is_null(), "{name}");
        assert_eq!(replaced.body["limits"]["max_api_keys"], 12, "{name}");
        assert_eq!(quotas(&server, &server.key).await["max_api_keys"], 12);
        let listed = server.call_as(&op_key, Method::GET, &overrides, None).await;
        assert_eq!(listed.body["total"], 1, "{name}: {}", listed.body);
        assert_eq!(listed.body["items"][0]["value"], 12, "{name}");
        assert!(listed.body["items"][0]["expires_at"].is_null(), "{name}");
        let issue = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "second"})),
            )
            .await;
        assert_eq!(issue.status, StatusCode::CREATED, "{name}: {}", issue.body);

        // Removed: the plan's value again, nothing listed; a second removal finds none.
        let removed = server
            .call_as(&op_key, Method::DELETE, &api_keys, None)
            .await;
        assert_eq!(removed.status, StatusCode::OK, "{name}: {}", removed.body);
        assert_eq!(removed.body["limits"], limits_of(&before), "{name}");
        assert_eq!(
            limits_of(&quotas(&server, &server.key).await),
            limits_of(&before),
            "{name}"
        );
        let listed = server.call_as(&op_key, Method::GET, &overrides, None).await;
        assert_eq!(listed.body["total"], 0, "{name}: {}", listed.body);
        assert_eq!(listed.body["items"], json!([]), "{name}");
        let again = server
            .call_as(&op_key, Method::DELETE, &api_keys, None)
            .await;
        refused(
            &again,
            StatusCode::NOT_FOUND,
            "limit_override_not_found",
            name,
        );
    }
}

/// `answer` is a 422 with `code` naming `field`.
fn names_field(answer: &Answer, code: &str, field: &str, what: &str) {
    let fields = refused(answer, StatusCode::UNPROCESSABLE_ENTITY, code, what);
    assert!(fields[field].is_string(), "{what}: names {field}: {fields}");
}

#[tokio::test]
async fn limit_override_refusals_name_their_field_and_write_nothing() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let created = server
            .spine
            .create_operator_key(&operator(), "ops team")
            .await
            .unwrap();
        let op_key = created.plaintext.expose().to_owned();
        let tenant = server.tenant_id;
        let limits = format!("/v1/platform/tenants/{tenant}/limits");
        let api_keys = format!("{limits}/max_api_keys");
        let unknown = format!("{limits}/max_everything");
        let valid = json!({"value": 9, "reason": "trial"});
        let counts = server.row_counts().await;
        let put = |path: String, body: Value| {
            let server = &server;
            let op_key = &op_key;
            async move { server.call_as(op_key, Method::PUT, &path, Some(body)).await }
        };

        // An unknown limit, set or removed.
        let answer = put(unknown.clone(), valid.clone()).await;
        names_field(&answer, "unknown_limit", "limit", name);
        let answer = server
            .call_as(&op_key, Method::DELETE, &unknown, None)
            .await;
        names_field(&answer, "unknown_limit", "limit", name);

        // The body: a negative value, one beyond the limit's range, a past expiry, no reason.
        let answer = put(api_keys.clone(), json!({"value": -1, "reason": "trial"})).await;
        names_field(&answer, "invalid_request", "value", name);
        let answer = put(
            api_keys.clone(),
            json!({"value": 3_000_000_000_i64, "reason": "x"}),
        )
        .await;
        names_field(&answer, "invalid_limit_value", "value", name);
        let answer = put(
            format!("{limits}/audit_retention_days"),
            json!({"value": 0, "reason": "x"}),
        )
        .await;
        names_field(&answer, "invalid_limit_value", "value", name);
        let past = (Utc::now() - Duration::hours(1)).to_rfc3339();
        let answer = put(
            api_keys.clone(),
            json!({"value": 9, "reason": "x", "expires_at": past}),
        )
        .await;
        names_field(&answer, "invalid_expiry", "expires_at", name);
        let answer = put(api_keys.clone(), json!({"value": 9, "reason": "   "})).await;
        names_field(&answer, "invalid_request", "reason", name);
        let answer = put(api_keys.clone(), json!({"value": 9})).await;
        names_field(&answer, "invalid_request", "reason", name);
        let answer = put(api_keys.clone(), json!({"value": "9", "reason": "x"})).await;
        names_field(&answer, "invalid_request", "value", name);
        let answer = put(
            api_keys.clone(),
            json!({"value": 9, "reason": "x", "until": past}),
        )
        .await;
        names_field(&answer, "invalid_request", "until", name);

        // No such tenant.
        let nowhere = "/v1/platform/tenants/0190a8b6-5c3e-7d2a-9f11-123456789abc/limits";
        let answer = put(format!("{nowhere}/max_api_keys"), valid.clone()).await;
        refused(&answer, StatusCode::NOT_FOUND, "tenant_not_found", name);
        let listed = server
            .call_as(&op_key, Method::GET, &format!("{nowhere}/overrides"), None)
            .await;
        refused(&listed, StatusCode::NOT_FOUND, "tenant_not_found", name);

        // Tenant keys, and no key: refused as on every platform route.
        for path in [&api_keys, &format!("{limits}/overrides")] {
            let answer = server.call_as(&server.key, Method::GET, path, None).await;
            let what = format!("{name}: GET {path}");
            if path.ends_with("/overrides") {
                refused(
                    &answer,
                    StatusCode::FORBIDDEN,
                    "operator_key_required",
                    &what,
                );
            } else {
                // No GET on one limit.
                assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
            }
        }
        let answer = server
            .call_as(&server.key, Method::PUT, &api_keys, Some(valid.clone()))
            .await;
        refused(
            &answer,
            StatusCode::FORBIDDEN,
            "operator_key_required",
            name,
        );
        let answer = server
            .call_as(&server.key, Method::DELETE, &api_keys, None)
            .await;
        refused(
            &answer,
            StatusCode::FORBIDDEN,
            "operator_key_required",
            name,
        );
        let answer = server
            .call_anonymous(Method::PUT, &api_keys, Some(valid.clone()))
            .await;
        refused(&answer, StatusCode::UNAUTHORIZED, "unauthorized", name);
        let answer = server
            .call_anonymous(Method::GET, &format!("{limits}/overrides"), None)
            .await;
        refused(&answer, StatusCode::UNAUTHORIZED, "unauthorized", name);

        assert_eq!(server.row_counts().await, counts, "{name}: nothing written");
        let listed = server
            .call_as(&op_key, Method::GET, &format!("{limits}/overrides"), None)
            .await;
        assert_eq!(listed.body["total"], 0, "{name}: {}", listed.body);
    }
}

#[test]
fn the_document_names_every_limit() {
    let document = serde_json::to_value(account_api::openapi()).unwrap();
    let path = &document["paths"]["/v1/platform/tenants/{tenant_id}/limits/{limit}"];
    for method in ["put", "delete"] {
        let operation = &path[method];
        assert_eq!(operation["tags"], json!(["platform"]), "{method}");
        let limit = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap_or_else(|| panic!("{method}: a `limit` parameter"));
        assert_eq!(limit["in"], "path", "{method}");
        assert_eq!(limit["required"], true, "{method}");
        let names: Vec<&str> = LimitName::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(limit["schema"]["enum"], json!(names), "{method}");
        for code in ["200", "403", "404", "422"] {
            assert!(operation["responses"][code].is_object(), "{method}: {code}");
        }
    }
    let list = &document["paths"]["/v1/platform/tenants/{tenant_id}/limits/overrides"]["get"];
    assert_eq!(list["tags"], json!(["platform"]));
    assert!(list["responses"]["200"].is_object());
}
