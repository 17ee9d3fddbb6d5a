//! People sign in through their identity provider, on each backend, as one story: the owner
//! bootstraps and invites a person, who accepts while signed in (a JWT from an issuer served on
//! loopback, its discovery document and JWKS, a key pair generated here), then acts as
//! themselves in the tenant they name, sees themselves at `/v1/me`, is demoted and loses the
//! power at once, and is removed and loses access; the owner rotates and revokes the bootstrap
//! key and still manages keys. Refused tokens answer 401 with their own code.

use crate::support::{Server, start_with_oidc};
use account_api::oidc::{Issuer, Verifier};
use account_testkit::backends;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) const AUDIENCE: &str = "account";

/// An issuer on loopback: its discovery document and its JWKS. Returns its URL.
pub(crate) async fn loopback_issuer(jwk: Jwk) -> String {
    use axum::Json;
    use axum::routing::get;
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
    url
}

/// An Ed25519 signing key (PKCS#8 v1, as jsonwebtoken reads it) and its JWK.
pub(crate) fn key_pair() -> (EncodingKey, Jwk) {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let keypair = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: seed,
        public_key: None,
    };
    let der = keypair.to_pkcs8_der().unwrap();
    let encoding = EncodingKey::from_ed_der(der.as_bytes());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some("k1".to_owned());
    (encoding, jwk)
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn token(key: &EncodingKey, issuer: &str, subject: &str, exp: i64) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".to_owned());
    let claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": subject, "exp": exp});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

pub(crate) async fn call(
    server: &Server,
    method: Method,
    path: &str,
    bearer: &str,
    tenant: Option<String>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .request(method, path)
        .header("authorization", format!("Bearer {bearer}"));
    if let Some(tenant) = tenant {
        request = request.header("x-tenant-id", tenant);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = server.send(request).await;
    (answer.status, answer.body)
}

#[tokio::test]
async fn a_person_signs_in_acts_as_themselves_and_the_owner_keeps_the_keys() {
    let (key, jwk) = key_pair();
    let issuer = loopback_issuer(jwk).await;
    for backend in backends().unwrap() {
        let name = backend.name();
        let verifier = Verifier::new(vec![Issuer::new(&issuer, AUDIENCE)], reqwest::Client::new());
        let server = start_with_oidc(&backend, verifier).await;
        let tenant = server.tenant_id.to_string();
        let owner_key = server.key.clone();
        let person = token(&key, &issuer, "person-1", now() + 600);

        // Before accepting, the person is nobody here.
        let (status, body) = call(&server, Method::GET, "/v1/me", &person, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::NOT_FOUND, &json!("identity_not_linked")),
            "{name}: {body}"
        );

        // The owner invites; the person accepts signed in, which links their identity.
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/invitations",
            &owner_key,
            None,
            Some(json!({"email": "person@example.com", "role": "member"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let invitation = body["invitation"]["id"].as_str().unwrap().to_owned();
        let invite_token = body["token"].as_str().unwrap().to_owned();
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("/v1/invitations/{tenant}/{invitation}/accept"),
            &person,
            None,
            Some(json!({"token": invite_token})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let user_id = body["user_id"].as_str().unwrap().to_owned();

        // They see themselves, and act in the tenant they name with their own role.
        let (status, me) = call(&server, Method::GET, "/v1/me", &person, None, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {me}");
        assert_eq!(me["user_id"], json!(user_id));
        assert_eq!(me["identities"][0]["issuer"], json!(issuer));
        assert_eq!(me["identities"][0]["subject"], json!("person-1"));
        assert_eq!(me["memberships"][0]["tenant_id"], json!(tenant));
        assert_eq!(me["memberships"][0]["role"], json!("member"));
        let (status, body) = call(
            &server,
            Method::GET,
            "/v1/runs",
            &person,
            Some(tenant.clone()),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        // A member may not invite: the role is the membership's.
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/invitations",
            &person,
            Some(tenant.clone()),
            Some(json!({"email": "friend@example.com", "role": "member"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        // No tenant named; a tenant they do not belong to.
        let (status, body) = call(&server, Method::GET, "/v1/runs", &person, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("tenant_required")),
            "{name}"
        );
        let other = server.other_tenant_id.to_string();
        let (status, body) =
            call(&server, Method::GET, "/v1/runs", &person, Some(other), None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::NOT_FOUND, &json!("tenant_not_found")),
            "{name}"
        );

        // They start a run as a member; demoted to viewer, the next one is refused at once.
        let run = json!({"worker_id": "business-builder", "task": "plan"});
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/runs",
            &person,
            Some(tenant.clone()),
            Some(run.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let (status, body) = call(
            &server,
            Method::PUT,
            &format!("/v1/users/{user_id}/role"),
            &owner_key,
            None,
            Some(json!({"role": "viewer"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/runs",
            &person,
            Some(tenant.clone()),
            Some(run),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");

        // Removed by the owner, they lose access at once.
        let (status, body) = call(
            &server,
            Method::DELETE,
            &format!("/v1/users/{user_id}"),
            &owner_key,
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body) = call(
            &server,
            Method::GET,
            "/v1/runs",
            &person,
            Some(tenant.clone()),
            None,
        )
        .await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::NOT_FOUND, &json!("tenant_not_found")),
            "{name}"
        );

        // Refused tokens: expired, and one from no configured issuer's key.
        let expired = token(&key, &issuer, "person-1", now() - 120);
        let (status, body) = call(&server, Method::GET, "/v1/me", &expired, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::UNAUTHORIZED, &json!("token_expired")),
            "{name}"
        );
        let (stranger_key, _) = key_pair();
        let forged = token(&stranger_key, &issuer, "person-1", now() + 600);
        let (status, body) = call(&server, Method::GET, "/v1/me", &forged, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::UNAUTHORIZED, &json!("token_signature_invalid")),
            "{name}"
        );

        // The owner rotates the bootstrap key, revokes it, and manages keys with the successor.
        let (status, keys) =
            call(&server, Method::GET, "/v1/api-keys", &owner_key, None, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {keys}");
        let bootstrap = keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "bootstrap")
            .and_then(|k| k["id"].as_str())
            .unwrap()
            .to_owned();
        let (status, rotated) = call(
            &server,
            Method::POST,
            &format!("/v1/api-keys/{bootstrap}/rotate"),
            &owner_key,
            None,
            Some(json!({"grace_seconds": 60})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {rotated}");
        let successor = rotated["secret"].as_str().unwrap().to_owned();
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("/v1/api-keys/{bootstrap}/revoke"),
            &successor,
            None,
            Some(json!({"reason": "leaked"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/api-keys",
            &successor,
            None,
            Some(json!({"name": "after the leak", "permissions": ["keys:manage"]})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let (status, _) = call(&server, Method::GET, "/v1/api-keys", &owner_key, None, None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{name}: the revoked key is refused"
        );
    }
}
