//! The account over HTTP, on each backend: the owner's personal key invites an address, the
//! invitee accepts with the token (unauthenticated), the owner changes the new member's role,
//! the last owner's self-demotion and leaving are refused, ownership is transferred (and the
//! old owner's key loses owner powers at once); a machine key is refused account routes with
//! a typed 403; another tenant's ids answer 404; `read:*` never reads billing.

use crate::support::{Answer, Server, start};
use account_spine::Principal;
use account_spine::api_keys::IssueKey;
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A personal key for `owner` with the account permissions.
async fn personal_key(server: &Server, owner: &Principal) -> String {
    let issued = server
        .spine
        .issue_api_key(
            owner,
            IssueKey {
                name: "owner personal".into(),
                permissions: [
                    "read:*",
                    "keys:manage",
                    "users:manage",
                    "profile:write",
                    "support:write",
                    "billing:read",
                ]
                .map(String::from)
                .to_vec(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    issued.plaintext.expose().to_owned()
}

/// A call with `key`, or without credentials, as `(status, body)`.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let Answer { status, body, .. } = match key {
        Some(key) => server.call_as(key, method, path, body).await,
        None => server.call_anonymous(method, path, body).await,
    };
    (status, body)
}

#[tokio::test]
async fn the_account_story_over_http() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let key = personal_key(&server, &server.owner()).await;
        let other_key = personal_key(&server, &server.other_owner()).await;
        let (tenant, owner_id) = (server.tenant_id, server.owner_id);
        let key = Some(key.as_str());
        let other = Some(other_key.as_str());

        // Invite; the token is in the answer, once.
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/invitations",
            key,
            Some(json!({"email": "new@example.com", "role": "member"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let invitation = body["invitation"]["id"].as_str().unwrap().to_owned();
        let token = body["token"].as_str().unwrap().to_owned();
        assert!(!token.is_empty());
        let (status, body) = call(
            &server,
            Method::GET,
            "/v1/invitations?status=pending",
            key,
            None,
        )
        .await;
        assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(1)));
        assert!(body["items"][0].get("token").is_none(), "never listed");

        // Another tenant cannot see or revoke it.
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("/v1/invitations/{invitation}/revoke"),
            other,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {body}");

        // Accept, unauthenticated: the token is the authority.
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("/v1/invitations/{tenant}/{invitation}/accept"),
            None,
            Some(json!({"token": token, "name": "New Member"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["role"], "member");
        let member = body["user_id"].as_str().unwrap().to_owned();

        let (status, body) = call(&server, Method::GET, "/v1/users", key, None).await;
        assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(2)));

        // Role change by the owner; another tenant's key gets 404 for the same user.
        let (status, body) = call(
            &server,
            Method::PUT,
            &format!("/v1/users/{member}/role"),
            key,
            Some(json!({"role": "admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(
            (&body["previous"], &body["membership"]["role"]),
            (&json!("member"), &json!("admin"))
        );
        let (status, body) = call(
            &server,
            Method::PUT,
            &format!("/v1/users/{member}/role"),
            other,
            Some(json!({"role": "viewer"})),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_a_member")),
            "{name}"
        );

        // The last owner can neither demote themselves nor leave.
        let (status, body) = call(
            &server,
            Method::PUT,
            &format!("/v1/users/{owner_id}/role"),
            key,
            Some(json!({"role": "admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {body}");
        let (status, body) = call(
            &server,
            Method::DELETE,
            &format!("/v1/users/{owner_id}"),
            key,
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::CONFLICT, Some("last_owner")),
            "{name}"
        );

        // Profile, support and billing as the owner.
        let (status, body) = call(
            &server,
            Method::PATCH,
            "/v1/profile",
            key,
            Some(json!({"display_name": "Olivia", "time_zone": "Europe/Paris"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body) = call(&server, Method::GET, "/v1/profile", key, None).await;
        assert_eq!(
            (status, body["name"].as_str(), body["role"].as_str()),
            (StatusCode::OK, Some("Olivia"), Some("owner"))
        );
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/support/tickets",
            key,
            Some(json!({"subject": "Help", "description": "Please", "priority": "high"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let (status, body) = call(&server, Method::GET, "/v1/support/tickets", key, None).await;
        assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(1)));
        let (status, body) = call(&server, Method::GET, "/v1/billing", key, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body) = call(&server, Method::GET, "/v1/billing/invoices", key, None).await;
        assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(0)));

        // Keys a key issues are machine keys: refused account routes with a typed 403, even
        // with `read:*`; and `read:*` alone never reads billing.
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/api-keys",
            key,
            Some(json!({"name": "ci", "permissions": ["read:*"]})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let machine = body["secret"].as_str().unwrap().to_owned();
        for path in ["/v1/profile", "/v1/users", "/v1/billing", "/v1/invitations"] {
            let (status, body) = call(&server, Method::GET, path, Some(&machine), None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name} {path}: {body}");
            if path == "/v1/profile" {
                assert_eq!(body["error"], "machine_key_not_allowed", "{body}");
            }
        }

        // Transfer ownership; the old owner (now admin) loses owner powers at once.
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/ownership/transfer",
            key,
            Some(json!({"user_id": member})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(
            (&body["new_owner"]["role"], &body["previous_owner"]["role"]),
            (&json!("owner"), &json!("admin"))
        );
        let (status, body) = call(
            &server,
            Method::PUT,
            &format!("/v1/users/{member}/role"),
            key,
            Some(json!({"role": "viewer"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        let (status, body) = call(&server, Method::GET, "/v1/profile", key, None).await;
        assert_eq!(
            (status, body["role"].as_str()),
            (StatusCode::OK, Some("admin"))
        );
    }
}
