//! What a credential costs per request: a signed-in person's JWT (verified, and from the
//! verified-token cache) next to an API key (from the verify cache, and read from the
//! database). `cargo bench -p account-api --bench sign_in [-- --rounds N]`; it prints
//! medians, and nothing asserts a duration.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)] // a benchmark prints

use account_api::oidc::{Issuer, Verifier};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine, VerifyCacheSettings};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://idp.example.test";

/// A signing key of `algorithm` (generated now) and its JWK.
fn key_pair(algorithm: Algorithm) -> (EncodingKey, Jwk) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let encoding = match algorithm {
        Algorithm::RS256 => {
            use rsa::Generate as _;
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            let key = rsa::PrivateKey::generate();
            EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes())
        }
        Algorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey as _;
            let key = p256::SecretKey::from_slice(&seed).unwrap();
            EncodingKey::from_ec_der(key.to_pkcs8_der().unwrap().as_bytes())
        }
        _ => {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            let pair = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: seed,
                public_key: None,
            };
            EncodingKey::from_ed_der(pair.to_pkcs8_der().unwrap().as_bytes())
        }
    };
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm).unwrap();
    jwk.common.key_id = Some(format!("{algorithm:?}"));
    (encoding, jwk)
}

fn token(key: &EncodingKey, algorithm: Algorithm, subject: usize) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(format!("{algorithm:?}"));
    let exp = chrono::Utc::now().timestamp() + 3600;
    let claims = serde_json::json!({"iss": ISSUER, "aud": "account", "sub": subject.to_string(), "exp": exp});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("sign-in-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("credential verification per request, release build, median of {rounds} (µs)");

    for algorithm in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let (key, jwk) = key_pair(algorithm);
        let jwks = dir.join(format!("{algorithm:?}.json"));
        std::fs::write(
            &jwks,
            serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
        )
        .unwrap();
        let verifier = Verifier::new(
            vec![Issuer::new(ISSUER, "account").with_jwks_file(&jwks)],
            reqwest::Client::new(),
        );
        // Distinct tokens: each is verified (signature and claims); the key set is cached.
        let tokens: Vec<String> = (0..rounds).map(|i| token(&key, algorithm, i)).collect();
        verifier.verify(&tokens[0]).await.unwrap();
        let mut uncached = Vec::with_capacity(rounds);
        for token in &tokens[1..] {
            let started = Instant::now();
            verifier.verify(token).await.unwrap();
            uncached.push(started.elapsed());
        }
        // The same tokens again: from the verified-token cache.
        let mut cached = Vec::with_capacity(rounds);
        for token in &tokens[1..] {
            let started = Instant::now();
            verifier.verify(token).await.unwrap();
            cached.push(started.elapsed());
        }
        println!(
            "  JWT {algorithm:?}: verified {:>8.1}   cached {:>6.1}",
            median(uncached).as_secs_f64() * 1e6,
            median(cached).as_secs_f64() * 1e6
        );
    }

    // An API key, through the spine on a SQLite file.
    let operator = OperatorPrincipal {
        operator_id: "bench".into(),
        request: RequestMeta::default(),
    };
    for (n, (label, settings)) in [
        ("API key, verify cache", VerifyCacheSettings::default()),
        ("API key, database read", VerifyCacheSettings::disabled()),
    ]
    .into_iter()
    .enumerate()
    {
        let url = format!("sqlite://{}/keys-{n}.db?mode=rwc", dir.display());
        let config = DatabaseConfig::new(url);
        account_spine::migrate(&config).await.unwrap();
        let spine = Spine::connect(&config)
            .await
            .unwrap()
            .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap())
            .with_verify_cache(settings);
        let (_, key) = spine
            .bootstrap(&operator, "owner@example.com", "Bench")
            .await
            .unwrap();
        let presented = key.plaintext.expose().to_owned();
        spine
            .authenticate_api_key(&presented, RequestMeta::default())
            .await
            .unwrap();
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            spine
                .authenticate_api_key(&presented, RequestMeta::default())
                .await
                .unwrap();
            samples.push(started.elapsed());
        }
        println!("  {label}: {:>8.1}", median(samples).as_secs_f64() * 1e6);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
