//! Several `account-api` processes on one PostgreSQL database: what one instance changes, the
//! others' caches stop serving within a second (not after their TTL); a key's rate limit is
//! one allowance for all of them, not one per process; a write on one is read on another when
//! the client sends back the `Consistency-Token` it was given (with a replica); a plan
//! changed through one instance holds admission on the others at their next request.

use crate::process::{Running, free_port, serve};
use crate::replicas::{admit, reads};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine};
use account_testkit::replica::pause_replay;
use account_testkit::{Backend, TestDb, backends, fresh_db, pg_replica};
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
    /// A platform operator key.
    operator: String,
    /// The owner's tenant.
    tenant: account_spine::types::TenantId,
    bases: Vec<String>,
    /// The database's copy on the replica the instances read from, if they do.
    replica: Option<String>,
    _instances: Vec<Running>,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

impl Cluster {
    async fn start() -> Option<Self> {
        Self::start_with(None).await
    }

    /// With `replica_admin`: every instance reads from that replica's copy of the database,
    /// with a lag bound (60 s) a paused replay stays within.
    async fn start_with(replica_admin: Option<&str>) -> Option<Self> {
        let backend = backends()
            .unwrap()
            .into_iter()
            .find(|b| matches!(b, Backend::Postgres { .. }))?;
        let db = fresh_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap()
            .with_pepper(ApiKeyPepper::from_bytes(&PEPPER).unwrap());
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (created, owner_key) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        let operator_key = spine
            .create_operator_key(&operator, "ops")
            .await
            .unwrap()
            .plaintext
            .expose()
            .to_owned();
        let replica = match replica_admin {
            Some(admin) => Some(db.caught_up_replica(admin).await.unwrap()),
            None => None,
        };
        let flags: Vec<&str> = match &replica {
            Some(url) => vec!["--replica-url", url, "--replica-max-lag-ms", "60000"],
            None => Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let instances = ports
            .iter()
            .map(|port| serve(db.url(), dir.path(), *port, &PEPPER, &flags))
            .collect();
        Some(Self {
            owner: owner_key.plaintext.expose().to_owned(),
            operator: operator_key,
            tenant: created.tenant.id,
            bases: ports
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect(),
            replica,
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

/// `GET /v1/runs/{id}` on `base`, sending `token` as `Consistency-Token` if given: the status
/// and the token the response carries.
async fn read_run(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    run: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut request = client.get(format!("{base}/v1/runs/{run}")).bearer_auth(key);
    if let Some(token) = token {
        request = request.header("consistency-token", token);
    }
    let response = request.send().await.unwrap();
    let token = response
        .headers()
        .get("consistency-token")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_is_read_on_another_with_the_consistency_token() {
    let Some(replica_admin) = pg_replica().unwrap() else {
        return;
    };
    let Some(cluster) = Cluster::start_with(Some(&replica_admin)).await else {
        return;
    };
    let (owner, bases) = (&cluster.owner, &cluster.bases);
    let replica = cluster.replica.as_deref().expect("started with a replica");
    let client = reqwest::Client::new();

    // Every instance serves reads from the replica once it has polled it.
    let run = admit(&client, &bases[0], owner).await;
    for base in bases {
        let deadline = Instant::now() + Duration::from_secs(10);
        while reads(&client, base, "replica").await == 0 {
            assert!(
                Instant::now() < deadline,
                "{base}: no read reached the replica"
            );
            let (status, _) = read_run(&client, base, owner, &run, None).await;
            assert!(matches!(status, StatusCode::OK | StatusCode::NOT_FOUND));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let paused = pause_replay(replica).await.unwrap();
    // Written on the first instance: its response carries the write's position.
    let response = client
        .post(format!("{}/v1/runs", bases[0]))
        .bearer_auth(owner)
        .json(&serde_json::json!({"worker_id": "business-builder", "task": "consistent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.headers()["consistency-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let written: serde_json::Value = response.json().await.unwrap();
    let run = written["id"].as_str().unwrap().to_owned();

    // Without the token another instance reads the paused replica, which lacks the run: what
    // a load balancer would do to read-your-writes kept per process.
    let (status, _) = read_run(&client, &bases[1], owner, &run, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // With it, both other instances find it, and hand the token on.
    for base in &bases[1..] {
        let (status, echoed) = read_run(&client, base, owner, &run, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{base}");
        assert_eq!(echoed.as_deref(), Some(token.as_str()), "{base}");
    }
    drop(paused);

    // A token that is not one is refused, naming the header.
    let refused = client
        .get(format!("{}/v1/runs/{run}", bases[2]))
        .bearer_auth(owner)
        .header("consistency-token", "0/0")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_header", "{body}");
    assert!(body["fields"]["Consistency-Token"].is_string(), "{body}");
}

/// The status of one admission on `base`, and its error code when refused.
async fn try_admit(client: &reqwest::Client, base: &str, key: &str) -> (StatusCode, String) {
    let answer = client
        .post(format!("{base}/v1/runs"))
        .bearer_auth(key)
        .json(&serde_json::json!({"worker_id": "business-builder", "task": "plans"}))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_changed_through_one_instance_holds_admission_on_the_others_at_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let (owner, op, bases) = (&cluster.owner, &cluster.operator, &cluster.bases);
    let client = reqwest::Client::new();
    let mut limits =
        account_spine::types::PlanQuotas::built_in(&account_spine::types::PlanCode::pro()).unwrap();
    limits.max_concurrent_runs = 1;
    let created = client
        .post(format!("{}/v1/platform/plans", bases[0]))
        .bearer_auth(op)
        .json(&serde_json::json!({"code": "solo", "name": "Solo", "limits": limits}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    // One run on the free plan (5 at once), through the second instance.
    assert_eq!(
        try_admit(&client, &bases[1], owner).await.0,
        StatusCode::CREATED
    );
    let tenant_id = cluster.tenant;
    let plan = |code: &'static str| {
        let client = client.clone();
        let url = format!("{}/v1/platform/tenants/{tenant_id}/plan", bases[0]);
        async move {
            let answer = client
                .put(url)
                .bearer_auth(op)
                .json(&serde_json::json!({"plan": code}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{code}");
        }
    };

    // Moved to `solo` through the first instance: the very next admission on the third is
    // refused, and the second already reports the plan.
    plan("solo").await;
    assert_eq!(
        try_admit(&client, &bases[2], owner).await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            "quota_concurrent_runs".to_owned()
        )
    );
    let had: serde_json::Value = client
        .get(format!("{}/v1/entitlements", bases[1]))
        .bearer_auth(owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (had["plan"].as_str(), had["plan_version"].as_i64()),
        (Some("solo"), Some(1))
    );
    // And back: the next admission on the second is admitted.
    plan("pro").await;
    assert_eq!(
        try_admit(&client, &bases[1], owner).await.0,
        StatusCode::CREATED
    );
}
