//! The mixed workload and the after-checks shared by the PostgreSQL fault suites,
//! `connection_faults.rs` (backends terminated) and `server_restart.rs` (the server crashed and
//! restarted): a spine on a fresh database, callers that admit, complete and issue keys until
//! told to stop, and the checks that afterwards the counters equal the admitted runs, every
//! committed change has exactly one audit row and every acknowledged change is stored.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)] // each test file uses a part
#![allow(clippy::print_stdout)] // a skip's reason is part of the report

use account_engines::FaultInjector;
use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::*;
use account_spine::{
    Actor, DatabaseConfig, ErrorCode, FixedClock, Operation, Principal, RecordedEvents,
    RequestMeta, Spine, SpineError,
};
use account_testkit::fixtures::{Limits, TenantSeed, seed_tenant};
use account_testkit::{Backend, TestDb, backends, fresh_db};
use chrono::{TimeZone, Utc};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The spine's connections carry this name, so a fault only ever touches the spine's.
pub(crate) const APPLICATION: &str = "account-spine-faults";
/// No call may take longer than this, faults or not.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The PostgreSQL server, or `None` (after printing why, naming what `needs` it) when the
/// test cannot run.
pub(crate) fn postgres(needs: &str) -> Option<Backend> {
    let found = backends()
        .unwrap()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres { .. }));
    if found.is_none() {
        println!(
            "skipped: no PostgreSQL ({} is not set, or {} selects another backend); {needs}",
            account_testkit::PG_URL_VAR,
            account_testkit::BACKEND_VAR
        );
    }
    found
}

pub(crate) struct Env {
    pub(crate) db: TestDb,
    pub(crate) spine: Spine,
    /// What the spine connected with.
    pub(crate) spine_url: String,
    /// The server's admin database: where faults are made from (never faulted itself).
    pub(crate) admin: DatabaseConnection,
    pub(crate) events: Arc<RecordedEvents>,
    pub(crate) faults: Arc<FaultInjector>,
}

/// A spine on a fresh database of `backend` (PostgreSQL), its connections named
/// [`APPLICATION`], with 5 s to connect and to acquire.
pub(crate) async fn env(backend: &Backend) -> Env {
    env_with(backend, &[]).await
}

/// [`env`], the spine's sessions started with the server `settings` (name, value).
pub(crate) async fn env_with(backend: &Backend, settings: &[(&str, &str)]) -> Env {
    let Backend::Postgres { admin_url } = backend else {
        unreachable!("the fault suites run on PostgreSQL only")
    };
    let db = fresh_db(backend).await.unwrap();
    let mut spine_url = format!("{}?application_name={APPLICATION}", db.url());
    for (name, value) in settings {
        spine_url.push_str(&format!("&options[{name}]={value}"));
    }
    let mut config = DatabaseConfig::new(spine_url.clone());
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
        spine_url,
        admin,
        events,
        faults,
    }
}

pub(crate) fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The `n` column of the one row `sql` returns.
pub(crate) async fn number(conn: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> i64 {
    let row = conn
        .query_one_raw(statement(sql, values))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A tenant with limits no workload reaches and `owners` owners; the owners' principals.
pub(crate) async fn tenant(conn: &DatabaseConnection, owners: usize) -> (TenantId, Vec<UserId>) {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let limits = Limits {
        workers: 1_000,
        runs_per_day: 1_000_000,
        concurrent_runs: 1_000_000,
        tokens_per_month: 1_000_000_000,
        api_keys: 1_000_000,
    };
    let seed = TenantSeed::new("Faults", "enterprise", limits, now)
        .owners(owners)
        .tagged();
    let seeded = seed_tenant(conn, &seed).await;
    let users = seeded.users.into_iter().map(UserId::from_uuid).collect();
    (TenantId::from_uuid(seeded.id), users)
}

pub(crate) fn owner(tenant: TenantId, user: UserId) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User {
            user_id: user,
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    }
}

pub(crate) fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
        token_estimate: 0,
    }
}

fn completion() -> RunCompletion {
    RunCompletion {
        success: true,
        total_tokens: 5,
        ..RunCompletion::default()
    }
}

/// What one workload call returned.
#[derive(Debug)]
pub(crate) enum Call {
    Admitted(RunId),
    Completed(RunId),
    Issued(ApiKeyId),
    /// A typed error: its code and status.
    Failed(&'static str, u16, String),
}

/// One workload call and when it ran.
#[derive(Debug)]
pub(crate) struct Timed {
    pub(crate) call: Call,
    pub(crate) started: Instant,
    pub(crate) finished: Instant,
}

impl Timed {
    /// Whether the call was in flight at some moment of `from..=until`.
    pub(crate) fn overlaps(&self, from: Instant, until: Instant) -> bool {
        self.started <= until && self.finished >= from
    }
}

/// One workload caller: admits, completes what it admitted, issues keys, until `stop`.
/// Panics when a call takes longer than [`CALL_TIMEOUT`].
pub(crate) async fn caller(
    spine: Spine,
    principal: Principal,
    stop: Arc<AtomicBool>,
) -> Vec<Timed> {
    let mut calls = Vec::new();
    let mut running: Vec<RunId> = Vec::new();
    let mut turn = 0u64;
    while !stop.load(Ordering::SeqCst) {
        turn += 1;
        let started = Instant::now();
        let call = async {
            match turn % 3 {
                0 if !running.is_empty() => {
                    let run = running.remove(0);
                    spine
                        .complete_run(&principal, run, completion())
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
        calls.push(Timed {
            call,
            started,
            finished: Instant::now(),
        });
    }
    calls
}

pub(crate) fn failed(error: &SpineError) -> Call {
    Call::Failed(error.code(), error.http_status(), format!("{error:?}"))
}

/// Admits a run, completes it and issues a key, stopping at the first failure; each success
/// is pushed to `calls` (it is an acknowledged change the after-checks look for).
pub(crate) async fn each_kind_once(
    spine: &Spine,
    principal: &Principal,
    calls: &mut Vec<Call>,
) -> Result<(), SpineError> {
    let run = spine.admit_run(principal, admit()).await?;
    calls.push(Call::Admitted(run.id));
    spine.complete_run(principal, run.id, completion()).await?;
    calls.push(Call::Completed(run.id));
    let request = IssueKey {
        name: "after".into(),
        ..IssueKey::default()
    };
    let key = spine.issue_api_key(principal, request).await?;
    calls.push(Call::Issued(key.key.id));
    Ok(())
}

/// The database name of a PostgreSQL URL.
pub(crate) fn database_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// After the workload: the counters equal the admitted runs and their tokens, every committed
/// change has exactly one audit row (and no audit row lacks its change), and every change a
/// call acknowledged in `calls` is stored.
pub(crate) async fn assert_every_change_whole(
    conn: &DatabaseConnection,
    tenant: TenantId,
    calls: &[Call],
) {
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

    for call in calls {
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
}
