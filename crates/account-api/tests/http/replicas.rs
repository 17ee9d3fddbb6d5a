//! The `account-api` binary with `--replica-url` (PostgreSQL): reads are served by the
//! replica (counted in `/metrics`), and a run read right after the same key admitted it is
//! found even while the replica's replay is paused (the replica lacks it: seen answering 404
//! with the read-your-writes check disabled). Skipped without a replica
//! (`ACCOUNT_TEST_PG_REPLICA_URL`, see `account_testkit::pg_replica`).

use crate::process::{free_port, serve};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine};
use account_testkit::replica::pause_replay;
use account_testkit::{backends, fresh_db, pg_replica};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const PEPPER: [u8; 32] = [5; 32];

/// `account_reads_total{node="..."}` in the server's `/metrics`.
pub(crate) async fn reads(client: &reqwest::Client, base: &str, node: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("account_reads_total{{node=\"{node}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

pub(crate) async fn admit(client: &reqwest::Client, base: &str, key: &str) -> String {
    let run: serde_json::Value = client
        .post(format!("{base}/v1/runs"))
        .bearer_auth(key)
        .json(&serde_json::json!({"worker_id": "business-builder", "task": "replicated"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    run["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{run}"))
        .to_owned()
}

async fn get_run(client: &reqwest::Client, base: &str, key: &str, id: &str) -> StatusCode {
    client
        .get(format!("{base}/v1/runs/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_from_its_replica_and_a_key_reads_its_own_writes() {
    let Some(replica_admin) = pg_replica().unwrap() else {
        return;
    };
    let Some(backend) = backends()
        .unwrap()
        .into_iter()
        .find(|b| b.name() == "postgres")
    else {
        return;
    };
    let db = fresh_db(&backend).await.unwrap();
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&PEPPER).unwrap());
    let operator = OperatorPrincipal {
        operator_id: "test".into(),
        request: RequestMeta::default(),
    };
    let (_, key) = spine
        .bootstrap(&operator, "owner@example.com", "Acme")
        .await
        .unwrap();
    let key = key.plaintext.expose().to_owned();
    let replica_url = db.caught_up_replica(&replica_admin).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let flags = [
        "--replica-url",
        &replica_url,
        "--replica-max-lag-ms",
        "5000",
    ];
    let _server = serve(db.url(), dir.path(), port, &PEPPER, &flags);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // Served by the replica once it is polled and has the run.
    let run = admit(&client, &base, &key).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while reads(&client, &base, "replica").await == 0 {
        assert!(Instant::now() < deadline, "no read reached the replica");
        assert_eq!(get_run(&client, &base, &key, &run).await, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Replay paused: the key's own new run is read from the primary at once.
    let paused = pause_replay(&replica_url).await.unwrap();
    let before = reads(&client, &base, "primary").await;
    // Four: with the first, the plan's five concurrent runs.
    for _ in 0..4 {
        let run = admit(&client, &base, &key).await;
        assert_eq!(get_run(&client, &base, &key, &run).await, StatusCode::OK);
    }
    assert_eq!(reads(&client, &base, "primary").await - before, 4);
    assert_eq!(reads(&client, &base, "fallback").await, 0);
    drop(paused);
}
