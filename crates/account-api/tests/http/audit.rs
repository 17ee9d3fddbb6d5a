//! The audit log over HTTP, on each backend: pages by cursor cover every entry of the tenant
//! once, newest first, and filters narrow them; the export streams the same entries as NDJSON
//! with its headers; bad filters are 400s; members, viewers, demoted admins and machine keys
//! get 403.

use crate::support::{Answer, Server, refused, start};
use account_spine::api_keys::IssueKey;
use account_spine::invitations::Invitee;
use account_spine::types::{MembershipRole, UserId};
use account_spine::{Actor, Principal, RequestMeta};
use account_testkit::backends;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every page of `/v1/audit?{query}` by cursor, `limit` a page; the entries in order.
async fn all_pages(server: &Server, key: &str, query: &str, limit: u64) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let mut path = format!("/v1/audit?limit={limit}&{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let answer = server.call_as(key, Method::GET, &path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        let items = answer.body["items"].as_array().unwrap();
        assert!(items.len() as u64 <= limit);
        assert!(
            answer.body.get("total").is_none(),
            "cursor pages carry no total"
        );
        entries.extend(items.iter().cloned());
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
    panic!("paging never ended: a cursor that does not move on");
}

/// The export of `/v1/audit/export?{query}`: the answer's headers and its lines as JSON.
async fn export(
    server: &Server,
    key: &str,
    query: &str,
) -> (reqwest::header::HeaderMap, Vec<Value>) {
    let response = server
        .request(Method::GET, &format!("/v1/audit/export?{query}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends");
    let lines = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (headers, lines)
}

/// An entry's `created_at`.
fn at(entry: &Value) -> DateTime<Utc> {
    entry["created_at"].as_str().unwrap().parse().unwrap()
}

fn field<'a>(entries: &'a [Value], name: &str) -> Vec<&'a str> {
    entries.iter().map(|e| e[name].as_str().unwrap()).collect()
}

/// Admits `n` runs with the owner key (each audited `run.admitted`).
async fn admit_runs(server: &Server, n: usize) {
    for i in 0..n {
        let answer = server
            .call(
                Method::POST,
                "/v1/runs",
                Some(json!({"worker_id": "business-builder", "task": format!("t{i}")})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
}

#[tokio::test]
async fn the_owner_pages_filters_and_exports_the_tenants_audit_log() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        admit_runs(&server, 4).await;
        // Another tenant's activity never shows.
        let other = server
            .call_as(
                &server.other_key.clone(),
                Method::POST,
                "/v1/runs",
                Some(json!({"worker_id": "business-builder", "task": "theirs"})),
            )
            .await;
        assert_eq!(other.status, StatusCode::CREATED);

        let key = server.key.clone();
        let everything = all_pages(&server, &key, "", 100).await;
        assert!(everything.len() >= 6, "{name}: bootstrap's rows and 4 runs");
        let stored = server.audit_count(server.tenant_id).await;
        assert_eq!(
            everything.len() as i64,
            stored,
            "{name}: every row of the tenant"
        );
        for limit in [1, 3] {
            let paged = all_pages(&server, &key, "", limit).await;
            assert_eq!(
                paged, everything,
                "{name}: {limit} a page, no row twice or missing"
            );
        }
        let order: Vec<(DateTime<Utc>, &str)> = everything
            .iter()
            .map(|e| (at(e), e["id"].as_str().unwrap()))
            .collect();
        assert!(
            order.windows(2).all(|pair| pair[0] > pair[1]),
            "{name}: newest first, by time then id"
        );

        let runs = all_pages(&server, &key, "action=run.*", 2).await;
        assert_eq!(field(&runs, "action"), ["run.admitted"; 4], "{name}");
        assert!(runs.iter().all(|e| e["actor_type"] == "api_key"));
        let key_id = runs[0]["api_key_id"].as_str().unwrap();
        let by_key = all_pages(&server, &key, &format!("api_key_id={key_id}"), 100).await;
        assert!(by_key.len() >= 4 && by_key.iter().all(|e| e["api_key_id"] == key_id));
        let run_id = runs[0]["resource_id"].as_str().unwrap();
        let one = all_pages(
            &server,
            &key,
            &format!("resource_type=run&resource_id={run_id}"),
            100,
        )
        .await;
        assert_eq!(one.len(), 1, "{name}");
        let newest = at(&everything[0]);
        let to = newest.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let before = all_pages(&server, &key, &format!("to={to}"), 100).await;
        assert!(!before.is_empty() && before.iter().all(|e| at(e) < newest));

        // The export: the same entries, in the same order, one per line.
        let (headers, lines) = export(&server, &key, "from=2000-01-01T00:00:00Z").await;
        assert_eq!(headers["content-type"], "application/x-ndjson", "{name}");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"audit-20000101T000000Z-")
                && disposition.ends_with(".ndjson\""),
            "{disposition}"
        );
        assert_eq!(lines, everything, "{name}: the export is the list");
        let (_, runs_only) = export(
            &server,
            &key,
            "from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z&action=run.admitted",
        )
        .await;
        assert_eq!(runs_only, runs, "{name}");
        let (_, none) = export(
            &server,
            &key,
            "from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
        )
        .await;
        assert!(none.is_empty());
    }
}

#[tokio::test]
async fn bad_filters_windows_and_cursors_are_refused_with_the_field() {
    let backend = backends().unwrap().remove(0); // parsing does not depend on the backend
    let server = start(&backend).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("action=*", "action"),
        ("action=api_*.created", "action"),
        ("resource_type=", "resource_type"),
        ("actor_type=robot", "actor_type"),
        ("user_id=not-a-uuid", "user_id"),
        ("cursor=not-a-cursor", "cursor"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("offset=5", "offset"),
    ] {
        let answer = server
            .call(Method::GET, &format!("/v1/audit?{query}"), None)
            .await;
        let fields = refused(&answer, StatusCode::BAD_REQUEST, "invalid_query", query);
        assert!(fields.get(field).is_some(), "{query}: {fields}");
    }
    for (query, field) in [
        ("", "from"),
        ("from=yesterday", "from"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2026-01-01T00:00:00Z&cursor=x", "cursor"),
    ] {
        let answer = server
            .call(Method::GET, &format!("/v1/audit/export?{query}"), None)
            .await;
        let fields = refused(&answer, StatusCode::BAD_REQUEST, "invalid_query", query);
        assert!(fields.get(field).is_some(), "{query}: {fields}");
    }
}

/// `email` joins the first tenant with `role`; their principal.
async fn join(server: &Server, email: &str, role: MembershipRole) -> Principal {
    let issued = server
        .spine
        .invite_user(&server.owner(), email, role)
        .await
        .unwrap();
    let joined = server
        .spine
        .accept_invitation(
            server.tenant_id,
            issued.invitation.id,
            issued.token.expose(),
            Invitee::default(),
            RequestMeta::default(),
        )
        .await
        .unwrap();
    person(server, joined.user_id, role)
}

fn person(server: &Server, user_id: UserId, role: MembershipRole) -> Principal {
    Principal {
        tenant_id: server.tenant_id,
        actor: Actor::User { user_id, role },
        request: RequestMeta::default(),
    }
}

/// The owner gives `who` the role `role`.
async fn demote(server: &Server, who: &Principal, role: MembershipRole) {
    let Actor::User { user_id, .. } = who.actor else {
        panic!("a person")
    };
    server
        .spine
        .change_role(&server.owner(), user_id, role)
        .await
        .unwrap();
}

async fn key_for(server: &Server, issuer: &Principal, permissions: &[&str]) -> String {
    let issued = server
        .spine
        .issue_api_key(
            issuer,
            IssueKey {
                name: "audit".into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap();
    issued.plaintext.expose().to_owned()
}

#[tokio::test]
async fn only_owners_and_admins_read_the_log_and_machine_keys_never() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let admin = join(&server, "admin@example.com", MembershipRole::Admin).await;
        let admin_key = key_for(&server, &admin, &["audit:read"]).await;
        // A viewer's key holding `audit:read` (issued while they were an admin: viewers
        // issue no keys): the role bounds it.
        let viewer = join(&server, "viewer@example.com", MembershipRole::Admin).await;
        let viewer_key = key_for(&server, &viewer, &["audit:read"]).await;
        demote(&server, &viewer, MembershipRole::Viewer).await;
        let by_key = server
            .spine
            .authenticate_api_key(&server.key, RequestMeta::default())
            .await
            .unwrap();
        let machine = key_for(&server, &by_key, &["audit:read"]).await;
        let owner_read_all = key_for(&server, &server.owner(), &["read:*"]).await;

        let get = async |key: &str, path: &str| -> Answer {
            server.call_as(key, Method::GET, path, None).await
        };
        let export = "/v1/audit/export?from=2000-01-01T00:00:00Z";
        for path in ["/v1/audit", export] {
            assert_eq!(
                get(&admin_key, path).await.status,
                StatusCode::OK,
                "{name} {path}"
            );
            let answer = get(&viewer_key, path).await;
            refused(&answer, StatusCode::FORBIDDEN, "forbidden", "a viewer");
            let answer = get(&owner_read_all, path).await;
            refused(
                &answer,
                StatusCode::FORBIDDEN,
                "forbidden",
                "read:* is not audit:read",
            );
            let answer = get(&machine, path).await;
            refused(
                &answer,
                StatusCode::FORBIDDEN,
                "machine_key_not_allowed",
                "a machine key",
            );
        }
        // The admin is demoted: their key loses the log at once.
        demote(&server, &admin, MembershipRole::Member).await;
        let answer = get(&admin_key, "/v1/audit").await;
        refused(
            &answer,
            StatusCode::FORBIDDEN,
            "forbidden",
            "a demoted admin",
        );
    }
}
