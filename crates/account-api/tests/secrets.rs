//! Secrets never leak (ASVS 16.2.5): a whole story over HTTP at TRACE level (bootstrap, issue,
//! use, rotate, revoke, invite, resend, accept, an operator key's use, and failed
//! authentication with wrong, forged, revoked and misplaced credentials), then every API key,
//! operator key and invitation token of it, and their base64 and hex forms, is searched for
//! in the captured logs, every answer body (the audit log's page and export included; a body
//! that hands a secret out is exempt for that secret only), the `Debug` of every result, error and event the test can reach, and every
//! row of every table (the audit log included). None may appear.
//!
//! Its own test binary: it installs the global log subscriber.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod log_capture;

use account_api::{AppState, router};
use account_spine::api_keys::{ApiKeyPepper, PlaintextApiKey};
use account_spine::{DatabaseConfig, OperatorPrincipal, RecordedEvents, RequestMeta, Spine};
use account_testkit::{Backend, TestDb, backends, fresh_db};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use log_capture::Captured;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

struct Server {
    base: String,
    client: reqwest::Client,
    spine: Spine,
    events: Arc<RecordedEvents>,
    db: TestDb,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(backend: &Backend) -> Server {
    let db = fresh_db(backend).await.unwrap();
    let events = Arc::new(RecordedEvents::default());
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap())
        .with_events(events.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = router(AppState::new(spine.clone()));
    let task = tokio::spawn(axum::serve(listener, app).into_future());
    Server {
        base: format!("http://{address}"),
        client: reqwest::Client::new(),
        spine,
        events,
        db,
        task,
    }
}

fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "cli:secrets-test".into(),
        request: RequestMeta::default(),
    }
}

/// Everything the story produced that must not hold a secret, and the secrets.
#[derive(Default)]
struct Story {
    /// `(name, plaintext)`.
    secrets: Vec<(String, String)>,
    /// `(where, text, secrets this text hands out on purpose)`.
    texts: Vec<(String, String, Vec<String>)>,
}

impl Story {
    fn secret(&mut self, name: &str, plaintext: &str) -> String {
        self.secrets.push((name.to_owned(), plaintext.to_owned()));
        plaintext.to_owned()
    }

    fn text(&mut self, place: impl Into<String>, text: impl Into<String>) {
        self.texts.push((place.into(), text.into(), Vec::new()));
    }

    /// An HTTP call: its status and body; the body is searched, except for `hands_out`.
    async fn call(
        &mut self,
        server: &Server,
        credential: Option<(&str, &str)>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = server
            .client
            .request(method.clone(), format!("{}{path}", server.base));
        if let Some((header, key)) = credential {
            request = match header {
                "bearer" => request.bearer_auth(key),
                other => request.header(other, key),
            };
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.unwrap();
        let place = format!("{method} {path} -> {status}");
        self.text(format!("{place} (headers)"), headers);
        self.texts.push((place, text.clone(), Vec::new()));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Marks the last body as handing out `secret` on purpose.
    fn hands_out(&mut self, secret: &str) {
        self.texts.last_mut().unwrap().2.push(secret.to_owned());
    }
}

/// The forms a secret could leak in: itself, its part after the public display prefix, and
/// the base64 and hex of both the text and its random bytes.
fn forms(secret: &str) -> Vec<String> {
    let (prefix, display) = ["acc_live_", "acc_op_", "inv_"]
        .iter()
        .find(|p| secret.starts_with(**p))
        .map(|p| (p.len(), if *p == "inv_" { p.len() } else { 16 }))
        .unwrap_or((0, 0));
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut forms = vec![
        secret.to_owned(),
        secret[display..].to_owned(),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        hex(secret.as_bytes()),
    ];
    if let Some(body) = secret.get(prefix..prefix + 43)
        && let Ok(random) = URL_SAFE_NO_PAD.decode(body)
    {
        forms.push(hex(&random));
        forms.push(STANDARD.encode(&random));
    }
    forms
}

#[tokio::test]
async fn no_key_or_token_of_a_whole_story_reaches_logs_bodies_debug_output_or_rows() {
    let captured = Captured::install();
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let spine = &server.spine;
        let mut story = Story::default();

        // Bootstrap, as the command line does it: the owner's key, shown once.
        let (created, bootstrap) = spine
            .bootstrap(&operator(), "owner@example.com", "Acme")
            .await
            .unwrap();
        let tenant = created.tenant.id;
        let owner_key = story.secret("bootstrap key", bootstrap.plaintext.expose());
        story.text(
            "Debug of the bootstrap result",
            format!("{created:?} {bootstrap:?}"),
        );
        let owner = Some(("bearer", owner_key.as_str()));

        // Issue a key over HTTP, use it, rotate it, use both, revoke the new one.
        let (status, issued) = story
            .call(
                &server,
                owner,
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "ci", "permissions": ["run:*", "read:*"]})),
            )
            .await;
        assert!((200..300).contains(&status), "{name}: {status} {issued}");
        let ci_key = story.secret("issued key", issued["secret"].as_str().unwrap());
        story.hands_out(&ci_key);
        let ci_id = issued["key"]["id"].as_str().unwrap().to_owned();
        let (status, _) = story
            .call(
                &server,
                Some(("x-api-key", &ci_key)),
                Method::GET,
                "/v1/runs",
                None,
            )
            .await;
        assert_eq!(status, 200, "{name}");
        let (status, rotated) = story
            .call(
                &server,
                owner,
                Method::POST,
                &format!("/v1/api-keys/{ci_id}/rotate"),
                Some(json!({"grace_seconds": 300})),
            )
            .await;
        assert!((200..300).contains(&status), "{name}: {status} {rotated}");
        let new_key = story.secret("rotated key", rotated["secret"].as_str().unwrap());
        story.hands_out(&new_key);
        let new_id = rotated["key"]["id"].as_str().unwrap().to_owned();
        for key in [&ci_key, &new_key] {
            let (status, body) = story
                .call(
                    &server,
                    Some(("bearer", key)),
                    Method::GET,
                    "/v1/runs",
                    None,
                )
                .await;
            assert!((200..300).contains(&status), "{name}: {status} {body}");
        }
        let (status, body) = story
            .call(
                &server,
                owner,
                Method::POST,
                &format!("/v1/api-keys/{new_id}/revoke"),
                Some(json!({"reason": "leaked in a test"})),
            )
            .await;
        assert!((200..300).contains(&status), "{name}: {status} {body}");

        // Invite, resend (a new token), accept with the old token (refused), the new one, and
        // the new one again (refused).
        let (status, invited) = story
            .call(
                &server,
                owner,
                Method::POST,
                "/v1/invitations",
                Some(json!({"email": "invitee@example.com", "role": "member"})),
            )
            .await;
        assert!((200..300).contains(&status), "{name}: {status} {invited}");
        let first_token = story.secret("invitation token", invited["token"].as_str().unwrap());
        story.hands_out(&first_token);
        let invitation = invited["invitation"]["id"].as_str().unwrap().to_owned();
        let (status, resent) = story
            .call(
                &server,
                owner,
                Method::POST,
                &format!("/v1/invitations/{invitation}/resend"),
                None,
            )
            .await;
        assert!((200..300).contains(&status), "{name}: {status} {resent}");
        let token = story.secret("resent token", resent["token"].as_str().unwrap());
        story.hands_out(&token);
        let accept = format!("/v1/invitations/{tenant}/{invitation}/accept");
        for (presented, expected) in [(&first_token, 404), (&token, 200), (&token, 409)] {
            let (status, body) = story
                .call(
                    &server,
                    None,
                    Method::POST,
                    &accept,
                    Some(json!({"token": presented, "name": "Ivy Invitee"})),
                )
                .await;
            assert!(
                status == expected || (expected == 200 && status == 201),
                "{name}: accept answered {status}, expected {expected}: {body}"
            );
        }

        // An operator key, created by platform tooling and used on a platform route.
        let created_op = spine.create_operator_key(&operator(), "ops").await.unwrap();
        let op_key = story.secret("operator key", created_op.plaintext.expose());
        story.text(
            "Debug of the created operator key",
            format!("{created_op:?}"),
        );
        let lifecycle = format!("/v1/platform/tenants/{tenant}/lifecycle");
        let (status, body) = story
            .call(
                &server,
                Some(("bearer", &op_key)),
                Method::GET,
                &lifecycle,
                None,
            )
            .await;
        assert!((200..300).contains(&status), "{name}: {status} {body}");

        // Failed authentication: a typo of a real key, a well-formed key never issued, a
        // revoked key, keys on the wrong side, a forged operator key, a malformed key.
        let last = if owner_key.ends_with('0') { '1' } else { '0' };
        let typo = story.secret(
            "mistyped key",
            &format!("{}{last}", &owner_key[..owner_key.len() - 1]),
        );
        let never_issued = story.secret(
            "unissued key",
            PlaintextApiKey::generate().unwrap().expose(),
        );
        let last = if op_key.ends_with('0') { '1' } else { '0' };
        let forged_op = story.secret(
            "forged operator key",
            &format!("{}{last}", &op_key[..op_key.len() - 1]),
        );
        for (key, path, expected) in [
            (&typo, "/v1/runs", 401),
            (&never_issued, "/v1/runs", 401),
            (&new_key, "/v1/runs", 401),
            (&op_key, "/v1/runs", 401),
            (&owner_key, lifecycle.as_str(), 403),
            (&forged_op, lifecycle.as_str(), 401),
        ] {
            for header in ["bearer", "x-api-key"] {
                let (status, body) = story
                    .call(&server, Some((header, key)), Method::GET, path, None)
                    .await;
                assert_eq!(status, expected, "{name}: {header} on {path}: {body}");
            }
        }
        let malformed = story.secret("malformed key", &format!("{}!", &owner_key[..40]));
        let (status, _) = story
            .call(
                &server,
                Some(("bearer", &malformed)),
                Method::GET,
                "/v1/runs",
                None,
            )
            .await;
        assert_eq!(status, 401, "{name}");

        // The audit log as its readers see it: a page and the export of the whole story.
        for path in [
            "/v1/audit?limit=100",
            "/v1/audit/export?from=2000-01-01T00:00:00Z",
        ] {
            let (status, body) = story.call(&server, owner, Method::GET, path, None).await;
            assert_eq!(status, 200, "{name}: {path}: {body}");
        }

        // The spine's own answers to the same secrets, and every event it published.
        for key in [&typo, &never_issued, &new_key, &malformed, &op_key] {
            let answer = spine
                .authenticate_api_key(key, RequestMeta::default())
                .await;
            story.text("Debug of authenticate_api_key", format!("{answer:?}"));
            if let Err(error) = &answer {
                story.text("Display of its error", error.to_string());
            }
        }
        let answer = spine
            .authenticate_api_key(&owner_key, RequestMeta::default())
            .await;
        story.text("Debug of a verified principal", format!("{answer:?}"));
        let answer = spine
            .authenticate_operator_key(&forged_op, RequestMeta::default())
            .await;
        story.text("Debug of authenticate_operator_key", format!("{answer:?}"));
        let answer = spine
            .accept_invitation(
                tenant,
                invitation.parse().unwrap(),
                &first_token,
                Default::default(),
                RequestMeta::default(),
            )
            .await;
        story.text("Debug of a refused acceptance", format!("{answer:?}"));
        let principal = spine
            .authenticate_api_key(&owner_key, RequestMeta::default())
            .await
            .unwrap();
        let issued = spine
            .issue_api_key(
                &principal,
                account_spine::api_keys::IssueKey {
                    name: "debug".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        story.secret("spine-issued key", issued.plaintext.expose());
        story.text("Debug of an issued key", format!("{issued:?}"));
        let invited = spine
            .invite_user(
                &principal,
                "second@example.com",
                account_spine::types::MembershipRole::Viewer,
            )
            .await
            .unwrap();
        story.secret("spine invitation token", invited.token.expose());
        story.text("Debug of an issued invitation", format!("{invited:?}"));
        story.text("Debug of every event", format!("{:?}", server.events.all()));

        // Every row of every table, the audit log first among them.
        let tables = server.db.row_counts().await.unwrap();
        assert!(
            tables.get("audit_log").is_some_and(|n| *n > 5),
            "{name}: {tables:?}"
        );
        for table in tables.keys() {
            for row in server.db.rows_as_text(table).await.unwrap() {
                story.text(format!("row of {table}"), row);
            }
        }
        story.text("the logs", captured.text());

        let mut leaks = Vec::new();
        for (secret_name, secret) in &story.secrets {
            let forms = forms(secret);
            for (place, text, handed_out) in &story.texts {
                if handed_out.contains(secret) {
                    continue;
                }
                let lower = text.to_lowercase();
                for form in &forms {
                    let hit = text.contains(form.as_str())
                        || (form.bytes().all(|b| b.is_ascii_hexdigit())
                            && lower.contains(&form.to_lowercase()));
                    if hit {
                        let at = text.find(form.as_str()).unwrap_or(0);
                        let context: String =
                            text.chars().skip(at.saturating_sub(60)).take(160).collect();
                        leaks.push(format!(
                            "{name}: the {secret_name} ({form}) in {place}: …{context}…"
                        ));
                    }
                }
            }
        }
        assert!(
            leaks.is_empty(),
            "{} leaks:\n{}",
            leaks.len(),
            leaks.join("\n")
        );
        // The search looked at something: the story's requests are in the logs.
        let logs = captured.text();
        assert!(
            logs.contains("/v1/invitations"),
            "{name}: requests are logged"
        );
        assert!(
            story.secrets.len() >= 12 && story.texts.len() > 40,
            "{name}"
        );
        eprintln!(
            "{name}: {} secrets x {} forms searched in {} texts ({} log bytes)",
            story.secrets.len(),
            forms(&owner_key).len(),
            story.texts.len(),
            logs.len()
        );
    }
}
