//! The account reads over HTTP, on each backend: the caller's projects and one project, one
//! user of the tenant, the support contact. Another tenant's project or user answers 404
//! with nothing of it in the body; a key without the permission, or a machine key, gets 403.

use crate::support::{Answer, Server, start};
use account_api::{AppState, router};
use account_spine::api_keys::IssueKey;
use account_spine::invitations::Invitee;
use account_spine::support::SupportContact;
use account_spine::types::{Email, MembershipRole, TenantId, UserId};
use account_spine::{Principal, RequestMeta, Spine};
use account_testkit::backends;
use reqwest::{Method, StatusCode};

/// The answer is an error with this status and code.
fn refused(answer: &Answer, status: StatusCode, code: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert_eq!(answer.body["error"], code, "{what}: {}", answer.body);
}

/// A key with `permissions` issued by `issuer`: a personal key when the issuer is a user,
/// a machine key when it is a key. Returns the plaintext.
async fn key_from(spine: &Spine, issuer: &Principal, permissions: &[&str]) -> String {
    let issued = spine
        .issue_api_key(
            issuer,
            IssueKey {
                name: "reads".into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap();
    issued.plaintext.expose().to_owned()
}

/// A machine key of the first tenant (issued by its owner's key, so for no user).
async fn machine_key(server: &Server, permissions: &[&str]) -> String {
    let by_key = server
        .spine
        .authenticate_api_key(&server.key, RequestMeta::default())
        .await
        .unwrap();
    key_from(&server.spine, &by_key, permissions).await
}

/// The first tenant's owner joins the other tenant as a viewer.
async fn owner_joins_other_tenant(server: &Server) {
    let issued = server
        .spine
        .invite_user(
            &server.other_owner(),
            "owner@example.com",
            MembershipRole::Viewer,
        )
        .await
        .unwrap();
    server
        .spine
        .accept_invitation(
            server.other_tenant_id,
            issued.invitation.id,
            issued.token.expose(),
            Invitee::default(),
            RequestMeta::default(),
        )
        .await
        .unwrap();
}

fn ids(answer: &Answer) -> Vec<String> {
    answer.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn projects_are_the_callers_and_another_tenants_answers_404() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let (acme, other) = (
            server.tenant_id.to_string(),
            server.other_tenant_id.to_string(),
        );

        let listed = server.call(Method::GET, "/v1/projects", None).await;
        assert_eq!(listed.status, StatusCode::OK, "{name}: {}", listed.body);
        assert_eq!(ids(&listed), vec![acme.clone()], "{name}");
        assert_eq!(listed.body["total"], 1);
        assert_eq!(listed.body["has_more"], false);
        assert_eq!(
            (&listed.body["limit"], &listed.body["offset"]),
            (&20.into(), &0.into())
        );
        assert_eq!(listed.body["items"][0]["name"], "Acme");
        assert_eq!(listed.body["items"][0]["status"], "active");
        assert_eq!(listed.body["items"][0]["plan"], "free");

        let detail = server
            .call(Method::GET, &format!("/v1/projects/{acme}"), None)
            .await;
        assert_eq!(detail.status, StatusCode::OK, "{name}: {}", detail.body);
        assert_eq!(detail.body["id"], acme.as_str());
        assert_eq!(detail.body["slug"], "acme");
        assert_eq!(detail.body["onboarding_complete"], false);
        assert!(
            detail.body["onboarding_state"].is_string(),
            "{}",
            detail.body
        );
        assert!(detail.body["max_api_keys"].as_i64().unwrap() > 0);

        // The other tenant's project: the same 404 as an id that names nothing.
        let theirs = server
            .call(Method::GET, &format!("/v1/projects/{other}"), None)
            .await;
        refused(&theirs, StatusCode::NOT_FOUND, "project_not_found", name);
        assert!(
            !theirs.body.to_string().contains("Other"),
            "{}",
            theirs.body
        );
        let nothing = server
            .call(
                Method::GET,
                &format!("/v1/projects/{}", TenantId::new()),
                None,
            )
            .await;
        refused(&nothing, StatusCode::NOT_FOUND, "project_not_found", name);
        assert_eq!(nothing.body["message"], theirs.body["message"]);
        let from_there = server
            .call_as(
                &server.other_key.clone(),
                Method::GET,
                &format!("/v1/projects/{acme}"),
                None,
            )
            .await;
        refused(
            &from_there,
            StatusCode::NOT_FOUND,
            "project_not_found",
            name,
        );

        // Once a member there too, both are listed, page by page, and both readable.
        owner_joins_other_tenant(&server).await;
        let listed = server.call(Method::GET, "/v1/projects", None).await;
        let mut both = ids(&listed);
        both.sort();
        let mut expected = vec![acme.clone(), other.clone()];
        expected.sort();
        assert_eq!(both, expected, "{name}");
        let first = server
            .call(Method::GET, "/v1/projects?limit=1&offset=0", None)
            .await;
        assert_eq!(ids(&first).len(), 1);
        assert_eq!(
            (&first.body["total"], &first.body["has_more"]),
            (&2.into(), &true.into())
        );
        let ours = server
            .call(Method::GET, &format!("/v1/projects/{other}"), None)
            .await;
        assert_eq!(ours.status, StatusCode::OK, "{name}: {}", ours.body);
        assert_eq!(ours.body["name"], "Other");
        let suspended = server
            .call(Method::GET, "/v1/projects?status=suspended", None)
            .await;
        assert_eq!(suspended.body["total"], 0, "{name}: {}", suspended.body);

        // Bad parameters, then keys without the authority.
        for bad in ["/v1/projects?limit=0", "/v1/projects?status=bogus"] {
            let answer = server.call(Method::GET, bad, None).await;
            refused(&answer, StatusCode::BAD_REQUEST, "invalid_query", bad);
        }
        let answer = server.call(Method::GET, "/v1/projects/acme", None).await;
        refused(&answer, StatusCode::BAD_REQUEST, "invalid_path", name);
        let runner = key_from(&server.spine, &server.owner(), &["run:*"]).await;
        for path in ["/v1/projects".to_owned(), format!("/v1/projects/{acme}")] {
            let answer = server.call_as(&runner, Method::GET, &path, None).await;
            refused(&answer, StatusCode::FORBIDDEN, "forbidden", &path);
        }
        let machine = machine_key(&server, &["read:*"]).await;
        let answer = server
            .call_as(&machine, Method::GET, "/v1/projects", None)
            .await;
        refused(
            &answer,
            StatusCode::FORBIDDEN,
            "machine_key_not_allowed",
            name,
        );
        let answer = server
            .send(server.request(Method::GET, "/v1/projects"))
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
    }
}

#[tokio::test]
async fn the_members_list_shows_the_callers_tenant_in_join_order() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        owner_joins_other_tenant(&server).await;

        let mine = server.call(Method::GET, "/v1/members?limit=10", None).await;
        assert_eq!(mine.status, StatusCode::OK, "{name}: {}", mine.body);
        assert_eq!(mine.body["total"], 1, "{name}: {}", mine.body);
        assert_eq!(mine.body["has_more"], false);
        let me = &mine.body["items"][0];
        assert_eq!(me["user_id"], server.owner_id.to_string());
        assert_eq!(
            (&me["email"], &me["role"]),
            (&"owner@example.com".into(), &"owner".into())
        );
        assert!(me["joined_at"].is_string(), "{name}: {me}");

        // The other tenant: its owner first, then ours, who joined after; paged one by one.
        let other_key = server.other_key.clone();
        let first = server
            .call_as(&other_key, Method::GET, "/v1/members?limit=1", None)
            .await;
        assert_eq!(first.status, StatusCode::OK, "{name}: {}", first.body);
        assert_eq!(
            (&first.body["total"], &first.body["has_more"]),
            (&2.into(), &true.into())
        );
        assert_eq!(
            first.body["items"][0]["user_id"],
            server.other_owner_id.to_string()
        );
        let second = server
            .call_as(
                &other_key,
                Method::GET,
                "/v1/members?limit=1&offset=1",
                None,
            )
            .await;
        assert_eq!(second.body["has_more"], false, "{name}: {}", second.body);
        assert_eq!(second.body["items"][0]["role"], "viewer");

        let too_many = server
            .call(Method::GET, "/v1/members?limit=101", None)
            .await;
        refused(&too_many, StatusCode::BAD_REQUEST, "invalid_query", name);
        let machine = machine_key(&server, &["users:read"]).await;
        let answer = server
            .call_as(&machine, Method::GET, "/v1/members", None)
            .await;
        refused(
            &answer,
            StatusCode::FORBIDDEN,
            "machine_key_not_allowed",
            name,
        );
    }
}

#[tokio::test]
async fn a_user_is_read_in_the_callers_tenant_only() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let owner: UserId = server.owner_id;

        let me = server
            .call(Method::GET, &format!("/v1/users/{owner}"), None)
            .await;
        assert_eq!(me.status, StatusCode::OK, "{name}: {}", me.body);
        assert_eq!(me.body["id"], owner.to_string());
        assert_eq!(me.body["email"], "owner@example.com");
        assert_eq!(me.body["role"], "owner");
        assert_eq!(me.body["status"], "active");
        assert_eq!(me.body["can_manage_keys"], true);
        assert!(me.body["membership_created_at"].is_string());

        // The other tenant's owner exists, but not here; nor do ids that name nobody.
        let other = server.other_owner_id;
        let theirs = server
            .call(Method::GET, &format!("/v1/users/{other}"), None)
            .await;
        refused(&theirs, StatusCode::NOT_FOUND, "not_a_member", name);
        assert!(
            !theirs.body.to_string().contains("other@example.com"),
            "{}",
            theirs.body
        );
        let nobody = server
            .call(Method::GET, &format!("/v1/users/{}", UserId::new()), None)
            .await;
        refused(&nobody, StatusCode::NOT_FOUND, "not_a_member", name);
        let from_there = server
            .call_as(
                &server.other_key.clone(),
                Method::GET,
                &format!("/v1/users/{owner}"),
                None,
            )
            .await;
        refused(&from_there, StatusCode::NOT_FOUND, "not_a_member", name);

        // `read:*` is not `users:read`; machine keys never act as a person.
        let path = format!("/v1/users/{owner}");
        let reader = key_from(&server.spine, &server.owner(), &["read:*"]).await;
        let answer = server.call_as(&reader, Method::GET, &path, None).await;
        refused(&answer, StatusCode::FORBIDDEN, "forbidden", name);
        let users = key_from(&server.spine, &server.owner(), &["users:read"]).await;
        let answer = server.call_as(&users, Method::GET, &path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        let machine = machine_key(&server, &["users:read"]).await;
        let answer = server.call_as(&machine, Method::GET, &path, None).await;
        refused(
            &answer,
            StatusCode::FORBIDDEN,
            "machine_key_not_allowed",
            name,
        );
    }
}

/// The router over `spine` on a loopback port of its own; its base URL.
async fn serve(spine: Spine) -> (String, tokio::task::JoinHandle<Result<(), std::io::Error>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = router(AppState::new(spine));
    let task = tokio::spawn(axum::serve(listener, app).into_future());
    (format!("http://{address}"), task)
}

#[tokio::test]
async fn the_support_contact_is_served_as_configured() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let missing = server.call(Method::GET, "/v1/support", None).await;
        refused(
            &missing,
            StatusCode::NOT_FOUND,
            "support_contact_not_configured",
            name,
        );

        // The same database and keys, served by a spine configured with a contact.
        let contact = SupportContact::new(
            Email::parse("help@example.com").unwrap(),
            "Mon-Fri 09:00-17:00 CET",
            "within one business day",
        );
        let (base, task) = serve(server.spine.clone().with_support_contact(contact)).await;
        let get = |key: String| {
            let (client, url) = (server.client.clone(), format!("{base}/v1/support"));
            async move {
                let response = client.get(url).bearer_auth(key).send().await.unwrap();
                let status = response.status();
                (status, response.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, body) = get(server.key.clone()).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(
            body,
            serde_json::json!({
                "email": "help@example.com",
                "hours": "Mon-Fri 09:00-17:00 CET",
                "response_time": "within one business day",
            })
        );
        let support = key_from(&server.spine, &server.owner(), &["support:read"]).await;
        assert_eq!(get(support).await.0, StatusCode::OK, "{name}");
        let reader = key_from(&server.spine, &server.owner(), &["read:*"]).await;
        let (status, body) = get(reader).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::FORBIDDEN, &"forbidden".into()),
            "{name}: {body}"
        );
        let machine = machine_key(&server, &["support:read"]).await;
        let (status, body) = get(machine).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::FORBIDDEN, &"machine_key_not_allowed".into()),
            "{name}: {body}"
        );
        task.abort();
    }
}

#[tokio::test]
async fn the_users_list_pages_by_cursor_over_every_member_once() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        for who in ["dora", "bert", "ezra", "cleo"] {
            let email = format!("{who}@example.com");
            let issued = server
                .spine
                .invite_user(&server.owner(), &email, MembershipRole::Member)
                .await
                .unwrap();
            server
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
        }
        let emails = |answer: &Answer| -> Vec<String> {
            answer.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned())
                .collect()
        };

        // The first page is an offset page (with the total) that hands out a cursor.
        let first = server.call(Method::GET, "/v1/users?limit=2", None).await;
        assert_eq!(first.status, StatusCode::OK, "{name}: {}", first.body);
        assert_eq!(first.body["total"], 5, "{name}");
        let mut seen = emails(&first);
        let mut cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
        let mut pages = 1;
        loop {
            let page = server
                .call(
                    Method::GET,
                    &format!("/v1/users?limit=2&cursor={cursor}"),
                    None,
                )
                .await;
            assert_eq!(page.status, StatusCode::OK, "{name}: {}", page.body);
            pages += 1;
            assert!(
                page.body.get("total").is_none(),
                "{name}: cursor pages do not count"
            );
            assert!(page.body.get("offset").is_none(), "{name}: {}", page.body);
            assert_eq!(page.body["limit"], 2, "{name}");
            seen.extend(emails(&page));
            match page.body["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(page.body["has_more"], true, "{name}");
                    cursor = next.to_owned();
                }
                None => {
                    assert_eq!(page.body["has_more"], false, "{name}");
                    break;
                }
            }
        }
        assert_eq!(pages, 3, "{name}: 5 members, 2 a page");
        let mut expected: Vec<String> = ["bert", "cleo", "dora", "ezra", "owner"]
            .iter()
            .map(|who| format!("{who}@example.com"))
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "{name}: each member once, by email");

        // Another tenant's cursor is only a place in this list: it pages this tenant.
        let theirs = server
            .call_as(
                &server.other_key.clone(),
                Method::GET,
                "/v1/users?limit=1",
                None,
            )
            .await;
        assert_eq!(theirs.status, StatusCode::OK, "{name}: {}", theirs.body);
        assert_eq!(theirs.body["has_more"], false, "{name}: one member there");
        let from_there = server
            .call_as(
                &server.other_key.clone(),
                Method::GET,
                &format!("/v1/users?limit=1&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(
            from_there.status,
            StatusCode::OK,
            "{name}: {}",
            from_there.body
        );
        // The cursor points after ezra@: there, only their own member follows it.
        assert_eq!(emails(&from_there), ["other@example.com"], "{name}");

        // Malformed and tampered cursors are the client's mistake, named by field.
        let foreign = [
            "garbage!".to_owned(),
            "e30".to_owned(),        // `{}`: base64url, but not a position
            cursor[..10].to_owned(), // cut short
            format!("{}*{}", &cursor[..5], &cursor[6..]), // edited out of the alphabet
            format!("{cursor}="),
            "A".repeat(5000),
        ];
        for bad in &foreign {
            let answer = server
                .call(Method::GET, &format!("/v1/users?cursor={bad}"), None)
                .await;
            refused(&answer, StatusCode::BAD_REQUEST, "invalid_query", name);
            assert!(
                answer.body["fields"]["cursor"].is_string(),
                "{name}: {bad}: {}",
                answer.body
            );
        }

        // One way of paging at a time.
        let both = server
            .call(
                Method::GET,
                &format!("/v1/users?offset=2&cursor={cursor}"),
                None,
            )
            .await;
        refused(&both, StatusCode::BAD_REQUEST, "invalid_query", name);
        assert!(
            both.body["fields"]["cursor"].is_string(),
            "{name}: {}",
            both.body
        );
    }
}
