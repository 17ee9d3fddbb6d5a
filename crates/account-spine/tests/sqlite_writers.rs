//! SQLite mode under write contention: concurrent writers on a database *file* (WAL, the
//! production settings of [`Spine::connect`]) all complete, and none sees `SQLITE_BUSY`. The
//! spine writes through a pool of one connection, so writers queue for it in this process,
//! in order: even with SQLite's busy handler off and no retries, 32 writers never meet a
//! locked database. (What the one writer buys is the tail latency under load, which
//! `cargo xtask bench --http` measures; in-process writers on a pool did not surface
//! `SQLITE_BUSY` here either.)
//!
//! SQLite-only by nature (PostgreSQL has no database-wide write lock); the PostgreSQL side
//! of concurrent admission is `runs::racing_admissions_never_exceed_the_concurrent_limit`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use account_engines::memory_pins::SavePin;
use account_spine::api_keys::ApiKeyPepper;
use account_spine::runs::AdmitRun;
use account_spine::types::{MembershipRole, PlanCode};
use account_spine::{
    Actor, DatabaseConfig, OperatorPrincipal, Principal, RequestMeta, RetryPolicy, Spine,
    SpineError,
};
use serde_json::json;

const WRITES_PER_WRITER: usize = 5;

struct File(std::path::PathBuf);

impl Drop for File {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

fn is_busy(error: &SpineError) -> bool {
    let text = format!("{error} {error:?}").to_ascii_lowercase();
    text.contains("busy") || text.contains("database is locked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_never_surface_sqlite_busy() {
    // The production defaults: a read pool of 16, a busy timeout of 10 s.
    let failures = contended_writes(16, RetryPolicy::DEFAULT, |_| {}).await;
    assert_no_failures(&failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_writers_queue_for_the_writer_not_in_sqlites_busy_handler() {
    // No busy timeout and no retries: any writer meeting the lock would fail at once.
    let failures = contended_writes(32, RetryPolicy::NEVER, |config| {
        config.sqlite_busy_timeout = std::time::Duration::ZERO;
    })
    .await;
    assert_no_failures(&failures);
}

fn assert_no_failures(failures: &[SpineError]) {
    let busy: Vec<String> = failures
        .iter()
        .filter(|e| is_busy(e))
        .map(ToString::to_string)
        .collect();
    assert!(busy.is_empty(), "SQLITE_BUSY surfaced: {busy:?}");
    assert!(failures.is_empty(), "every write completes: {failures:?}");
}

/// `writers` tasks writing [`WRITES_PER_WRITER`] times each on a fresh database file through
/// one spine connected with `configure`d settings, retrying by `retry`; what failed.
async fn contended_writes(
    writers: usize,
    retry: RetryPolicy,
    configure: impl FnOnce(&mut DatabaseConfig),
) -> Vec<SpineError> {
    let file = File(std::env::temp_dir().join(format!(
        "account-spine-writers-{}.db",
        uuid::Uuid::new_v4().simple()
    )));
    let mut config = DatabaseConfig::new(format!("sqlite://{}?mode=rwc", file.0.display()));
    configure(&mut config);
    let spine = Spine::connect(&config)
        .await
        .unwrap()
        .with_retry_policy(retry)
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
    account_spine::migrate(&config).await.unwrap();
    let operator = OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    };
    let (created, _) = spine
        .bootstrap(&operator, "owner@example.com", "Acme")
        .await
        .unwrap();
    // Enough headroom that no write is refused by a quota: only contention could fail one.
    spine
        .change_plan(&operator, created.tenant.id, PlanCode::enterprise())
        .await
        .unwrap();
    let owner = Principal {
        tenant_id: created.tenant.id,
        actor: Actor::User {
            user_id: created.owner.user_id,
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    };

    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let (spine, owner) = (spine.clone(), owner.clone());
        tasks.spawn(async move {
            let mut failures = Vec::new();
            for write in 0..WRITES_PER_WRITER {
                // Half the writers admit runs (tenant row lock, counters, run, usage, audit),
                // half upsert pins (tenant lock, pin, trail, audit): both are multi-statement
                // transactions that read before they write.
                let outcome = if writer % 2 == 0 {
                    let run = AdmitRun {
                        worker_id: "business-builder".into(),
                        task: format!("w{writer}-{write}"),
                        input: None,
                        token_estimate: 0,
                    };
                    spine.admit_run(&owner, run).await.map(|_| ())
                } else {
                    let pin = SavePin {
                        key: format!("agent:w{writer}"),
                        value: json!({"write": write}),
                        source: None,
                        ttl_seconds: None,
                    };
                    spine.upsert_pin(&owner, pin).await.map(|_| ())
                };
                if let Err(error) = outcome {
                    failures.push(error);
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        failures.extend(done.unwrap());
    }
    failures
}
