//! Webhook endpoints over HTTP, on each backend: the secret is shown at creation and at
//! rotation only (never by a read, nor in the audit log), input problems name their field,
//! replays and attempts answer on a fresh endpoint, a deleted one is gone; a keyed creation
//! replays its secret; members (signed in), keys without `webhooks:manage` and other tenants
//! get nothing, admins manage.

use crate::support::{Answer, Server, refused, start, start_with_oidc};
use account_api::oidc::{Issuer, Verifier};
use account_testkit::backends;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Registers an endpoint with the first tenant's owner key; its answer (201 checked).
async fn create(server: &Server, body: Value) -> Answer {
    let answer = server.call(Method::POST, "/v1/webhooks", Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer
}

/// The answer's secret, checked to be one.
fn secret_of(answer: &Answer) -> String {
    let secret = answer.body["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{secret}"
    );
    secret
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_endpoint_shows_its_secret_at_creation_and_rotation_only_and_is_gone_once_deleted() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let server = start(&backend).await;
        let created = create(
            &server,
            json!({
                "url": "https://hooks.example.com/in?token=abc",
                "description": "billing sync",
                "event_types": ["api_key.*", "run.completed"],
            }),
        )
        .await;
        let secret = secret_of(&created);
        let endpoint = &created.body;
        let id = endpoint["id"].as_str().unwrap().to_owned();
        assert_eq!(endpoint["url"], "https://hooks.example.com/in?token=abc");
        assert_eq!(endpoint["description"], "billing sync");
        assert_eq!(
            endpoint["event_types"],
            json!(["api_key.*", "run.completed"])
        );
        assert_eq!(endpoint["enabled"], true, "{name}");
        for absent in ["disabled_reason", "failing_since", "previous_secret_until"] {
            assert!(endpoint[absent].is_null(), "{name}: {absent}");
        }

        // Reads never show it, nor does the audit log.
        let path = format!("/v1/webhooks/{id}");
        let one = server.call(Method::GET, &path, None).await;
        assert_eq!(one.status, StatusCode::OK, "{name}: {}", one.body);
        let list = server.call(Method::GET, "/v1/webhooks", None).await;
        assert_eq!(list.status, StatusCode::OK, "{name}: {}", list.body);
        assert_eq!(list.body["total"], 1, "{name}");
        assert_eq!(list.body["items"][0], one.body, "{name}");
        let mut shown = created.body.clone();
        shown.as_object_mut().unwrap().remove("secret");
        assert_eq!(one.body, shown, "{name}: the endpoint, without its secret");
        let secret_body = secret.trim_start_matches("whsec_");
        for text in [one.body.to_string(), list.body.to_string()] {
            assert!(
                !text.contains("secret\"") && !text.contains(secret_body),
                "{text}"
            );
        }
        let audit = server.audit_rows().await.join("\n");
        assert!(audit.contains("webhook_endpoint.created"), "{name}");
        assert!(
            !audit.contains(secret_body),
            "{name}: no secret in the audit log"
        );
        assert!(
            !audit.contains("token=abc"),
            "{name}: the URL's origin only"
        );

        // Refusals name their field.
        for (body, code, field) in [
            (
                json!({"url": "ftp://hooks.example.com"}),
                "invalid_webhook_url",
                "url",
            ),
            (
                json!({"url": "https://user:pw@example.com"}),
                "invalid_webhook_url",
                "url",
            ),
            (
                json!({"event_types": ["run.nope"]}),
                "invalid_event_types",
                "event_types",
            ),
            (
                json!({"event_types": ["*", "nope.*"]}),
                "invalid_event_types",
                "event_types",
            ),
            (
                json!({"description": "x".repeat(257)}),
                "invalid_description",
                "description",
            ),
            (json!({"enabled": "yes"}), "invalid_request", "enabled"),
            (json!({"secret": "whsec_mine"}), "invalid_request", "secret"),
        ] {
            let what = format!("{name}: PATCH {body}");
            let answer = server.call(Method::PATCH, &path, Some(body)).await;
            let fields = refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, code, &what);
            assert!(fields[field].is_string(), "{what}: {}", answer.body);
        }
        for (body, code, field) in [
            (json!({"url": "not a url"}), "invalid_webhook_url", "url"),
            (
                json!({"url": "https://x.example", "event_types": ["tenant.deleted"]}),
                "invalid_event_types",
                "event_types",
            ),
            (json!({"description": "no url"}), "invalid_request", "url"),
        ] {
            let what = format!("{name}: POST {body}");
            let answer = server.call(Method::POST, "/v1/webhooks", Some(body)).await;
            let fields = refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, code, &what);
            assert!(fields[field].is_string(), "{what}: {}", answer.body);
        }

        let changed = server
            .call(
                Method::PATCH,
                &path,
                Some(json!({"enabled": false, "event_types": [], "description": ""})),
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{name}: {}", changed.body);
        assert_eq!(changed.body["enabled"], false);
        assert_eq!(changed.body["disabled_reason"], "by_request", "{name}");
        assert_eq!(changed.body["event_types"], json!([]));
        assert_eq!(changed.body["description"], "");
        assert_eq!(changed.body["url"], endpoint["url"], "{name}: kept");

        // Rotation: a new secret, the old one signing for the grace asked for (a day unless
        // said otherwise).
        let rotate = format!("{path}/rotate-secret");
        let rotated = server.call(Method::POST, &rotate, Some(json!({}))).await;
        assert_eq!(rotated.status, StatusCode::OK, "{name}: {}", rotated.body);
        let new_secret = secret_of(&rotated);
        assert_ne!(new_secret, secret, "{name}");
        let until = time(&rotated.body["previous_secret_until"]);
        let in_a_day = Utc::now() + Duration::days(1);
        assert!(
            (until - in_a_day).num_seconds().abs() < 60,
            "{name}: {until}"
        );
        let read = server.call(Method::GET, &path, None).await;
        assert_eq!(
            read.body["previous_secret_until"],
            rotated.body["previous_secret_until"]
        );
        assert!(read.body.get("secret").is_none(), "{name}");
        let short = server
            .call(Method::POST, &rotate, Some(json!({"grace_seconds": 0})))
            .await;
        assert_ne!(secret_of(&short), new_secret, "{name}");
        let too_long = server
            .call(
                Method::POST,
                &rotate,
                Some(json!({"grace_seconds": 604_801})),
            )
            .await;
        let fields = refused(
            &too_long,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            name,
        );
        assert!(fields["grace_seconds"].is_string(), "{name}");

        // Replays and attempts of a fresh endpoint.
        let replay = format!("{path}/replay");
        let unknown = json!({"event_id": "0190a8b6-5c3e-7d2a-9f11-123456789abc"});
        let answer = server.call(Method::POST, &replay, Some(unknown)).await;
        refused(&answer, StatusCode::NOT_FOUND, "event_not_found", name);
        let range = json!({"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"});
        let answer = server.call(Method::POST, &replay, Some(range)).await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{name}: {}",
            answer.body
        );
        assert_eq!(answer.body, json!({"queued": 0}), "{name}");
        for body in [
            json!({}),
            json!({"from": "2020-01-01T00:00:00Z"}),
            json!({
                "event_id": "0190a8b6-5c3e-7d2a-9f11-123456789abc",
                "from": "2020-01-01T00:00:00Z",
                "to": "2020-01-02T00:00:00Z",
            }),
            json!({"from": "2020-01-02T00:00:00Z", "to": "2020-01-01T00:00:00Z"}),
        ] {
            let what = format!("{name}: replay {body}");
            let answer = server.call(Method::POST, &replay, Some(body)).await;
            refused(
                &answer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_replay",
                &what,
            );
        }
        let attempts = server
            .call(Method::GET, &format!("{path}/attempts"), None)
            .await;
        assert_eq!(attempts.status, StatusCode::OK, "{name}: {}", attempts.body);
        assert_eq!(attempts.body["items"], json!([]), "{name}");
        assert_eq!(attempts.body["has_more"], false, "{name}");
        assert!(attempts.body.get("next_cursor").is_none(), "{name}");
        let bad_page = server
            .call(Method::GET, &format!("{path}/attempts?limit=0"), None)
            .await;
        refused(&bad_page, StatusCode::BAD_REQUEST, "invalid_query", name);

        // A malformed id is refused as every route refuses one; an unknown one is a 404.
        let malformed = server
            .call(Method::GET, "/v1/webhooks/not-an-id", None)
            .await;
        let fields = refused(&malformed, StatusCode::BAD_REQUEST, "invalid_path", name);
        assert!(fields["endpoint_id"].is_string(), "{name}: {fields}");

        let deleted = server.call(Method::DELETE, &path, None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{name}");
        for (method, target) in [
            (Method::GET, path.clone()),
            (Method::DELETE, path.clone()),
            (Method::GET, format!("{path}/attempts")),
        ] {
            let answer = server.call(method.clone(), &target, None).await;
            let what = format!("{name}: {method} {target} after delete");
            refused(
                &answer,
                StatusCode::NOT_FOUND,
                "webhook_endpoint_not_found",
                &what,
            );
        }
        let list = server.call(Method::GET, "/v1/webhooks", None).await;
        assert_eq!(list.body["items"], json!([]), "{name}");
    }
}

#[tokio::test]
async fn a_keyed_creation_replays_the_same_endpoint_and_secret() {
    let backend = backends().unwrap().remove(0); // the keyed path is covered per backend elsewhere
    let server = start(&backend).await;
    let body = json!({"url": "https://hooks.example.com/a", "enabled": false});
    let post = || {
        server
            .request(Method::POST, "/v1/webhooks")
            .bearer_auth(&server.key)
            .header("Idempotency-Key", "create-hook-1")
            .json(&body)
    };
    let first = server.send(post()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["enabled"], false);
    let again = server.send(post()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body, "the same endpoint and secret");
    let list = server.call(Method::GET, "/v1/webhooks", None).await;
    assert_eq!(list.body["total"], 1, "one endpoint: {}", list.body);
}

const AUDIENCE: &str = "account";

/// An OpenID Connect issuer on loopback (its discovery document and JWKS) with an Ed25519 key;
/// its URL and the key that signs its tokens.
async fn loopback_issuer() -> (String, EncodingKey) {
    use axum::Json;
    use axum::routing::get;
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let keypair = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: seed,
        public_key: None,
    };
    let key = EncodingKey::from_ed_der(keypair.to_pkcs8_der().unwrap().as_bytes());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some("k1".to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
    let set = JwkSet { keys: vec![jwk] };
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route("/jwks", get(move || async move { Json(set) }));
    tokio::spawn(axum::serve(listener, app).into_future());
    (url, key)
}

/// A signed-in person's token, good for ten minutes.
fn token(key: &EncodingKey, issuer: &str, subject: &str) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".to_owned());
    let exp = Utc::now().timestamp() + 600;
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": subject, "exp": exp});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

/// `method path` as the signed-in person `bearer`, acting in the first tenant.
async fn as_person(
    server: &Server,
    bearer: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = server
        .request(method, path)
        .bearer_auth(bearer)
        .header("x-tenant-id", server.tenant_id.to_string());
    if let Some(body) = body {
        request = request.json(&body);
    }
    server.send(request).await
}

#[tokio::test]
async fn members_keys_without_the_permission_and_other_tenants_get_nothing() {
    let (issuer, signing) = loopback_issuer().await;
    for backend in backends().unwrap() {
        let name = backend.name();
        let verifier = Verifier::new(vec![Issuer::new(&issuer, AUDIENCE)], reqwest::Client::new());
        let server = start_with_oidc(&backend, verifier).await;
        let created = create(&server, json!({"url": "https://hooks.example.com/b"})).await;
        let path = format!("/v1/webhooks/{}", created.body["id"].as_str().unwrap());

        // A person joins as a member, signed in.
        let person = token(&signing, &issuer, "person-1");
        let invited = server
            .call(
                Method::POST,
                "/v1/invitations",
                Some(json!({"email": "person@example.com", "role": "member"})),
            )
            .await;
        assert_eq!(
            invited.status,
            StatusCode::CREATED,
            "{name}: {}",
            invited.body
        );
        let accept = format!(
            "/v1/invitations/{}/{}/accept",
            server.tenant_id,
            invited.body["invitation"]["id"].as_str().unwrap()
        );
        let body = json!({"token": invited.body["token"]});
        let accepted = server
            .send(
                server
                    .request(Method::POST, &accept)
                    .bearer_auth(&person)
                    .json(&body),
            )
            .await;
        assert_eq!(accepted.status, StatusCode::OK, "{name}: {}", accepted.body);
        let user_id = accepted.body["user_id"].as_str().unwrap().to_owned();

        // A machine key of the owner's without `webhooks:manage`.
        let issued = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "ops", "permissions": ["read:*", "run:*", "audit:read"]})),
            )
            .await;
        assert_eq!(
            issued.status,
            StatusCode::CREATED,
            "{name}: {}",
            issued.body
        );
        let without = issued.body["secret"].as_str().unwrap().to_owned();

        let calls = [
            (Method::GET, "/v1/webhooks".to_owned(), None),
            (
                Method::POST,
                "/v1/webhooks".to_owned(),
                Some(json!({"url": "https://a.example"})),
            ),
            (Method::GET, path.clone(), None),
            (Method::PATCH, path.clone(), Some(json!({"enabled": false}))),
            (
                Method::POST,
                format!("{path}/rotate-secret"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("{path}/replay"),
                Some(json!({"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"})),
            ),
            (Method::GET, format!("{path}/attempts"), None),
            (Method::DELETE, path.clone(), None),
        ];
        for (method, target, body) in &calls {
            let what = format!("{name}: a member: {method} {target}");
            let answer = as_person(&server, &person, method.clone(), target, body.clone()).await;
            refused(&answer, StatusCode::FORBIDDEN, "forbidden", &what);
            let what = format!("{name}: no webhooks:manage: {method} {target}");
            let answer = server
                .call_as(&without, method.clone(), target, body.clone())
                .await;
            refused(&answer, StatusCode::FORBIDDEN, "forbidden", &what);
        }
        // Made an admin, the same person manages the endpoints.
        let promoted = server
            .call(
                Method::PUT,
                &format!("/v1/users/{user_id}/role"),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(promoted.status, StatusCode::OK, "{name}: {}", promoted.body);
        let answer = as_person(&server, &person, Method::GET, &path, None).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{name}: an admin: {}",
            answer.body
        );
        assert!(answer.body.get("secret").is_none(), "{name}");

        // Another tenant's owner sees none of it.
        let other = server.other_key.clone();
        let answer = server.call_as(&other, Method::GET, &path, None).await;
        refused(
            &answer,
            StatusCode::NOT_FOUND,
            "webhook_endpoint_not_found",
            name,
        );
        let theirs = server
            .call_as(&other, Method::GET, "/v1/webhooks", None)
            .await;
        assert_eq!(theirs.body["items"], json!([]), "{name}");
        // Nothing changed: still enabled, still there.
        let answer = server.call(Method::GET, &path, None).await;
        assert_eq!(answer.body["enabled"], true, "{name}");
        assert_eq!(
            answer.body["updated_at"], created.body["updated_at"],
            "{name}"
        );
    }
}
