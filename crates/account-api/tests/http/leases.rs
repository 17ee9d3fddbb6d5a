//! Run leases over HTTP: `POST /v1/runs/{id}/heartbeat` renews a run's lease; a worker process
//! killed mid-run (SIGKILL) leaves its run to the reaper, which expires it once its lease
//! lapsed, audited once, and frees its slot; and the binary runs the reaper by default.
//!
//! The kill test runs three processes on one database (a SQLite file, or a PostgreSQL
//! database): the real `account-api` binary serving HTTP with its own reaper off, a worker
//! (this test binary run again as [`worker_process`]) that admits a run over HTTP and
//! heartbeats it, and this test, which kills the worker, then reaps with a spine of its own on
//! a clock it sets past the lease (no waiting for a minute to pass).

use crate::process::{Running, free_port, serve};
use crate::support::start;
use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::types::{MembershipRole, PlanCode, RunId, TenantId, UserId};
use account_spine::{
    Actor, DatabaseConfig, DomainEvent, FixedClock, Principal, RecordedEvents, RequestMeta, Spine,
};
use account_testkit::fixtures::{Limits, TenantSeed, count_rows, seed_tenant};
use account_testkit::{Backend, UrlDb, backends};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PEPPER: [u8; 32] = [5; 32];

fn timestamp(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .to_utc()
}

#[tokio::test]
async fn a_heartbeat_renews_the_lease_of_a_run_of_the_callers_tenant() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let admit = json!({"worker_id": "business-builder", "task": "plan"});
        let admitted = server.call(Method::POST, "/v1/runs", Some(admit)).await;
        assert_eq!(admitted.status, StatusCode::CREATED, "{}", admitted.body);
        let id = admitted.body["id"].as_str().unwrap().to_owned();
        assert_eq!(admitted.body["status"], "queued");
        assert_eq!(admitted.body["started_at"], Value::Null);
        let leased = timestamp(&admitted.body["lease_expires_at"]);

        let path = format!("/v1/runs/{id}/heartbeat");
        let beat = server.call(Method::POST, &path, None).await;
        assert_eq!(beat.status, StatusCode::OK, "{}", beat.body);
        assert_eq!(beat.body["status"], "running");
        assert!(timestamp(&beat.body["started_at"]) >= timestamp(&admitted.body["created_at"]));
        assert!(timestamp(&beat.body["lease_expires_at"]) >= leased);
        let read = server
            .call(Method::GET, &format!("/v1/runs/{id}"), None)
            .await;
        assert_eq!(read.body["lease_expires_at"], beat.body["lease_expires_at"]);

        // Another tenant's key meets a run that is not there; so does an unknown id.
        let foreign = server
            .call_as(&server.other_key.clone(), Method::POST, &path, None)
            .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
        assert_eq!(foreign.body["error"], "run_not_found");
        let unknown = format!("/v1/runs/{}/heartbeat", RunId::new());
        let unknown = server.call(Method::POST, &unknown, None).await;
        assert_eq!(unknown.body["error"], "run_not_found");

        // A finished run's worker is told to stop.
        let done = json!({"success": true});
        let complete = format!("/v1/runs/{id}/complete");
        let completed = server.call(Method::POST, &complete, Some(done)).await;
        assert_eq!(completed.status, StatusCode::OK, "{}", completed.body);
        let late = server.call(Method::POST, &path, None).await;
        assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
        assert_eq!(late.body["error"], "run_already_finished");
    }
}

/// The worker of [`a_worker_killed_mid_run_loses_its_run_to_the_reaper_once`]: this test
/// binary run again with `ACCOUNT_LEASE_WORKER_BASE` and `ACCOUNT_LEASE_WORKER_KEY` set. It
/// admits one run over HTTP, prints `run=<id>`, then heartbeats it every 50 ms (printing
/// `beat` after each) until it is killed. In an ordinary test run, without those variables,
/// it does nothing.
#[test]
fn worker_process() {
    let (Ok(base), Ok(key)) = (
        std::env::var("ACCOUNT_LEASE_WORKER_BASE"),
        std::env::var("ACCOUNT_LEASE_WORKER_KEY"),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let admitted: Value = client
            .post(format!("{base}/v1/runs"))
            .bearer_auth(&key)
            .json(&json!({"worker_id": "business-builder", "task": "long job"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = admitted["id"].as_str().unwrap().to_owned();
        println!("run={id}");
        loop {
            let beat = client
                .post(format!("{base}/v1/runs/{id}/heartbeat"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(beat.status(), StatusCode::OK);
            println!("beat");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// A tenant allowing one run at once, its owner, and an owner key, issued by `spine`.
async fn one_slot_tenant(db: &UrlDb, spine: &Spine) -> (TenantId, Principal, String) {
    let q = account_spine::types::PlanQuotas::built_in(&PlanCode::free()).unwrap();
    let limits = Limits {
        workers: q.max_workers,
        runs_per_day: q.max_runs_per_day,
        concurrent_runs: 1,
        tokens_per_month: q.max_tokens_per_month,
        api_keys: q.max_api_keys,
    };
    let seed = TenantSeed::new("Killed", "free", limits, Utc::now()).user("owner", Some("owner"));
    let seeded = seed_tenant(&db.raw().await.unwrap(), &seed).await;
    let tenant = TenantId::from_uuid(seeded.id);
    let owner = Principal {
        tenant_id: tenant,
        actor: Actor::User {
            user_id: UserId::from_uuid(seeded.users[0]),
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    };
    let key = IssueKey {
        name: "worker".into(),
        ..IssueKey::default()
    };
    let issued = spine.issue_api_key(&owner, key).await.unwrap();
    let plaintext = issued.plaintext.expose().to_owned();
    (tenant, owner, plaintext)
}

async fn post(
    client: &reqwest::Client,
    url: String,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_loses_its_run_to_the_reaper_once() {
    for backend in backends().unwrap() {
        killed_worker(&backend).await;
    }
}

async fn killed_worker(backend: &Backend) {
    let name = backend.name();
    let db = UrlDb::new(backend, "account-api-leases").await.unwrap();
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let events = Arc::new(RecordedEvents::default());
    let reaper = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&PEPPER).unwrap())
        .with_clock(clock.clone())
        .with_events(events.clone());
    let (tenant, _owner, key) = one_slot_tenant(&db, &reaper).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = serve(db.url(), dir.path(), port, &PEPPER, &["--no-reaper"]);
    let base = format!("http://127.0.0.1:{port}");

    // The worker admits its run and heartbeats it. It runs a copy of this very executable
    // (`/proc/self/exe` is the running file even if a rebuild replaced it on disk since).
    let exe = dir.path().join("worker");
    std::fs::copy("/proc/self/exe", &exe).unwrap();
    let mut worker = Running(
        std::process::Command::new(&exe)
            .args(["leases::worker_process", "--exact", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("ACCOUNT_LEASE_WORKER_BASE", &base)
            .env("ACCOUNT_LEASE_WORKER_KEY", &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = worker.0.stdout.take().unwrap();
    let (run, beats) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut run = None;
        let mut beats = 0;
        while beats < 3 {
            let line = lines.next().expect("the worker runs").unwrap();
            // libtest's own `test ... ` may precede it on the line.
            if let Some((_, id)) = line.split_once("run=") {
                run = Some(id.to_owned());
            } else if line == "beat" {
                beats += 1;
            }
        }
        (run.expect("the worker printed its run"), beats)
    })
    .await
    .unwrap();
    assert_eq!(beats, 3);

    // Mid-run, the worker is killed: no completion, no last heartbeat.
    worker.0.kill().unwrap(); // SIGKILL
    let status = worker.0.wait().unwrap();
    assert!(!status.success(), "{name}: killed, {status}");
    let client = reqwest::Client::new();
    let read: Value = client
        .get(format!("{base}/v1/runs/{run}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "running", "{name}: {read}");
    let lease = timestamp(&read["lease_expires_at"]);

    // The dead worker's run holds the tenant's one slot.
    let admit = json!({"worker_id": "business-builder", "task": "next"});
    let (refused, body) = post(&client, format!("{base}/v1/runs"), &key, admit.clone()).await;
    assert_eq!(refused, StatusCode::TOO_MANY_REQUESTS, "{name}: {body}");
    assert_eq!(body["error"], "quota_concurrent_runs");

    // Before its lease lapses the reaper leaves it; after, it expires it, once.
    clock.set(lease);
    assert!(
        reaper
            .reap_expired_runs(100)
            .await
            .unwrap()
            .expired
            .is_empty()
    );
    clock.set(lease + TimeDelta::seconds(1));
    let reaped = reaper.reap_expired_runs(100).await.unwrap();
    assert_eq!(reaped.expired.len(), 1, "{name}: {reaped:?}");
    assert_eq!(reaped.expired[0].to_string(), run);
    assert!(
        reaper
            .reap_expired_runs(100)
            .await
            .unwrap()
            .expired
            .is_empty()
    );

    let conn = db.raw().await.unwrap();
    let expiry =
        format!("action = 'run.lease_expired' AND resource_id = '{run}' AND actor_type = 'system'");
    assert_eq!(count_rows(&conn, "audit_log", &expiry).await, 1, "{name}");
    let crashed = "status = 'crashed' AND error = 'lease expired' AND success = FALSE";
    assert_eq!(count_rows(&conn, "worker_runs", crashed).await, 1, "{name}");
    let finished: Vec<_> = events
        .all()
        .into_iter()
        .filter(|e| matches!(e, DomainEvent::RunCompleted { tenant_id, success: false, .. } if *tenant_id == tenant))
        .collect();
    assert_eq!(finished.len(), 1, "{name}: {finished:?}");

    // The server sees it expired, and the admission it refused now succeeds.
    let read: Value = client
        .get(format!("{base}/v1/runs/{run}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "crashed", "{name}: {read}");
    let (admitted, body) = post(&client, format!("{base}/v1/runs"), &key, admit).await;
    assert_eq!(admitted, StatusCode::CREATED, "{name}: {body}");
    // A heartbeat from the dead worker, had it come back, would be told to stop.
    let (late, body) = post(
        &client,
        format!("{base}/v1/runs/{run}/heartbeat"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(
        (late, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("run_already_finished"))
    );
}

/// The binary reaps by default; here with a one-second lease and a pass every second, so a
/// run nobody heartbeats is expired within a few seconds of real time.
#[tokio::test]
async fn the_server_reaps_lapsed_runs_by_default() {
    let backend = Backend::Sqlite;
    let db = UrlDb::new(&backend, "account-api-reaper").await.unwrap();
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&PEPPER).unwrap());
    let (_tenant, _owner, key) = one_slot_tenant(&db, &spine).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let flags = ["--run-lease-secs", "1", "--reaper-interval-secs", "1"];
    let _server = serve(db.url(), dir.path(), port, &PEPPER, &flags);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let admit = json!({"worker_id": "business-builder", "task": "abandoned"});
    let (admitted, run) = post(&client, format!("{base}/v1/runs"), &key, admit).await;
    assert_eq!(admitted, StatusCode::CREATED, "{run}");
    let lease = timestamp(&run["lease_expires_at"]) - timestamp(&run["created_at"]);
    assert_eq!(lease, TimeDelta::seconds(1));
    let id = run["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read: Value = client
            .get(format!("{base}/v1/runs/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if read["status"] == "crashed" {
            assert_eq!(read["lease_expires_at"], run["lease_expires_at"]);
            break;
        }
        let log = std::fs::read_to_string(dir.path().join(format!("server-{port}.log")))
            .unwrap_or_default();
        assert!(Instant::now() < deadline, "not reaped: {read}\n{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
