//! The verifier against a loopback issuer: keys generated here, a discovery document and a
//! JWKS served by a local axum server, tokens signed with jsonwebtoken.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use super::*;
use axum::Json;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::sync::Mutex;

/// A signing key of one algorithm with its public JWK.
struct SigningKey {
    algorithm: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

fn signing_key(algorithm: Algorithm, kid: &str) -> SigningKey {
    let der = match algorithm {
        Algorithm::RS256 => {
            // jsonwebtoken reads RSA keys as PKCS#1.
            use rsa::Generate as _;
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            let key = rsa::PrivateKey::generate();
            key.to_pkcs1_der().unwrap().as_bytes().to_vec()
        }
        Algorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey as _;
            let key = loop {
                // A random 32-byte string is a valid P-256 scalar but for a 2^-32 chance.
                if let Ok(key) = p256::SecretKey::from_slice(&random_bytes()) {
                    break key;
                }
            };
            key.to_pkcs8_der().unwrap().as_bytes().to_vec()
        }
        _ => {
            // jsonwebtoken reads Ed25519 keys as PKCS#8 v1 (the seed, no public key).
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            let keypair = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: random_bytes(),
                public_key: None,
            };
            keypair.to_pkcs8_der().unwrap().as_bytes().to_vec()
        }
    };
    let encoding = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_der(&der),
        Algorithm::ES256 => EncodingKey::from_ec_der(&der),
        _ => EncodingKey::from_ed_der(&der),
    };
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    SigningKey {
        algorithm,
        kid: kid.to_owned(),
        encoding,
        jwk,
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0; 32];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// A loopback issuer serving a discovery document and a swappable JWKS.
struct TestIssuer {
    url: String,
    served: Arc<Mutex<JwkSet>>,
    fetches: Arc<Mutex<usize>>,
}

async fn issuer(keys: &[&SigningKey]) -> TestIssuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(Mutex::new(JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    }));
    let fetches = Arc::new(Mutex::new(0));
    let discovery = json!({ "issuer": url, "jwks_uri": format!("{url}/jwks") });
    let (set, count) = (served.clone(), fetches.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route(
            "/jwks",
            get(move || {
                let (set, count) = (set.clone(), count.clone());
                async move {
                    *count.lock().unwrap() += 1;
                    Json(set.lock().unwrap().clone())
                }
            }),
        );
    tokio::spawn(axum::serve(listener, app).into_future());
    TestIssuer {
        url,
        served,
        fetches,
    }
}

const AUDIENCE: &str = "account-api";

fn token(key: &SigningKey, claims: serde_json::Value) -> String {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn claims(issuer: &str) -> serde_json::Value {
    json!({
        "iss": issuer,
        "sub": "person-1",
        "aud": AUDIENCE,
        "exp": now() + 600,
        "iat": now(),
        "email": "ann@example.com",
    })
}

fn verifier(issuer: &TestIssuer) -> Verifier {
    let config = Issuer::new(&issuer.url, AUDIENCE).with_refetch_interval(Duration::from_secs(60));
    Verifier::new(vec![config], reqwest::Client::new())
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_and_are_cached() {
    let keys = [
        signing_key(Algorithm::RS256, "rsa"),
        signing_key(Algorithm::ES256, "ec"),
        signing_key(Algorithm::EdDSA, "ed"),
    ];
    let issuer = issuer(&keys.iter().collect::<Vec<_>>()).await;
    let verifier = verifier(&issuer);
    for key in &keys {
        let identity = verifier.verify(&token(key, claims(&issuer.url))).await;
        let identity = identity.unwrap_or_else(|e| panic!("{:?}: {e}", key.algorithm));
        assert_eq!(identity.subject, "person-1");
        assert_eq!(identity.issuer, issuer.url);
        assert_eq!(identity.email.as_deref(), Some("ann@example.com"));
    }
    // One fetch of the key set served all three; a verified token is not checked again.
    let again = token(&keys[0], claims(&issuer.url));
    verifier.verify(&again).await.unwrap();
    verifier.verify(&again).await.unwrap();
    assert_eq!(*issuer.fetches.lock().unwrap(), 1);
}

#[tokio::test]
async fn every_refusal_has_its_own_code() {
    let rsa = signing_key(Algorithm::RS256, "rsa");
    let issuer = issuer(&[&rsa]).await;
    let verifier = verifier(&issuer);
    let code = |result: Result<Identity, TokenError>| result.err().map(|e| e.code());
    let base = claims(&issuer.url);
    let with = |field: &str, value: serde_json::Value| {
        let mut claims = base.clone();
        claims[field] = value;
        claims
    };

    // alg: none, whatever the case.
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(base.clone())
    );
    assert_eq!(
        code(verifier.verify(&none).await),
        Some("token_algorithm_refused")
    );
    let none_upper = format!("{}.{}.", b64(json!({"alg": "NONE"})), b64(base.clone()));
    assert_eq!(
        code(verifier.verify(&none_upper).await),
        Some("token_algorithm_refused")
    );

    // HMAC signed with the issuer's public key as the secret: refused before any key is used.
    let public = serde_json::to_vec(&rsa.jwk).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa".to_owned());
    let secret = EncodingKey::from_secret(&public).unwrap();
    let hmac = jsonwebtoken::encode(&header, &base, &secret).unwrap();
    assert_eq!(
        code(verifier.verify(&hmac).await),
        Some("token_algorithm_refused")
    );

    // A token claiming ES256 for the RSA key.
    let es = signing_key(Algorithm::ES256, "es");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rsa".to_owned());
    let confused = jsonwebtoken::encode(&header, &base, &es.encoding).unwrap();
    assert_eq!(
        code(verifier.verify(&confused).await),
        Some("token_algorithm_refused")
    );

    assert_eq!(
        code(
            verifier
                .verify(&token(&rsa, with("iss", json!("https://evil.example"))))
                .await
        ),
        Some("token_issuer_unknown")
    );
    assert_eq!(
        code(
            verifier
                .verify(&token(&rsa, with("aud", json!("another-api"))))
                .await
        ),
        Some("token_audience_mismatch")
    );
    assert_eq!(
        code(
            verifier
                .verify(&token(&rsa, with("exp", json!(now() - 2 * LEEWAY_SECONDS))))
                .await
        ),
        Some("token_expired")
    );
    assert_eq!(
        code(
            verifier
                // Twice the skew ahead: one second past the skew was accepted whenever the
                // clock ticked between signing and verifying.
                .verify(&token(&rsa, with("nbf", json!(now() + 2 * LEEWAY_SECONDS))))
                .await
        ),
        Some("token_not_yet_valid")
    );
    // Within the 60 s skew both ways: accepted.
    let skewed = with("exp", json!(now() - 30));
    let mut skewed = skewed;
    skewed["nbf"] = json!(now() + 30);
    assert!(verifier.verify(&token(&rsa, skewed)).await.is_ok());

    // A signature by another key under the same kid.
    let impostor = SigningKey {
        kid: "rsa".to_owned(),
        ..signing_key(Algorithm::RS256, "other")
    };
    assert_eq!(
        code(verifier.verify(&token(&impostor, base.clone())).await),
        Some("token_signature_invalid")
    );
    assert_eq!(
        code(verifier.verify("ey.not-a.jwt").await),
        Some("token_malformed")
    );
    let mut no_sub = base.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        code(verifier.verify(&token(&rsa, no_sub)).await),
        Some("token_claim_missing")
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_per_interval() {
    let old = signing_key(Algorithm::ES256, "old");
    let issuer = issuer(&[&old]).await;
    let verifier = verifier(&issuer);
    verifier
        .verify(&token(&old, claims(&issuer.url)))
        .await
        .unwrap();
    // The issuer rotates its key: the first token with the new kid triggers one refetch...
    let new = signing_key(Algorithm::ES256, "new");
    *issuer.served.lock().unwrap() = JwkSet {
        keys: vec![new.jwk.clone()],
    };
    // ...but not before the interval has passed since the last fetch.
    let result = verifier.verify(&token(&new, claims(&issuer.url))).await;
    assert_eq!(result.err().map(|e| e.code()), Some("token_key_unknown"));
    assert_eq!(*issuer.fetches.lock().unwrap(), 1);

    // With a zero interval, concurrent misses merge into one fetch.
    let eager = Verifier::new(
        vec![Issuer::new(&issuer.url, AUDIENCE).with_refetch_interval(Duration::ZERO)],
        reqwest::Client::new(),
    );
    let before = *issuer.fetches.lock().unwrap();
    let tokens: Vec<String> = (0..8)
        .map(|i| {
            let mut claims = claims(&issuer.url);
            claims["sub"] = json!(format!("person-{i}"));
            token(&new, claims)
        })
        .collect();
    let results = futures_join(&eager, &tokens).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(*issuer.fetches.lock().unwrap(), before + 1);
}

async fn futures_join(verifier: &Verifier, tokens: &[String]) -> Vec<Result<Identity, TokenError>> {
    let handles: Vec<_> = tokens
        .iter()
        .map(|token| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

#[tokio::test]
async fn a_local_jwks_file_serves_air_gapped_installs() {
    let ed = signing_key(Algorithm::EdDSA, "ed");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(
        &path,
        serde_json::to_string(&JwkSet {
            keys: vec![ed.jwk.clone()],
        })
        .unwrap(),
    )
    .unwrap();
    let issuer_url = "https://idp.internal.example";
    let verifier = Verifier::new(
        vec![Issuer::new(issuer_url, AUDIENCE).with_jwks_file(&path)],
        reqwest::Client::new(),
    );
    let identity = verifier
        .verify(&token(&ed, claims(issuer_url)))
        .await
        .unwrap();
    assert_eq!(identity.subject, "person-1");
    // An issuer allowing RS256 only refuses the EdDSA token.
    let strict = Verifier::new(
        vec![
            Issuer::new(issuer_url, AUDIENCE)
                .with_jwks_file(&path)
                .with_algorithms(vec![Algorithm::RS256]),
        ],
        reqwest::Client::new(),
    );
    let refused = strict.verify(&token(&ed, claims(issuer_url))).await;
    assert_eq!(
        refused.err().map(|e| e.code()),
        Some("token_algorithm_refused")
    );
}

#[tokio::test]
async fn a_verified_token_is_answered_from_the_cache_until_it_expires() {
    let key = signing_key(Algorithm::ES256, "ec");
    let issuer = issuer(&[&key]).await;
    let verifier = verifier(&issuer);
    let presented = token(&key, claims(&issuer.url));
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    verifier.verify(&presented).await.unwrap();
    assert!(verifier.inner.verified.contains_key(&digest));

    // The second time, no signature is checked: what the cache holds is the answer (a
    // verifier checking again would say `person-1`).
    let mut cached = verifier.inner.verified.get(&digest).unwrap();
    cached.subject = "from-the-cache".into();
    verifier.inner.verified.insert(digest, cached.clone());
    assert_eq!(verifier.verify(&presented).await.unwrap(), cached);

    // A refused token is not cached.
    let mut foreign = claims(&issuer.url);
    foreign["aud"] = json!("someone-else");
    let refused = token(&key, foreign);
    assert!(verifier.verify(&refused).await.is_err());
    let refused_digest: [u8; 32] = Sha256::digest(refused.as_bytes()).into();
    assert!(!verifier.inner.verified.contains_key(&refused_digest));

    // Past its `exp` (and the leeway), a cached token is refused and dropped.
    cached.expires_at = now() - LEEWAY_SECONDS - 1;
    verifier.inner.verified.insert(digest, cached);
    assert_eq!(verifier.verify(&presented).await, Err(TokenError::Expired));
    assert!(!verifier.inner.verified.contains_key(&digest));
}
