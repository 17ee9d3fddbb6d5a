//! Idempotency keys in host transactions, on each backend: fifty parallel retries of one
//! admission under one key admit one run and all answer the same; another request under the
//! key is refused (422); a retry while the first is in flight waits for it, and is refused
//! (409) once its wait is over; a failed or rolled-back write leaves no key; a key past its
//! keeping time is claimed anew and purged; the statements each costs.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::idempotency::{Claim, IdempotencySettings, IdempotentRequest, StoredResponse};
use account_spine::runs::AdmitRun;
use account_spine::types::{IdempotencyKey, TenantId};
use account_spine::{
    DatabaseConfig, ErrorCode, FixedClock, OperatorPrincipal, Principal, RequestMeta, Spine,
    SpineError, StatementCounter,
};
use account_testkit::{Backend, UrlDb, backends};
use chrono::{TimeDelta, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

/// A bootstrapped tenant, its first key as the principal, on a database of its own.
struct Env {
    backend: &'static str,
    spine: Spine,
    clock: Arc<FixedClock>,
    tenant: TenantId,
    principal: Principal,
    db: UrlDb,
}

impl Env {
    async fn second(&self) -> DatabaseConnection {
        self.db.raw().await.unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        let conn = self.second().await;
        let backend = conn.get_database_backend();
        let placeholder = match backend {
            DbBackend::Sqlite => "?",
            _ => "$1",
        };
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE tenant_id = {placeholder}");
        let statement =
            Statement::from_sql_and_values(backend, sql, [self.tenant.as_uuid().into()]);
        let row = conn.query_one_raw(statement).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

async fn env(backend: &Backend, settings: IdempotencySettings) -> Env {
    let db = UrlDb::new(backend, "account-idempotency").await.unwrap();
    let mut config = DatabaseConfig::new(db.url());
    // Every retry holds a connection while it waits for the first: room for all of them.
    config.max_connections = match backend {
        Backend::Sqlite => 4,
        Backend::Postgres { .. } => 64,
    };
    config.acquire_timeout = Duration::from_secs(60);
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
    ));
    let spine = Spine::connect(&config)
        .await
        .unwrap()
        .with_clock(clock.clone())
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap())
        .with_idempotency_settings(settings);
    let operator = OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    };
    let (created, key) = spine
        .bootstrap(&operator, "owner@example.com", "Acme")
        .await
        .unwrap();
    let principal = spine
        .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap();
    Env {
        backend: backend.name(),
        spine,
        clock,
        tenant: created.tenant.id,
        principal,
        db,
    }
}

fn admit(task: &str) -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: task.into(),
        input: None,
        token_estimate: 0,
    }
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

/// What a client gets for `POST /v1/runs` with `body` under `key`: the stored response
/// replayed, or the admission run in the claim's transaction and its response stored. The
/// flag says which.
async fn admit_once(
    spine: &Spine,
    principal: &Principal,
    key: &IdempotencyKey,
    body: &str,
) -> Result<(StoredResponse, bool), SpineError> {
    let mut txn = spine.begin_host_transaction().await?;
    let request = IdempotentRequest::new(key, "POST", "/v1/runs", body.as_bytes());
    match txn.claim_idempotency_key(principal, request).await {
        Ok(Claim::Replay(stored)) => {
            txn.rollback().await?;
            Ok((stored, true))
        }
        Ok(Claim::Fresh) => {
            let run = txn.execute(principal, admit(body)).await?;
            let response = StoredResponse {
                status: 201,
                body: format!("{run:?}").into_bytes(),
            };
            txn.store_idempotent_response(&response).await?;
            txn.commit().await?;
            Ok((response, false))
        }
        Err(error) => {
            txn.rollback().await?;
            Err(error)
        }
    }
}

#[tokio::test]
async fn fifty_parallel_retries_admit_one_run_and_all_answer_the_same() {
    for backend in backends().unwrap() {
        let env = env(&backend, IdempotencySettings::default()).await;
        let name = env.backend;
        let retry = key("8e03978e-40d5-43e8-bc93-6894a57f9324");
        let start = Arc::new(Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (spine, principal, retry, start) = (
                    env.spine.clone(),
                    env.principal.clone(),
                    retry.clone(),
                    start.clone(),
                );
                tokio::spawn(async move {
                    start.wait().await;
                    admit_once(&spine, &principal, &retry, "one plan").await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap().expect("every retry answers"));
        }
        let first = answers.iter().filter(|(_, replayed)| !replayed).count();
        assert_eq!(first, 1, "{name}: one retry ran the admission");
        let body = &answers[0].0;
        assert!(
            answers.iter().all(|(answer, _)| answer == body),
            "{name}: every retry answers the same"
        );
        assert_eq!(
            env.count("worker_runs").await,
            1,
            "{name}: one run admitted"
        );
        assert_eq!(env.count("idempotency_keys").await, 1, "{name}");
    }
}

#[tokio::test]
async fn another_request_under_a_key_is_refused_and_writes_nothing() {
    for backend in backends().unwrap() {
        let env = env(&backend, IdempotencySettings::default()).await;
        let name = env.backend;
        let used = key("k-1");
        admit_once(&env.spine, &env.principal, &used, "plan a")
            .await
            .unwrap();
        let error = admit_once(&env.spine, &env.principal, &used, "plan b")
            .await
            .unwrap_err();
        assert_eq!(error.code(), "idempotency_key_reused", "{name}");
        assert_eq!(error.http_status(), 422, "{name}");
        assert_eq!(env.count("worker_runs").await, 1, "{name}");

        // The same key of another credential is another key.
        let issue = IssueKey {
            name: "other".into(),
            ..IssueKey::default()
        };
        let other_key = env
            .spine
            .issue_api_key(&env.principal, issue)
            .await
            .unwrap();
        let other = env
            .spine
            .authenticate_api_key(other_key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        let (_, replayed) = admit_once(&env.spine, &other, &used, "plan b")
            .await
            .unwrap();
        assert!(!replayed, "{name}: another key's retry is its own");
        assert_eq!(env.count("worker_runs").await, 2, "{name}");
    }
}

#[tokio::test]
async fn a_retry_waits_for_the_first_and_is_refused_once_its_wait_is_over() {
    for backend in backends().unwrap() {
        let wait = IdempotencySettings::default().with_in_flight_wait(Duration::from_millis(300));
        let env = env(&backend, wait).await;
        let name = env.backend;
        let held = key("k-held");
        let request = IdempotentRequest::new(&held, "POST", "/v1/runs", b"plan");

        // The first request claims the key and is still running.
        let mut first = env.spine.begin_host_transaction().await.unwrap();
        let claimed = first
            .claim_idempotency_key(&env.principal, request)
            .await
            .unwrap();
        assert_eq!(claimed, Claim::Fresh, "{name}");
        let run = first.execute(&env.principal, admit("plan")).await.unwrap();

        let retry = {
            let (spine, principal, held) = (env.spine.clone(), env.principal.clone(), held.clone());
            tokio::spawn(async move { admit_once(&spine, &principal, &held, "plan").await })
        };
        tokio::time::sleep(Duration::from_millis(600)).await;
        match backend {
            Backend::Postgres { .. } => {
                // Past its wait, the retry is refused as in flight and wrote nothing.
                let error = retry.await.unwrap().unwrap_err();
                assert_eq!(error.code(), "idempotency_key_in_flight", "{name}");
                assert_eq!(error.http_status(), 409, "{name}");
                let response = StoredResponse {
                    status: 201,
                    body: format!("{run:?}").into_bytes(),
                };
                first.store_idempotent_response(&response).await.unwrap();
                first.commit().await.unwrap();
                let (replayed, was_replay) = admit_once(&env.spine, &env.principal, &held, "plan")
                    .await
                    .unwrap();
                assert!(was_replay, "{name}");
                assert_eq!(replayed, response, "{name}");
            }
            Backend::Sqlite => {
                // One writer at a time: the retry waits for the connection, then replays.
                assert!(
                    !retry.is_finished(),
                    "{name}: the retry waits for the first"
                );
                let response = StoredResponse {
                    status: 201,
                    body: format!("{run:?}").into_bytes(),
                };
                first.store_idempotent_response(&response).await.unwrap();
                first.commit().await.unwrap();
                let (replayed, was_replay) = retry.await.unwrap().unwrap();
                assert!(was_replay, "{name}");
                assert_eq!(replayed, response, "{name}");
            }
        }
        assert_eq!(env.count("worker_runs").await, 1, "{name}");
    }
}

#[tokio::test]
async fn a_failed_or_rolled_back_write_leaves_no_key_and_its_retry_runs_again() {
    for backend in backends().unwrap() {
        let env = env(&backend, IdempotencySettings::default()).await;
        let name = env.backend;
        let k = key("k-fails");
        let request = IdempotentRequest::new(&k, "POST", "/v1/runs", b"plan");

        // Refused (a worker id the engine refuses): the key is released at commit.
        let mut txn = env.spine.begin_host_transaction().await.unwrap();
        txn.claim_idempotency_key(&env.principal, request)
            .await
            .unwrap();
        let mut bad = admit("plan");
        bad.worker_id = "Not A Worker!".into();
        let refused = txn.execute(&env.principal, bad).await.unwrap_err();
        assert_eq!(refused.http_status() / 100, 4, "{name}: {refused}");
        txn.commit().await.unwrap();
        assert_eq!(env.count("idempotency_keys").await, 0, "{name}: released");

        // Rolled back: nothing stays either.
        let mut txn = env.spine.begin_host_transaction().await.unwrap();
        txn.claim_idempotency_key(&env.principal, request)
            .await
            .unwrap();
        txn.execute(&env.principal, admit("plan")).await.unwrap();
        txn.rollback().await.unwrap();
        assert_eq!(env.count("idempotency_keys").await, 0, "{name}");
        assert_eq!(env.count("worker_runs").await, 0, "{name}");

        // The retry runs as a first request.
        let (_, replayed) = admit_once(&env.spine, &env.principal, &k, "plan")
            .await
            .unwrap();
        assert!(!replayed, "{name}");
        assert_eq!(env.count("worker_runs").await, 1, "{name}");
    }
}

#[tokio::test]
async fn a_key_past_its_keeping_time_is_claimed_anew_and_purged() {
    for backend in backends().unwrap() {
        let env = env(&backend, IdempotencySettings::default()).await;
        let name = env.backend;
        let k = key("k-expires");
        admit_once(&env.spine, &env.principal, &k, "plan a")
            .await
            .unwrap();
        env.clock
            .advance(TimeDelta::hours(24) - TimeDelta::seconds(1));
        assert_eq!(env.spine.purge_expired_idempotency_keys().await.unwrap(), 0);
        let error = admit_once(&env.spine, &env.principal, &k, "plan b")
            .await
            .unwrap_err();
        assert_eq!(error.code(), "idempotency_key_reused", "{name}: kept 24 h");

        env.clock.advance(TimeDelta::seconds(1));
        let (_, replayed) = admit_once(&env.spine, &env.principal, &k, "plan b")
            .await
            .unwrap();
        assert!(!replayed, "{name}: an expired key is taken over");
        assert_eq!(env.count("worker_runs").await, 2, "{name}");

        env.clock.advance(TimeDelta::hours(24));
        assert_eq!(env.spine.purge_expired_idempotency_keys().await.unwrap(), 1);
        assert_eq!(env.count("idempotency_keys").await, 0, "{name}");
    }
}

#[tokio::test]
async fn a_key_costs_two_statements_on_sqlite_and_four_on_postgres() {
    for backend in backends().unwrap() {
        let env = env(&backend, IdempotencySettings::default()).await;
        let name = env.backend;
        let counter = Arc::new(StatementCounter::new());
        let spine = env.spine.clone().with_statement_counter(counter.clone());
        // Without a key, in a host transaction as the API runs it with one.
        let mut txn = spine.begin_host_transaction().await.unwrap();
        txn.execute(&env.principal, admit("plain")).await.unwrap();
        txn.commit().await.unwrap();
        let plain = counter.take();

        admit_once(&spine, &env.principal, &key("k-count"), "keyed")
            .await
            .unwrap();
        let keyed = counter.take();
        admit_once(&spine, &env.principal, &key("k-count"), "keyed")
            .await
            .unwrap();
        let replay = counter.take();
        let (extra, replay_cost) = match backend {
            // The claim's insert and the response's store; a replay's insert and read.
            Backend::Sqlite => (2, 2),
            // And the wait's bound, set and put back around the claim.
            Backend::Postgres { .. } => (4, 4),
        };
        assert_eq!(keyed, plain + extra, "{name}: plain {plain}, keyed {keyed}");
        assert_eq!(replay, replay_cost, "{name}");
    }
}
