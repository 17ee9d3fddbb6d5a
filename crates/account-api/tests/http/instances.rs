//! Several `account-api` processes on one PostgreSQL database: what one instance changes, the
//! others' caches stop serving within a second (not after their TTL).

use crate::process::{Running, free_port, serve};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine};
use account_testkit::{Backend, UrlDb, backends};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const PEPPER: [u8; 32] = [9; 32];

/// The bound issue 21 sets; the verify cache's TTL (5 s) is what an instance would otherwise
/// serve a revoked key for.
const WITHIN: Duration = Duration::from_secs(1);

async fn status(client: &reqwest::Client, base: &str, key: &str) -> StatusCode {
    client
        .get(format!("{base}/v1/runs"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_is_refused_by_the_others_within_a_second() {
    let Some(backend) = backends()
        .unwrap()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres { .. }))
    else {
        return;
    };
    let db = UrlDb::new(&backend, "account-api-instances").await.unwrap();
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&PEPPER).unwrap());
    let operator = OperatorPrincipal {
        operator_id: "test".into(),
        request: RequestMeta::default(),
    };
    let (_, owner_key) = spine
        .bootstrap(&operator, "owner@example.com", "Acme")
        .await
        .unwrap();
    let owner = owner_key.plaintext.expose().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let _instances: Vec<Running> = ports
        .iter()
        .map(|port| serve(db.url(), dir.path(), *port, &PEPPER, &[]))
        .collect();
    let bases: Vec<String> = ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    let client = reqwest::Client::new();

    for round in 0..3 {
        // A key issued on the first instance, used on all three (each caches it).
        let issued: serde_json::Value = client
            .post(format!("{}/v1/api-keys", bases[0]))
            .bearer_auth(&owner)
            .json(
                &serde_json::json!({"name": format!("shared-{round}"), "permissions": ["read:*"]}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(issued["secret"].is_string(), "{issued}");
        let key = issued["secret"].as_str().expect("issued").to_owned();
        let id = issued["key"]["id"].as_str().unwrap().to_owned();
        for base in &bases {
            assert_eq!(status(&client, base, &key).await, StatusCode::OK, "{base}");
            assert_eq!(status(&client, base, &key).await, StatusCode::OK, "{base}");
        }

        // Revoked on one instance (a different one each round)...
        let revoker = &bases[round % 3];
        let revoked = client
            .post(format!("{revoker}/v1/api-keys/{id}/revoke"))
            .bearer_auth(&owner)
            .json(&serde_json::json!({"reason": "leaked"}))
            .send()
            .await
            .unwrap();
        assert!(revoked.status().is_success(), "{}", revoked.status());
        let at = Instant::now();

        // ...and refused by every other within the bound.
        for base in bases.iter().filter(|b| *b != revoker) {
            loop {
                let answer = status(&client, base, &key).await;
                if answer == StatusCode::UNAUTHORIZED {
                    break;
                }
                assert_eq!(answer, StatusCode::OK);
                assert!(
                    at.elapsed() < WITHIN,
                    "{base} still served the revoked key after {:?}",
                    at.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert!(at.elapsed() < WITHIN, "took {:?}", at.elapsed());
    }
}
