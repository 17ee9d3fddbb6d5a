//! Platform routes over HTTP on each backend: operator keys and tenant keys never stand in for
//! each other; an operator suspends a tenant (its writes are refused), resumes it (writes work
//! again), and the lifecycle history lists both with actor and reason; `/metrics` counts it.

use crate::support::{Answer, Server, operator, start};
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A call with `key` and an optional JSON body, as `(status, body)`.
async fn send(
    server: &Server,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let Answer { status, body, .. } = server.call_as(key, method, path, body).await;
    (status, body)
}

#[tokio::test]
async fn operators_suspend_and_resume_tenants_over_http() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let spine = &server.spine;
        let cli = operator();
        let tenant = server.tenant_id;
        let tenant_key = server.key.clone();
        let op = spine.create_operator_key(&cli, "ops team").await.unwrap();
        let op_key = op.plaintext.expose().to_owned();
        assert!(op_key.starts_with("acc_op_"));
        let listed = spine.list_operator_keys(&cli).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(op_key.starts_with(&listed[0].key_prefix));

        let lifecycle = format!("/v1/platform/tenants/{tenant}/lifecycle");
        let pin = "/v1/memory/pins/greeting";
        let name = backend.name();

        // A tenant key never acts as operator; an operator key never as a tenant.
        let (status, body) = send(
            &server,
            &tenant_key,
            Method::POST,
            &lifecycle,
            Some(json!({"action": "suspend", "reason": "x"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        assert_eq!(body["error"], "operator_key_required");
        let (status, _) = send(&server, &tenant_key, Method::GET, &lifecycle, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}");
        let (status, _) = send(&server, &op_key, Method::GET, "/v1/onboarding", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        let (status, _) = send(
            &server,
            &op_key,
            Method::PUT,
            pin,
            Some(json!({"value": {"n": 1}})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        let last = if op_key.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &op_key[..op_key.len() - 1]);
        let (status, _) = send(&server, &forged, Method::GET, &lifecycle, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");

        // Active: writes work; the tenant reads its own quotas.
        let (status, body) = send(
            &server,
            &tenant_key,
            Method::PUT,
            pin,
            Some(json!({"value": {"n": 1}})),
        )
        .await;
        assert!(status.is_success(), "{name}: {status} {body}");
        let (status, body) = send(&server, &tenant_key, Method::GET, "/v1/quotas", None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["plan"], "free");
        assert_eq!(body["status"], "active");

        // Suspend: the tenant's writes are refused.
        let (status, body) = send(
            &server,
            &op_key,
            Method::POST,
            &lifecycle,
            Some(json!({"action": "suspend", "reason": "unpaid invoice"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(
            (body["from"].as_str(), body["to"].as_str()),
            (Some("active"), Some("suspended"))
        );
        let (status, body) = send(
            &server,
            &tenant_key,
            Method::PUT,
            pin,
            Some(json!({"value": {"n": 2}})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        // Reads still work while suspended (§3.3), and see the value from before.
        let (status, body) = send(&server, &tenant_key, Method::GET, pin, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["value"], json!({"n": 1}), "{name}: {body}");

        // Resume: writes work again.
        let (status, body) = send(
            &server,
            &op_key,
            Method::POST,
            &lifecycle,
            Some(json!({"action": "resume", "reason": "paid"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body) = send(
            &server,
            &tenant_key,
            Method::PUT,
            pin,
            Some(json!({"value": {"n": 3}})),
        )
        .await;
        assert!(status.is_success(), "{name}: {status} {body}");

        // The history lists both, newest first, with actor and reason.
        let (status, body) = send(&server, &op_key, Method::GET, &lifecycle, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["total"], 2, "{name}: {body}");
        let actor = format!("operator_key:{}", op.key.id);
        let items = body["items"].as_array().unwrap();
        assert_eq!(items[0]["to"], "active");
        assert_eq!(items[0]["reason"], "paid");
        assert_eq!(items[1]["to"], "suspended");
        assert_eq!(items[1]["reason"], "unpaid invoice");
        for item in items {
            assert_eq!(item["actor_id"], actor.as_str(), "{name}: {item}");
        }

        // Plan change and forced onboarding completion.
        let (status, body) = send(
            &server,
            &op_key,
            Method::PUT,
            &format!("/v1/platform/tenants/{tenant}/plan"),
            Some(json!({"plan": "pro"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (_, body) = send(&server, &tenant_key, Method::GET, "/v1/quotas", None).await;
        assert_eq!(body["plan"], "pro", "{name}: {body}");
        let (status, body) = send(
            &server,
            &op_key,
            Method::POST,
            &format!("/v1/platform/tenants/{tenant}/onboarding/complete"),
            Some(json!({"reason": "enterprise pilot"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["to"], "COMPLETE", "{name}: {body}");

        // `/metrics` in the Prometheus text format.
        let text = server
            .request(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut samples = std::collections::HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                assert!(
                    line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            samples.insert(series.to_owned(), value);
        }
        assert_eq!(
            samples[r#"account_operation_calls_total{operation="lifecycle.transition"}"#], 2.0,
            "{name}"
        );
        assert_eq!(
            samples[r#"account_operation_duration_seconds_count{operation="lifecycle.transition"}"#],
            2.0
        );
        assert!(
            samples[r#"account_operation_errors_total{operation="memory_pins.upsert",code="tenant_status_forbids"}"#]
                >= 1.0,
            "{name}"
        );
        assert_eq!(
            samples[r#"account_http_requests_total{method="POST",route="/v1/platform/tenants/{tenant_id}/lifecycle",status="200"}"#],
            2.0,
            "{name}"
        );
        assert!(samples.contains_key("account_quota_refusals_total"));

        // A revoked operator key stops working at once.
        spine.revoke_operator_key(&cli, op.key.id).await.unwrap();
        let (status, _) = send(&server, &op_key, Method::GET, &lifecycle, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
    }
}
