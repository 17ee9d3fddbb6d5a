//! People sign in through their identity provider, on each backend: the owner invites a person,
//! who accepts while signed in (a JWT from the issuer, keys in a local JWKS file, a key pair
//! generated here), then acts as themselves in the tenant they name, sees themselves at
//! `/v1/me`, and loses access the moment the owner removes them. Refused tokens answer 401
//! with their own code.

use crate::support::{Server, start_with_oidc};
use account_api::oidc::{Issuer, Verifier};
use account_testkit::backends;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "account";

/// An Ed25519 signing key (PKCS#8 v1, as jsonwebtoken reads it) and its JWK.
fn key_pair() -> (EncodingKey, Jwk) {
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

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn token(key: &EncodingKey, subject: &str, exp: i64) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".to_owned());
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "exp": exp});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

async fn call(
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
async fn a_person_signs_in_accepts_acts_as_themselves_and_is_removed() {
    let (key, jwk) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    for backend in backends().unwrap() {
        let name = backend.name();
        let verifier = Verifier::new(
            vec![Issuer::new(ISSUER, AUDIENCE).with_jwks_file(&jwks)],
            reqwest::Client::new(),
        );
        let server = start_with_oidc(&backend, verifier).await;
        let tenant = server.tenant_id.to_string();
        let owner_key = server.key.clone();
        let person = token(&key, "person-1", now() + 600);

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
        assert_eq!(me["identities"][0]["issuer"], json!(ISSUER));
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
        let expired = token(&key, "person-1", now() - 120);
        let (status, body) = call(&server, Method::GET, "/v1/me", &expired, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::UNAUTHORIZED, &json!("token_expired")),
            "{name}"
        );
        let (stranger_key, _) = key_pair();
        let forged = token(&stranger_key, "person-1", now() + 600);
        let (status, body) = call(&server, Method::GET, "/v1/me", &forged, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::UNAUTHORIZED, &json!("token_signature_invalid")),
            "{name}"
        );
    }
}
