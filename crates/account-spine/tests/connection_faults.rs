//! Server-side faults on PostgreSQL (only there: SQLite has no server to lose).
//!
//! 1. A mixed workload (run admissions, completions, key issuances) runs while a second,
//!    admin connection terminates the spine's backends with `pg_terminate_backend`, mostly in
//!    the middle of a transaction. Every call must return in time, without a panic, either
//!    `Ok` or an error the API answers with 503; the spine must serve the next calls once the
//!    killing stops; and afterwards the counters equal the admitted runs and every committed
//!    change has exactly one audit row (and every acknowledged change is there).
//! 2. A lock-order deadlock provoked against a use case: PostgreSQL aborts the use case's
//!    transaction (40P01), the spine retries the whole use case, and it succeeds once, with
//!    one audit row and one event.
//!
//! The workload and the after-checks live in `fault_workload/`, shared with `server_restart.rs`.
//! Skipped, with the reason printed, when no PostgreSQL is configured. Workload length:
//! `ACCOUNT_FAULT_SECONDS` (default 4). Measured on the 2-core build host: about 4.5 s for the
//! kill test at the default (about 250 calls, 150 terminations) and 1.5 s for the deadlock test.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout)] // timings (and a skip's reason) are part of the report

mod fault_workload;

use account_spine::types::*;
use account_spine::{DomainEvent, ErrorCode, Operation};
use fault_workload::{
    APPLICATION, CALL_TIMEOUT, Call, assert_every_change_whole, caller, database_name,
    each_kind_once, env, number, owner, statement, tenant,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SKIPPED_BECAUSE: &str = "connection faults need a server to terminate backends on";

fn workload() -> Duration {
    let seconds = std::env::var("ACCOUNT_FAULT_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    Duration::from_secs(seconds)
}

/// Terminates one of the spine's backends every few milliseconds until `stop`, preferring
/// one inside a transaction; returns how many it terminated.
async fn killer(admin: DatabaseConnection, database: String, stop: Arc<AtomicBool>) -> u64 {
    let kills = AtomicU64::new(0);
    while !stop.load(Ordering::SeqCst) {
        let killed = number(
            &admin,
            "SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) AS done \
             FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 \
             AND pid <> pg_backend_pid() \
             ORDER BY (xact_start IS NULL), random() LIMIT 1) AS k WHERE k.done",
            vec![database.clone().into(), APPLICATION.into()],
        )
        .await;
        kills.fetch_add(u64::try_from(killed).unwrap(), Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    kills.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_fail_calls_with_503_and_leave_every_change_whole() {
    let Some(backend) = fault_workload::postgres(SKIPPED_BECAUSE) else {
        return;
    };
    let env = env(&backend).await;
    let conn = env.db.conn();
    let (tenant, owners) = tenant(conn, 1).await;
    let principal = owner(tenant, owners[0]);
    let started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let killing = tokio::spawn(killer(
        env.admin.clone(),
        database_name(env.db.url()),
        stop.clone(),
    ));
    let callers: Vec<_> = (0..6)
        .map(|_| tokio::spawn(caller(env.spine.clone(), principal.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(workload()).await;
    stop.store(true, Ordering::SeqCst);
    let kills = killing.await.unwrap();
    let mut calls = Vec::new();
    for caller in callers {
        let timed = caller.await.expect("a caller panicked");
        calls.extend(timed.into_iter().map(|t| t.call));
    }

    // Every failure is one the API answers with 503 (the client may retry).
    let mut failures: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for call in &calls {
        if let Call::Failed(code, status, debug) = call {
            *failures.entry((code, *status)).or_default() += 1;
            if *status != 503 {
                unexpected.push(debug.clone());
            }
        }
    }
    println!(
        "{} calls, {kills} backends terminated, failures by (code, status): {failures:?}",
        calls.len()
    );
    assert!(
        unexpected.is_empty(),
        "{} failures are not 503: {:#?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    assert!(kills > 0, "the killer never terminated a backend");
    assert!(
        !failures.is_empty(),
        "{kills} terminations and no call failed: the faults never reached a call"
    );

    // The spine recovers: with the killing over, each kind of call succeeds at once.
    each_kind_once(&env.spine, &principal, &mut calls)
        .await
        .unwrap();

    assert_every_change_whole(conn, tenant, &calls).await;
    println!("connection kills: {:.2?} in all", started.elapsed());
}

/// Waits until one of the spine's backends waits on a lock.
async fn until_the_spine_waits_on_a_lock(admin: &DatabaseConnection, database: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = number(
            admin,
            "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = $1 \
             AND application_name = $2 AND wait_event_type = 'Lock'",
            vec![database.into(), APPLICATION.into()],
        )
        .await;
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the use case never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn deadlocks(admin: &DatabaseConnection, database: &str) -> i64 {
    number(
        admin,
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = $1",
        vec![database.into()],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadlocked_use_case_is_retried_to_one_success() {
    let Some(backend) = fault_workload::postgres(SKIPPED_BECAUSE) else {
        return;
    };
    let env = env(&backend).await;
    let conn = env.db.conn();
    let database = database_name(env.db.url());

    // A calm run first: how many statements one attempt of the use case takes.
    let (calm, calm_owners) = tenant(conn, 2).await;
    env.faults.disarm();
    env.spine
        .change_role(
            &owner(calm, calm_owners[0]),
            calm_owners[1],
            MembershipRole::Admin,
        )
        .await
        .unwrap();
    let one_attempt = env.faults.seen();

    let (tenant, owners) = tenant(conn, 2).await;
    let (actor, target) = (owners[0], owners[1]);
    let deadlocks_before = deadlocks(&env.admin, &database).await;
    let events_before = env.events.all().len();

    // Another session holds the target's membership row, so the use case blocks there while
    // it holds the tenant row lock; then that session asks for the tenant row: a deadlock.
    // Its own deadlock check is set late, so PostgreSQL aborts the use case's transaction.
    let other = conn.begin().await.unwrap();
    other
        .execute_unprepared("SET LOCAL deadlock_timeout = '30s'")
        .await
        .unwrap();
    other
        .execute_raw(statement(
            "UPDATE tenant_memberships SET updated_at = updated_at \
             WHERE tenant_id = $1 AND user_id = $2",
            vec![tenant.as_uuid().into(), target.as_uuid().into()],
        ))
        .await
        .unwrap();
    env.faults.disarm();
    let demotion = {
        let spine = env.spine.clone();
        tokio::spawn(async move {
            spine
                .change_role(&owner(tenant, actor), target, MembershipRole::Admin)
                .await
        })
    };
    until_the_spine_waits_on_a_lock(&env.admin, &database).await;
    other
        .execute_raw(statement(
            "SELECT id FROM tenants WHERE id = $1 FOR UPDATE",
            vec![tenant.as_uuid().into()],
        ))
        .await
        .unwrap();
    other.rollback().await.unwrap();
    let outcome = tokio::time::timeout(CALL_TIMEOUT, demotion)
        .await
        .expect("the retried use case hung")
        .unwrap();
    let change = outcome.unwrap_or_else(|error| {
        panic!(
            "the deadlocked use case was not retried to success: {} ({}) {error:?}",
            error.code(),
            error.http_status()
        )
    });
    assert_eq!(change.membership.role, MembershipRole::Admin);

    // It was retried: more statements than one attempt, and the server counted a deadlock
    // (statistics reach pg_stat_database within a second or so).
    assert!(
        env.faults.seen() > one_attempt,
        "{} statements, one attempt takes {one_attempt}: no retry happened",
        env.faults.seen()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while deadlocks(&env.admin, &database).await == deadlocks_before {
        assert!(Instant::now() < deadline, "the server reported no deadlock");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly one effect: one role change, one audit row, one event.
    let t = || vec![Value::from(tenant.as_uuid())];
    let owners_left = number(
        conn,
        "SELECT COUNT(*) AS n FROM tenant_memberships WHERE tenant_id = $1 AND role = 'owner'",
        t(),
    )
    .await;
    let audited = number(
        conn,
        "SELECT COUNT(*) AS n FROM audit_log WHERE tenant_id = $1 AND action = $2",
        vec![
            tenant.as_uuid().into(),
            Operation::AccountChangeRole.audit_action().unwrap().into(),
        ],
    )
    .await;
    let events: Vec<_> = env.events.all()[events_before..]
        .iter()
        .filter(|e| matches!(e, DomainEvent::MemberRoleChanged { tenant_id, .. } if *tenant_id == tenant))
        .cloned()
        .collect();
    assert_eq!(
        (owners_left, audited, events.len()),
        (1, 1, 1),
        "owners left, audit rows, events: {events:?}"
    );
}
