//! Plans as data over HTTP on each backend: an operator creates a plan and its next version,
//! lists them, moves a tenant onto the plan, and the tenant's `GET /v1/entitlements` shows the
//! version, its features and every limit with its usage; refusals name their field and write
//! nothing, the default plan keeps a version on sale, and tenant keys never reach the platform
//! routes.

use crate::support::{Answer, Server, operator, refused, start};
use account_spine::limits::LimitName;
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A plan version's limits, every one stated.
fn team_limits(api_keys: i64) -> Value {
    json!({
        "max_workers": 8,
        "max_runs_per_day": 5_000,
        "max_concurrent_runs": 20,
        "max_tokens_per_month": 50_000_000_i64,
        "max_api_keys": api_keys,
        "max_requests_per_minute": 600,
        "audit_retention_days": null,
        "max_members": 25,
        "max_memory_pins": 20_000,
        "max_pin_value_bytes": 32_768,
    })
}

async fn operator_key(server: &Server) -> String {
    let created = server
        .spine
        .create_operator_key(&operator(), "ops team")
        .await
        .unwrap();
    created.plaintext.expose().to_owned()
}

/// The `(code, version)` of each item of a list of plan versions.
fn versions(list: &Value) -> Vec<(String, i64)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_owned(),
                p["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The tenant's entitlements, read with its own key.
async fn entitlements(server: &Server, key: &str) -> Value {
    let answer = server
        .call_as(key, Method::GET, "/v1/entitlements", None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

/// The entry of `limit` in an entitlements body.
fn usage<'a>(body: &'a Value, limit: &str) -> &'a Value {
    body["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["limit"] == limit)
        .unwrap_or_else(|| panic!("{limit} in {body}"))
}

#[tokio::test]
async fn operators_version_plans_and_a_tenant_sees_its_entitlements() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let op_key = operator_key(&server).await;
        let post = |body: Value| {
            let (server, op_key) = (&server, &op_key);
            async move {
                server
                    .call_as(op_key, Method::POST, "/v1/platform/plans", Some(body))
                    .await
            }
        };

        // Version 1 of a new plan, with features and a warning threshold.
        let v1 = post(json!({
            "code": "team",
            "name": "  Team  ",
            "limits": team_limits(10),
            "entitlements": {"sso": true, "audit_exports": 12},
            "warn_at_percent": 80,
        }))
        .await;
        assert_eq!(v1.status, StatusCode::CREATED, "{name}: {}", v1.body);
        assert_eq!(v1.body["code"], "team", "{name}");
        assert_eq!(v1.body["version"], 1, "{name}");
        assert_eq!(v1.body["name"], "Team", "{name}");
        assert_eq!(v1.body["limits"], team_limits(10), "{name}");
        assert_eq!(
            v1.body["entitlements"],
            json!({"sso": true, "audit_exports": 12}),
            "{name}"
        );
        assert_eq!(v1.body["warn_at_percent"], 80, "{name}");
        assert!(v1.body["created_at"].is_string(), "{name}: {}", v1.body);
        assert!(v1.body["retired_at"].is_null(), "{name}");

        // Listed with the built-in plans, by code then version.
        let listed = server
            .call_as(&op_key, Method::GET, "/v1/platform/plans", None)
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{name}: {}", listed.body);
        assert_eq!(listed.body["total"], 4, "{name}: {}", listed.body);
        let found = versions(&listed.body);
        for code in ["free", "pro", "enterprise", "team"] {
            assert!(found.contains(&(code.to_owned(), 1)), "{name}: {found:?}");
        }
        let team = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "team")
            .unwrap();
        assert_eq!(team, &v1.body, "{name}: listed as created");

        // The next version of the same code.
        let v2 = post(json!({
            "code": "team",
            "name": "Team",
            "limits": team_limits(15),
            "entitlements": {"sso": true, "audit_exports": 24, "priority_support": true},
            "warn_at_percent": 90,
        }))
        .await;
        assert_eq!(v2.status, StatusCode::CREATED, "{name}: {}", v2.body);
        assert_eq!(v2.body["version"], 2, "{name}");
        let listed = server
            .call_as(&op_key, Method::GET, "/v1/platform/plans", None)
            .await;
        assert_eq!(listed.body["total"], 5, "{name}: {}", listed.body);
        let found = versions(&listed.body);
        assert!(found.contains(&("team".to_owned(), 2)), "{name}: {found:?}");
        // Paged in memory like every offset list.
        let page = server
            .call_as(
                &op_key,
                Method::GET,
                "/v1/platform/plans?limit=2&offset=3",
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{name}: {}", page.body);
        assert_eq!(versions(&page.body), found[3..].to_vec(), "{name}");
        assert_eq!(page.body["has_more"], false, "{name}");
        assert_eq!(page.body["total"], 5, "{name}");

        // The tenant moves to the plan: the newest version on sale.
        let tenant = server.tenant_id;
        let moved = server
            .call_as(
                &op_key,
                Method::PUT,
                &format!("/v1/platform/tenants/{tenant}/plan"),
                Some(json!({"plan": "team"})),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{name}: {}", moved.body);
        assert_eq!(moved.body["plan"], "team", "{name}");

        let mine = entitlements(&server, &server.key).await;
        assert_eq!(mine["plan"], "team", "{name}: {mine}");
        assert_eq!(mine["plan_version"], 2, "{name}");
        assert_eq!(mine["plan_name"], "Team", "{name}");
        assert_eq!(
            mine["features"],
            json!({"sso": true, "audit_exports": 24, "priority_support": true}),
            "{name}"
        );
        assert_eq!(mine["warn_at_percent"], 90, "{name}");
        let names: Vec<&str> = mine["limits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["limit"].as_str().unwrap())
            .collect();
        let all: Vec<&str> = LimitName::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(names, all, "{name}: every limit, in order");
        let keys = usage(&mine, "max_api_keys");
        assert_eq!(keys["value"], 15, "{name}: {keys}");
        assert_eq!(keys["plan_value"], 15, "{name}");
        assert_eq!(keys["used"], 1, "{name}: the owner's bootstrap key");
        let members = usage(&mine, "max_members");
        assert_eq!(members["value"], 25, "{name}");
        assert_eq!(members["used"], 1, "{name}: the owner");
        let retention = usage(&mine, "audit_retention_days");
        assert!(retention["value"].is_null(), "{name}: kept forever");
        assert!(retention["used"].is_null(), "{name}: not a count");
        assert_eq!(usage(&mine, "max_memory_pins")["value"], 20_000, "{name}");
        assert_eq!(usage(&mine, "max_memory_pins")["used"], 0, "{name}");
        assert_eq!(
            usage(&mine, "max_pin_value_bytes")["value"],
            32_768,
            "{name}"
        );
        // `/v1/quotas` shows the same limits in force.
        let quotas = server
            .call_as(&server.key, Method::GET, "/v1/quotas", None)
            .await;
        assert_eq!(quotas.status, StatusCode::OK, "{name}: {}", quotas.body);
        assert_eq!(quotas.body["plan"], "team", "{name}");
        assert_eq!(quotas.body["max_api_keys"], 15, "{name}");
        assert_eq!(quotas.body["max_memory_pins"], 20_000, "{name}");
        assert_eq!(quotas.body["max_pin_value_bytes"], 32_768, "{name}");

        // The other tenant is still on free version 1, with no features.
        let theirs = entitlements(&server, &server.other_key).await;
        assert_eq!(theirs["plan"], "free", "{name}: {theirs}");
        assert_eq!(theirs["plan_version"], 1, "{name}");
        assert_eq!(theirs["features"], json!({}), "{name}");

        // Retiring the tenant's version: it keeps it, and answers stay the same on a repeat.
        let retire = "/v1/platform/plans/team/versions/2/retire";
        let retired = server.call_as(&op_key, Method::POST, retire, None).await;
        assert_eq!(retired.status, StatusCode::OK, "{name}: {}", retired.body);
        assert_eq!(retired.body["version"], 2, "{name}");
        assert!(retired.body["retired_at"].is_string(), "{name}");
        let again = server.call_as(&op_key, Method::POST, retire, None).await;
        assert_eq!(again.status, StatusCode::OK, "{name}: {}", again.body);
        assert_eq!(again.body, retired.body, "{name}");
        let mine = entitlements(&server, &server.key).await;
        assert_eq!(mine["plan_version"], 2, "{name}: a retired version stays");
    }
}

/// `answer` is a 422 with `code` naming `field`.
fn names_field(answer: &Answer, code: &str, field: &str, what: &str) {
    let fields = refused(answer, StatusCode::UNPROCESSABLE_ENTITY, code, what);
    assert!(fields[field].is_string(), "{what}: names {field}: {fields}");
}

#[tokio::test]
async fn plan_refusals_name_their_field_and_write_nothing() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let op_key = operator_key(&server).await;
        let valid = json!({"code": "team", "name": "Team", "limits": team_limits(10)});
        let with = |field: &str, value: Value| {
            let mut body = valid.clone();
            body[field] = value;
            body
        };
        let with_limit = |limit: &str, value: Value| {
            let mut body = valid.clone();
            body["limits"][limit] = value;
            body
        };
        let counts = server.row_counts().await;
        let post = |body: Value| {
            let (server, op_key) = (&server, &op_key);
            async move {
                server
                    .call_as(op_key, Method::POST, "/v1/platform/plans", Some(body))
                    .await
            }
        };

        let refusals = [
            (with("code", json!("Team!")), "invalid_plan_code", "code"),
            (with("code", json!("")), "invalid_plan_code", "code"),
            (with("name", json!("   ")), "invalid_name", "name"),
            (with("name", json!("x".repeat(101))), "invalid_name", "name"),
            (
                with_limit("max_workers", json!(-1)),
                "invalid_limit_value",
                "limits.max_workers",
            ),
            (
                with_limit("max_api_keys", json!(3_000_000_000_i64)),
                "invalid_limit_value",
                "limits.max_api_keys",
            ),
            (
                with_limit("max_pin_value_bytes", json!(70_000)),
                "invalid_limit_value",
                "limits.max_pin_value_bytes",
            ),
            (
                with_limit("audit_retention_days", json!(0)),
                "invalid_limit_value",
                "limits.audit_retention_days",
            ),
            (
                with_limit("max_members", json!("25")),
                "invalid_request",
                "limits.max_members",
            ),
            (
                with_limit("max_everything", json!(1)),
                "invalid_request",
                "limits.max_everything",
            ),
            (
                with("entitlements", json!({"sso": false})),
                "invalid_entitlement",
                "entitlements",
            ),
            (
                with("entitlements", json!({"Single Sign-On": true})),
                "invalid_entitlement",
                "entitlements",
            ),
            (
                with("entitlements", json!({"sso": "yes"})),
                "invalid_entitlement",
                "entitlements",
            ),
            (
                with("warn_at_percent", json!(100)),
                "invalid_warning_threshold",
                "warn_at_percent",
            ),
            (
                with("warn_at_percent", json!(0)),
                "invalid_warning_threshold",
                "warn_at_percent",
            ),
            (with("price", json!(10)), "invalid_request", "price"),
        ];
        for (body, code, field) in refusals {
            let what = format!("{name}: {body}");
            names_field(&post(body).await, code, field, &what);
        }
        // Every limit is stated, `null` where it may be none.
        let mut missing = valid.clone();
        missing["limits"]
            .as_object_mut()
            .unwrap()
            .remove("max_requests_per_minute");
        names_field(
            &post(missing).await,
            "invalid_request",
            "limits.max_requests_per_minute",
            name,
        );
        let mut missing = valid.clone();
        missing.as_object_mut().unwrap().remove("limits");
        names_field(&post(missing).await, "invalid_request", "limits", name);

        // Retiring: the default plan's only version, an unknown plan or version, a bad code.
        let retire = |path: &str| {
            let (server, op_key) = (&server, &op_key);
            let path = format!("/v1/platform/plans/{path}/retire");
            async move { server.call_as(op_key, Method::POST, &path, None).await }
        };
        let answer = retire("free/versions/1").await;
        refused(&answer, StatusCode::CONFLICT, "default_plan", name);
        for path in ["nope/versions/1", "pro/versions/2", "pro/versions/0"] {
            let answer = retire(path).await;
            refused(&answer, StatusCode::NOT_FOUND, "plan_not_found", name);
        }
        names_field(
            &retire("PRO/versions/1").await,
            "invalid_plan_code",
            "code",
            name,
        );
        let answer = retire("pro/versions/one").await;
        refused(&answer, StatusCode::BAD_REQUEST, "invalid_path", name);

        // Moving a tenant to a plan that does not exist.
        let tenant = server.tenant_id;
        let change = format!("/v1/platform/tenants/{tenant}/plan");
        let answer = server
            .call_as(&op_key, Method::PUT, &change, Some(json!({"plan": "nope"})))
            .await;
        names_field(&answer, "plan_not_found", "plan", name);
        let answer = server
            .call_as(
                &op_key,
                Method::PUT,
                &change,
                Some(json!({"plan": "No Plan"})),
            )
            .await;
        names_field(&answer, "invalid_request", "plan", name);

        // Tenant keys, and no key: refused as on every platform route.
        let platform = [
            (Method::GET, "/v1/platform/plans", None),
            (Method::POST, "/v1/platform/plans", Some(valid.clone())),
            (
                Method::POST,
                "/v1/platform/plans/pro/versions/1/retire",
                None,
            ),
        ];
        for (method, path, body) in platform {
            let what = format!("{name}: {method} {path}");
            let answer = server
                .call_as(&server.key, method.clone(), path, body.clone())
                .await;
            refused(
                &answer,
                StatusCode::FORBIDDEN,
                "operator_key_required",
                &what,
            );
            let answer = server.call_anonymous(method, path, body).await;
            refused(&answer, StatusCode::UNAUTHORIZED, "unauthorized", &what);
        }
        let answer = server
            .call_anonymous(Method::GET, "/v1/entitlements", None)
            .await;
        refused(&answer, StatusCode::UNAUTHORIZED, "unauthorized", name);

        assert_eq!(server.row_counts().await, counts, "{name}: nothing written");
    }
}

#[tokio::test]
async fn a_retired_plan_takes_no_tenants_and_free_keeps_a_version_on_sale() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let name = backend.name();
        let op_key = operator_key(&server).await;
        let created = server
            .call_as(
                &op_key,
                Method::POST,
                "/v1/platform/plans",
                Some(json!({"code": "legacy", "name": "Legacy", "limits": team_limits(3)})),
            )
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{name}: {}",
            created.body
        );
        assert!(created.body["warn_at_percent"].is_null(), "{name}");
        assert_eq!(created.body["entitlements"], json!({}), "{name}");
        let retired = server
            .call_as(
                &op_key,
                Method::POST,
                "/v1/platform/plans/legacy/versions/1/retire",
                None,
            )
            .await;
        assert_eq!(retired.status, StatusCode::OK, "{name}: {}", retired.body);
        let tenant = server.tenant_id;
        let answer = server
            .call_as(
                &op_key,
                Method::PUT,
                &format!("/v1/platform/tenants/{tenant}/plan"),
                Some(json!({"plan": "legacy"})),
            )
            .await;
        names_field(&answer, "plan_retired", "plan", name);
        assert_eq!(
            entitlements(&server, &server.key).await["plan"],
            "free",
            "{name}"
        );

        // With a second version of free, the first can go; the last one on sale cannot.
        let free = server
            .call_as(
                &op_key,
                Method::POST,
                "/v1/platform/plans",
                Some(json!({"code": "free", "name": "Free", "limits": team_limits(2)})),
            )
            .await;
        assert_eq!(free.status, StatusCode::CREATED, "{name}: {}", free.body);
        assert_eq!(free.body["version"], 2, "{name}");
        let first = server
            .call_as(
                &op_key,
                Method::POST,
                "/v1/platform/plans/free/versions/1/retire",
                None,
            )
            .await;
        assert_eq!(first.status, StatusCode::OK, "{name}: {}", first.body);
        let last = server
            .call_as(
                &op_key,
                Method::POST,
                "/v1/platform/plans/free/versions/2/retire",
                None,
            )
            .await;
        refused(&last, StatusCode::CONFLICT, "default_plan", name);
    }
}

#[test]
fn the_document_describes_the_plan_routes() {
    let document = serde_json::to_value(account_api::openapi()).unwrap();
    let paths = &document["paths"];
    let expected = [
        ("/v1/platform/plans", "get", &["200", "400", "403"][..]),
        (
            "/v1/platform/plans",
            "post",
            &["201", "403", "409", "422"][..],
        ),
        (
            "/v1/platform/plans/{code}/versions/{version}/retire",
            "post",
            &["200", "400", "403", "404", "409", "422"][..],
        ),
        ("/v1/entitlements", "get", &["200", "401", "403", "404"][..]),
    ];
    for (path, method, codes) in expected {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path}");
        for code in codes {
            assert!(
                operation["responses"][code].is_object(),
                "{method} {path}: {code}"
            );
        }
        // Plans belong to no tenant, so their writes take no idempotency key.
        let keyed = operation["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
        assert!(!keyed, "{method} {path}");
    }
    let limits = &document["components"]["schemas"]["PlanLimits"];
    let required: Vec<&str> = limits["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for limit in LimitName::ALL {
        assert!(required.contains(&limit.as_str()), "{limit}: {required:?}");
    }
}
