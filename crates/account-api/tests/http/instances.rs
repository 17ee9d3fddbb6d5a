//! Several `account-api` processes on one PostgreSQL database: what one instance changes, the
//! others' caches stop serving within a second (not after their TTL); a key's rate limit is
//! one allowance for all of them, not one per process.

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

/// Three `account-api` processes on one fresh PostgreSQL database, and its owner's key;
/// `None` without PostgreSQL.
struct Cluster {
    owner: String,
    bases: Vec<String>,
    _instances: Vec<Running>,
    _dir: tempfile::TempDir,
    _db: UrlDb,
}

impl Cluster {
    async fn start() -> Option<Self> {
        let backend = backends()
            .unwrap()
            .into_iter()
            .find(|b| matches!(b, Backend::Postgres { .. }))?;
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
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let instances = ports
            .iter()
            .map(|port| serve(db.url(), dir.path(), *port, &PEPPER, &[]))
            .collect();
        Some(Self {
            owner: owner_key.plaintext.expose().to_owned(),
            bases: ports
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect(),
            _instances: instances,
            _dir: dir,
            _db: db,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_is_refused_by_the_others_within_a_second() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let (owner, bases) = (&cluster.owner, &cluster.bases);
    let client = reqwest::Client::new();

    for round in 0..3 {
        // A key issued on the first instance, used on all three (each caches it).
        let issued: serde_json::Value = client
            .post(format!("{}/v1/api-keys", bases[0]))
            .bearer_auth(owner)
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
        for base in bases {
            assert_eq!(status(&client, base, &key).await, StatusCode::OK, "{base}");
            assert_eq!(status(&client, base, &key).await, StatusCode::OK, "{base}");
        }

        // Revoked on one instance (a different one each round)...
        let revoker = &bases[round % 3];
        let revoked = client
            .post(format!("{revoker}/v1/api-keys/{id}/revoke"))
            .bearer_auth(owner)
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

/// Load for the rate-limit test: long enough that the burst is not all of it.
const LOAD: Duration = Duration::from_secs(10);
const RPM: u64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the figures are part of the report
async fn a_keys_rate_limit_holds_across_three_instances_under_load() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let (owner, bases) = (&cluster.owner, &cluster.bases);
    let client = reqwest::Client::new();
    let issued: serde_json::Value = client
        .post(format!("{}/v1/api-keys", bases[0]))
        .bearer_auth(owner)
        .json(&serde_json::json!({"name": "limited", "permissions": ["read:*"], "rate_limit_rpm": RPM}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = issued["secret"].as_str().expect("issued").to_owned();

    // Four clients per instance, each sending as fast as it is answered.
    let started = Instant::now();
    let mut clients = Vec::new();
    for base in bases.iter().cycle().take(12) {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        clients.push(tokio::spawn(async move {
            let (mut admitted, mut refused, mut refusal) = (0_u64, 0_u64, None);
            while started.elapsed() < LOAD {
                let answer = client
                    .get(format!("{base}/v1/usage"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                match answer.status() {
                    StatusCode::OK => admitted += 1,
                    StatusCode::TOO_MANY_REQUESTS => {
                        refused += 1;
                        refusal.get_or_insert_with(|| answer.headers().clone());
                    }
                    other => panic!("{base}: {other}"),
                }
            }
            (admitted, refused, refusal)
        }));
    }
    let (mut admitted, mut refused, mut refusal) = (0, 0, None);
    for task in clients {
        let (a, r, headers) = task.await.unwrap();
        admitted += a;
        refused += r;
        refusal = refusal.or(headers);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // What one exact limiter allows over the load (the burst and the refill), +10 %.
    let allowed = RPM as f64 + elapsed * RPM as f64 / 60.0;
    eprintln!(
        "{admitted} admitted, {refused} refused in {elapsed:.1} s; one limiter: {allowed:.0}"
    );
    assert!(
        (admitted as f64) <= allowed * 1.1,
        "{admitted} admitted in {elapsed:.1} s; one limiter allows {allowed:.0}"
    );
    assert!(admitted >= RPM, "the burst is usable: {admitted}");
    assert!(refused > 0);
    let headers = refusal.expect("a refusal");
    let seconds: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=1).contains(&seconds),
        "one request every 0.5 s: {seconds}"
    );
    assert_eq!(headers["ratelimit-policy"], "\"key\";q=120;w=60");
    assert_eq!(
        headers["ratelimit"].to_str().unwrap(),
        format!("\"key\";r=0;t={seconds}")
    );

    // Verification on another instance reports the allowance spent everywhere.
    let verdict: serde_json::Value = client
        .post(format!("{}/v1/keys/verify", bases[2]))
        .bearer_auth(owner)
        .json(&serde_json::json!({"key": key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["rate_limit"]["limit"], RPM, "{verdict}");
    assert!(
        verdict["rate_limit"]["remaining"].as_u64().unwrap() <= 6,
        "{verdict}"
    );
    assert!(
        verdict["rate_limit"]["reset_seconds"].as_u64().unwrap() >= 50,
        "{verdict}"
    );
}
