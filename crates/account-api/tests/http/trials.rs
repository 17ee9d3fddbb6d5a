//! Trials over HTTP on each backend: an operator starts a trial of a paid plan for a tenant
//! (the tenant is on the plan at once and its billing view shows the trial), changes it while
//! it is a trial, and every refusal names its field; tenant keys never reach the route.

use crate::support::{Answer, operator, refused, start};
use account_spine::billing::SubscriptionUpsert;
use account_spine::types::{BillingPeriod, PlanCode, SubscriptionId, SubscriptionStatus, TenantId};
use account_testkit::backends;
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// `answer` is a 422 with `code` naming `field`.
fn names_field(answer: &Answer, code: &str, field: &str, what: &str) {
    let fields = refused(answer, StatusCode::UNPROCESSABLE_ENTITY, code, what);
    assert!(fields[field].is_string(), "{what}: names {field}: {fields}");
}

#[tokio::test]
async fn an_operator_starts_a_trial_and_the_tenant_sees_it() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let created = server
            .spine
            .create_operator_key(&operator(), "billing integration")
            .await
            .unwrap();
        let op_key = created.plaintext.expose().to_owned();
        let path = format!("/v1/platform/tenants/{}/trial", server.tenant_id);
        // Whole seconds: PostgreSQL keeps microseconds only.
        let ends = DateTime::from_timestamp(Utc::now().timestamp() + 14 * 86_400, 0).unwrap();
        let body = json!({
            "external_id": "sub_trial",
            "plan": "pro",
            "trial_ends_at": ends.to_rfc3339(),
            "grace_days": 3,
        });
        let answer = server
            .call_as(&op_key, Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        assert_eq!(answer.body["status"], "trialing", "{name}");
        assert_eq!(answer.body["plan"], "pro", "{name}");
        assert_eq!(time(&answer.body["trial_ends_at"]), ends, "{name}");
        assert_eq!(answer.body["convert_to_paid"], false, "{name}");
        assert_eq!(answer.body["grace_period_days"], 3, "{name}");
        assert_eq!(answer.body["billing_period"], "monthly", "{name}");
        assert!(answer.body["grace_ends_at"].is_null(), "{name}");

        // The tenant is on the plan, and its billing view shows the trial.
        let quotas = server
            .call_as(&server.key, Method::GET, "/v1/quotas", None)
            .await;
        assert_eq!(quotas.body["plan"], "pro", "{name}: {}", quotas.body);
        let billing = server
            .call_as(&server.key, Method::GET, "/v1/billing", None)
            .await;
        assert_eq!(billing.status, StatusCode::OK, "{name}: {}", billing.body);
        assert_eq!(billing.body["subscription"]["status"], "trialing", "{name}");
        assert_eq!(
            time(&billing.body["subscription"]["trial_ends_at"]),
            ends,
            "{name}"
        );
        assert_eq!(time(&billing.body["next_invoice_date"]), ends, "{name}");

        // Changed while a trial: a week longer, converting, annual.
        let later = ends + Duration::days(7);
        let answer = server
            .call_as(
                &op_key,
                Method::POST,
                &path,
                Some(json!({
                    "external_id": "sub_trial",
                    "plan": "pro",
                    "trial_ends_at": later.to_rfc3339(),
                    "convert_to_paid": true,
                    "billing_period": "annual",
                })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        assert_eq!(time(&answer.body["trial_ends_at"]), later, "{name}");
        assert_eq!(answer.body["convert_to_paid"], true, "{name}");
        assert_eq!(answer.body["grace_period_days"], 7, "{name}: the default");
        assert_eq!(answer.body["billing_period"], "annual", "{name}");
        let started = server
            .events
            .all()
            .iter()
            .filter(|e| e.event_type() == "subscription.trial_started")
            .count();
        assert_eq!(started, 2, "{name}");
    }
}

#[tokio::test]
async fn trial_refusals_name_their_field() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let created = server
            .spine
            .create_operator_key(&operator(), "billing integration")
            .await
            .unwrap();
        let op_key = created.plaintext.expose().to_owned();
        let path = format!("/v1/platform/tenants/{}/trial", server.tenant_id);
        let ends = Utc::now() + Duration::days(14);
        let valid =
            json!({"external_id": "sub_x", "plan": "pro", "trial_ends_at": ends.to_rfc3339()});
        let with = |field: &str, value: Value| {
            let mut body = valid.clone();
            body[field] = value;
            body
        };
        for (body, code, field) in [
            (
                with(
                    "trial_ends_at",
                    json!((Utc::now() - Duration::hours(1)).to_rfc3339()),
                ),
                "invalid_trial_end",
                "trial_ends_at",
            ),
            (
                with(
                    "trial_ends_at",
                    json!((Utc::now() + Duration::days(400)).to_rfc3339()),
                ),
                "invalid_trial_end",
                "trial_ends_at",
            ),
            (
                with("grace_days", json!(91)),
                "invalid_request",
                "grace_days",
            ),
            (
                with("external_id", json!("")),
                "invalid_request",
                "external_id",
            ),
            (with("plan", json!("nope")), "plan_not_found", "plan"),
            (
                with("billing_period", json!("weekly")),
                "invalid_request",
                "billing_period",
            ),
        ] {
            let answer = server
                .call_as(&op_key, Method::POST, &path, Some(body.clone()))
                .await;
            names_field(&answer, code, field, &format!("{name}: {body}"));
        }
        let nowhere = format!("/v1/platform/tenants/{}/trial", TenantId::new());
        let answer = server
            .call_as(&op_key, Method::POST, &nowhere, Some(valid.clone()))
            .await;
        refused(&answer, StatusCode::NOT_FOUND, "tenant_not_found", name);
        let answer = server
            .call_as(&server.key, Method::POST, &path, Some(valid.clone()))
            .await;
        refused(
            &answer,
            StatusCode::FORBIDDEN,
            "operator_key_required",
            name,
        );
        let answer = server
            .call_anonymous(Method::POST, &path, Some(valid.clone()))
            .await;
        refused(&answer, StatusCode::UNAUTHORIZED, "unauthorized", name);
        let billing = server
            .call_as(&server.key, Method::GET, "/v1/billing", None)
            .await;
        assert!(
            billing.body["subscription"].is_null(),
            "{name}: nothing written: {}",
            billing.body
        );

        // No trial over a paid subscription.
        let paid = SubscriptionUpsert {
            id: SubscriptionId::new(),
            tenant_id: server.tenant_id,
            external_id: "sub_paid".into(),
            plan: PlanCode::pro(),
            status: SubscriptionStatus::Active,
            billing_period: BillingPeriod::Monthly,
            current_period_start: None,
            current_period_end: None,
            trial_ends_at: None,
            canceled_at: None,
            cancel_at_period_end: false,
        };
        server
            .spine
            .record_subscription(&operator(), paid)
            .await
            .unwrap();
        let answer = server
            .call_as(
                &op_key,
                Method::POST,
                &path,
                Some(with("external_id", json!("sub_paid"))),
            )
            .await;
        // A conflict names no field (only 422s do); the message says which subscription.
        refused(
            &answer,
            StatusCode::CONFLICT,
            "subscription_not_trialing",
            name,
        );
    }
}
