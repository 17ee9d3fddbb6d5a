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
//! Skipped, with the reason printed, when no PostgreSQL is configured. Workload length:
//! `ACCOUNT_FAULT_SECONDS` (default 4). Measured on the 2-core build host: about 4.5 s for the
//! kill test at the default (about 250 calls, 150 terminations) and 1.5 s for the deadlock test.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout)] // timings (and a skip's reason) are part of the report

use account_engines::FaultInjector;
use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::*;
use account_spine::{
    Actor, DatabaseConfig, DomainEvent, ErrorCode, FixedClock, Operation, Principal,
    RecordedEvents, RequestMeta, Spine, SpineError,
};
use account_testkit::{Backend, TestDb, backends, fresh_db};
use chrono::{TimeZone, Utc};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The spine's connections carry this name, so the killer never touches anything else.
const APPLICATION: &str = "account-spine-faults";
/// No call may take longer than this, faults or not.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn workload() -> Duration {
    let seconds = std::env::var("ACCOUNT_FAULT_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    Duration::from_secs(seconds)
}

/// The PostgreSQL server, or `None` (after printing why) when the test cannot run.
fn postgres() -> Option<Backend> {
    let found = backends()
        .unwrap()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres { .. }));
    if found.is_none() {
        println!(
            "skipped: no PostgreSQL ({} is not set, or {} selects another backend); \
             connection faults need a server to terminate backends on",
            account_testkit::PG_URL_VAR,
            account_testkit::BACKEND_VAR
        );
    }
    found
}

struct Env {
    db: TestDb,
    spine: Spine,
    /// The server's admin database: where the killer runs (never killed).
    admin: DatabaseConnection,
    events: Arc<RecordedEvents>,
    faults: Arc<FaultInjector>,
}

async fn env(backend: &Backend) -> Env {
    let Backend::Postgres { admin_url } = backend else {
        unreachable!("connection faults run on PostgreSQL only")
    };
    let db = fresh_db(backend).await.unwrap();
    let mut config = DatabaseConfig::new(format!("{}?application_name={APPLICATION}", db.url()));
    config.max_connections = 8;
    config.connect_timeout = Duration::from_secs(5);
    config.acquire_timeout = Duration::from_secs(5);
    let events = Arc::new(RecordedEvents::default());
    let faults = Arc::new(FaultInjector::new());
    let spine = Spine::connect(&config)
        .await
        .unwrap()
        .with_clock(Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
        )))
        .with_events(events.clone())
        .with_pepper(ApiKeyPepper::from_bytes(&[5u8; 32]).unwrap())
        .with_fault_injector(faults.clone());
    let admin = Database::connect(admin_url.as_str()).await.unwrap();
    Env {
        db,
        spine,
        admin,
        events,
        faults,
    }
}

async fn insert(conn: &DatabaseConnection, table: &str, values: Vec<(&str, Value)>) {
    let mut query = Query::insert();
    query
        .into_table(Alias::new(table))
        .columns(values.iter().map(|(c, _)| Alias::new(*c)));
    query
        .values(values.into_iter().map(|(_, v)| Expr::val(v)))
        .unwrap();
    conn.execute(&query).await.unwrap();
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

async fn number(conn: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> i64 {
    let row = conn
        .query_one_raw(statement(sql, values))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A tenant with limits no workload reaches and `owners` owners; the owners' principals.
async fn tenant(conn: &DatabaseConnection, owners: usize) -> (TenantId, Vec<UserId>) {
    let tenant = TenantId::new();
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let tag = tenant.as_uuid().simple().to_string();
    insert(
        conn,
        "tenants",
        vec![
            ("id", tenant.as_uuid().into()),
            ("name", "Faults".into()),
            ("slug", format!("faults-{tag}").into()),
            ("plan", "enterprise".into()),
            ("max_workers", 1_000.into()),
            ("max_runs_per_day", 1_000_000.into()),
            ("max_concurrent_runs", 1_000_000.into()),
            ("max_tokens_per_month", 1_000_000_000_i64.into()),
            ("max_api_keys", 1_000_000.into()),
            ("status", "active".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .await;
    let mut users = Vec::new();
    for i in 0..owners {
        let user = UserId::new();
        insert(
            conn,
            "users",
            vec![
                ("id", user.as_uuid().into()),
                ("email", format!("owner{i}-{tag}@example.com").into()),
                ("status", "active".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        insert(
            conn,
            "tenant_memberships",
            vec![
                ("id", uuid::Uuid::now_v7().into()),
                ("tenant_id", tenant.as_uuid().into()),
                ("user_id", user.as_uuid().into()),
                ("role", "owner".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        users.push(user);
    }
    (tenant, users)
}

fn owner(tenant: TenantId, user: UserId) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User {
            user_id: user,
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    }
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
    }
}

/// What one workload call returned.
#[derive(Debug)]
enum Call {
    Admitted(RunId),
    Completed(RunId),
    Issued(ApiKeyId),
    /// A typed error: its code and status.
    Failed(&'static str, u16, String),
}

/// One workload caller: admits, completes what it admitted, issues keys, until `stop`.
async fn caller(spine: Spine, principal: Principal, stop: Arc<AtomicBool>) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut running: Vec<RunId> = Vec::new();
    let mut turn = 0u64;
    while !stop.load(Ordering::SeqCst) {
        turn += 1;
        let call = async {
            match turn % 3 {
                0 if !running.is_empty() => {
                    let run = running.remove(0);
                    let completion = RunCompletion {
                        success: true,
                        total_tokens: 5,
                        ..RunCompletion::default()
                    };
                    spine
                        .complete_run(&principal, run, completion)
                        .await
                        .map(|_| Call::Completed(run))
                }
                2 => {
                    let request = IssueKey {
                        name: format!("k{turn}"),
                        ..IssueKey::default()
                    };
                    spine
                        .issue_api_key(&principal, request)
                        .await
                        .map(|issued| Call::Issued(issued.key.id))
                }
                _ => spine
                    .admit_run(&principal, admit())
                    .await
                    .map(|run| Call::Admitted(run.id)),
            }
        };
        let outcome = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| panic!("a call hung for more than {CALL_TIMEOUT:?}"));
        let call = match outcome {
            Ok(call) => call,
            Err(error) => failed(&error),
        };
        if let Call::Admitted(run) = call {
            running.push(run);
        }
        calls.push(call);
    }
    calls
}

fn failed(error: &SpineError) -> Call {
    Call::Failed(error.code(), error.http_status(), format!("{error:?}"))
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

fn database_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_fail_calls_with_503_and_leave_every_change_whole() {
    let Some(backend) = postgres() else {
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
        calls.extend(caller.await.expect("a caller panicked"));
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
    let run = env.spine.admit_run(&principal, admit()).await.unwrap();
    env.spine
        .complete_run(
            &principal,
            run.id,
            RunCompletion {
                success: true,
                total_tokens: 5,
                ..RunCompletion::default()
            },
        )
        .await
        .unwrap();
    let key = env
        .spine
        .issue_api_key(
            &principal,
            IssueKey {
                name: "after".into(),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap();
    calls.push(Call::Admitted(run.id));
    calls.push(Call::Completed(run.id));
    calls.push(Call::Issued(key.key.id));

    // Counters equal the admitted runs and their tokens.
    let t = || vec![Value::from(tenant.as_uuid())];
    let runs = number(
        conn,
        "SELECT COUNT(*) AS n FROM worker_runs WHERE tenant_id = $1",
        t(),
    )
    .await;
    let runs_today = number(
        conn,
        "SELECT CAST(runs_today AS BIGINT) AS n FROM tenants WHERE id = $1",
        t(),
    )
    .await;
    let runs_this_month = number(
        conn,
        "SELECT CAST(runs_this_month AS BIGINT) AS n FROM tenants WHERE id = $1",
        t(),
    )
    .await;
    let tokens = number(
        conn,
        "SELECT tokens_this_month AS n FROM tenants WHERE id = $1",
        t(),
    )
    .await;
    let run_tokens = number(
        conn,
        "SELECT CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS n FROM worker_runs \
         WHERE tenant_id = $1",
        t(),
    )
    .await;
    assert_eq!(
        (runs_today, runs_this_month, tokens),
        (runs, runs, run_tokens),
        "runs_today, runs_this_month, tokens_this_month against the runs"
    );

    // Every committed change has exactly one audit row, and no audit row lacks its change.
    for (action, table, filter) in [
        (Operation::RunsAdmit, "worker_runs", "TRUE"),
        (
            Operation::RunsComplete,
            "worker_runs",
            "r.status = 'completed'",
        ),
        (Operation::ApiKeysIssue, "api_keys", "TRUE"),
    ] {
        let action = action.audit_action().unwrap();
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {table} r WHERE r.tenant_id = $1 AND {filter} AND \
             (SELECT COUNT(*) FROM audit_log a WHERE a.tenant_id = $1 AND a.action = $2 \
              AND a.resource_id = CAST(r.id AS TEXT)) <> 1"
        );
        let unaudited = number(conn, &sql, vec![tenant.as_uuid().into(), action.into()]).await;
        let changes = number(
            conn,
            &format!("SELECT COUNT(*) AS n FROM {table} r WHERE r.tenant_id = $1 AND {filter}"),
            t(),
        )
        .await;
        let audited = number(
            conn,
            "SELECT COUNT(*) AS n FROM audit_log WHERE tenant_id = $1 AND action = $2",
            vec![tenant.as_uuid().into(), action.into()],
        )
        .await;
        assert_eq!(
            (unaudited, audited),
            (0, changes),
            "{action}: changes without exactly one audit row, and audit rows against {changes} \
             changes"
        );
    }

    // Every acknowledged change is there.
    for call in &calls {
        let (sql, id) = match call {
            Call::Admitted(run) => (
                "SELECT COUNT(*) AS n FROM worker_runs WHERE id = $1",
                run.as_uuid(),
            ),
            Call::Completed(run) => (
                "SELECT COUNT(*) AS n FROM worker_runs WHERE id = $1 AND status = 'completed'",
                run.as_uuid(),
            ),
            Call::Issued(key) => (
                "SELECT COUNT(*) AS n FROM api_keys WHERE id = $1",
                key.as_uuid(),
            ),
            Call::Failed(..) => continue,
        };
        assert_eq!(
            number(conn, sql, vec![id.into()]).await,
            1,
            "{call:?} is not stored"
        );
    }
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
    let Some(backend) = postgres() else {
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
