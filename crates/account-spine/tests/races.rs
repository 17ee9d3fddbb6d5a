// Over 600 lines: ten races share one harness (barrier, pool, tenants, tallies) a split would copy.
//! Races through the spine, on each backend: many callers start at once (a barrier releases
//! them together) against one tenant, and every round must end exactly as a serial execution
//! would — never more admitted than the limit, one pending invitation, one membership per
//! accept, no onboarding regression, one applied lifecycle transition, an owner left.
//!
//! Rounds: `ACCOUNT_RACE_ROUNDS` (default 5, the CI variant; `ACCOUNT_RACE_ROUNDS=30` is the
//! long variant documented in README). Each round races [`CALLERS`] callers on a fresh tenant.
//! Measured on the loaded 2-core build host, both backends, default rounds: the binary takes
//! about 100 s (two tests at a time); per race and backend 1–14 s, except the tokens race
//! (600 calls a round) at about 40 s. The long variant scales linearly (about 6x; not timed).
//!
//! The PostgreSQL pool is large ([`PG_POOL`] connections, opened before the first round) so
//! that a hundred transactions are in flight at once and the other callers queue behind them:
//! a check-then-act admission admitted 109 of 200 against a limit of 10 here. SQLite has one
//! writer at a time; there the test proves that writers queue (IMMEDIATE transactions, busy
//! timeout) instead of failing or over-admitting.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout)] // timings (and a skip's reason) are part of the report

use account_engines::invitations::Invitee;
use account_engines::lifecycle::LifecycleAction;
use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::runs::{AdmitRun, RunCompletion, RunSnapshot};
use account_spine::types::*;
use account_spine::{
    Actor, DatabaseConfig, ErrorCode, FixedClock, Operation, OperatorPrincipal, Principal,
    RequestMeta, Spine, SpineError,
};
use account_testkit::fixtures::{self, TenantSeed, seed_tenant};
use account_testkit::{Backend, UrlDb, backends};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Barrier;

/// Callers per quota race.
const CALLERS: usize = 200;
/// The limit every quota race runs against.
const LIMIT: i32 = 10;
/// Connections of the spine's pool on PostgreSQL (the server allows 400).
const PG_POOL: u32 = 100;
/// Connections of the spine's pool on SQLite (one writer at a time anyway).
const SQLITE_POOL: u32 = 16;
/// A limit no race reaches.
const UNLIMITED: i32 = 1_000_000;

/// Rounds per race: `ACCOUNT_RACE_ROUNDS`, default 5.
fn rounds() -> usize {
    std::env::var("ACCOUNT_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(5)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------------------
// The database, the spine on it, and plain SQL for seeding and checking.

struct Env {
    backend: &'static str,
    spine: Spine,
    /// A second pool on the same database: seeding and checks (never the spine's pool).
    conn: DatabaseConnection,
    /// Held so the database outlives the pools on it.
    _db: UrlDb,
}

/// A migrated database and a spine on it with production settings and a race-sized pool. On
/// SQLite a file (WAL), so connections are real, separate connections.
async fn env(backend: &Backend) -> Env {
    let db = UrlDb::new(backend, "account-races").await.unwrap();
    let pool = match backend {
        Backend::Sqlite => SQLITE_POOL,
        Backend::Postgres { .. } => PG_POOL,
    };
    let mut config = DatabaseConfig::new(db.url());
    config.max_connections = pool;
    // Two hundred callers queue for a connection behind transactions that each wait on one
    // row lock: give the queue time instead of failing the race on the acquire timeout.
    config.acquire_timeout = std::time::Duration::from_secs(60);
    let spine = Spine::connect(&config)
        .await
        .unwrap()
        .with_clock(Arc::new(FixedClock::new(now())))
        .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap());
    // Open the whole pool now, so the first round races on warm connections too.
    let warm: Vec<_> = (0..pool)
        .map(|_| {
            let spine = spine.clone();
            tokio::spawn(async move { spine.check_database().await })
        })
        .collect();
    for task in warm {
        task.await.unwrap().unwrap();
    }
    let conn = db.raw().await.unwrap();
    Env {
        backend: backend.name(),
        spine,
        conn,
        _db: db,
    }
}

/// `sql` with `$1`, `$2`... placeholders, for the connection's backend (SQLite numbers them
/// `?1`, `?2`...).
fn statement(conn: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Statement {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// One number from `sql` (column `n`).
async fn number(conn: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    let row = conn
        .query_one_raw(statement(conn, sql, values))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// One text from `sql` (column `t`).
async fn text(conn: &DatabaseConnection, sql: &str, values: Vec<Value>) -> String {
    let row = conn
        .query_one_raw(statement(conn, sql, values))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<String>("", "t").unwrap()
}

fn id(tenant: TenantId) -> Value {
    tenant.as_uuid().into()
}

/// A tenant's limits for one race.
#[derive(Clone, Copy)]
struct Limits {
    workers: i32,
    runs_per_day: i32,
    concurrent_runs: i32,
    tokens_per_month: i64,
    api_keys: i32,
}

impl Limits {
    fn open() -> Self {
        Self {
            workers: UNLIMITED,
            runs_per_day: UNLIMITED,
            concurrent_runs: UNLIMITED,
            tokens_per_month: i64::from(UNLIMITED),
            api_keys: UNLIMITED,
        }
    }
}

/// A fresh tenant with these limits, and `owners` owners (users with unique emails).
async fn tenant(env: &Env, limits: Limits, owners: usize) -> (TenantId, Vec<UserId>) {
    let limits = fixtures::Limits {
        workers: limits.workers,
        runs_per_day: limits.runs_per_day,
        concurrent_runs: limits.concurrent_runs,
        tokens_per_month: limits.tokens_per_month,
        api_keys: limits.api_keys,
    };
    let seed = TenantSeed::new("Race", "enterprise", limits, now())
        .owners(owners)
        .tagged();
    let seeded = seed_tenant(&env.conn, &seed).await;
    let users = seeded.users.into_iter().map(UserId::from_uuid).collect();
    (TenantId::from_uuid(seeded.id), users)
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

fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    }
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
        token_estimate: 0,
    }
}

fn audit_action(operation: Operation) -> &'static str {
    operation.audit_action().unwrap()
}

/// Audit rows of `tenant` with `action`.
async fn audit_rows(env: &Env, tenant: TenantId, action: &str) -> i64 {
    number(
        &env.conn,
        "SELECT COUNT(*) AS n FROM audit_log WHERE tenant_id = $1 AND action = $2",
        vec![id(tenant), action.into()],
    )
    .await
}

// ---------------------------------------------------------------------------------------
// The race itself.

/// Starts every future at once (a barrier holds them until all are spawned and waiting) on
/// the multi-threaded runtime, and returns their results in order. A panic fails the test.
async fn race<T, Fut>(calls: Vec<Fut>) -> Vec<T>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(calls.len()));
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|call| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("a racing call panicked"));
    }
    results
}

/// How many calls succeeded, and every error code with its count.
fn tally<T>(results: &[Result<T, SpineError>]) -> (usize, BTreeMap<&'static str, usize>) {
    let mut codes = BTreeMap::new();
    let mut ok = 0;
    for result in results {
        match result {
            Ok(_) => ok += 1,
            Err(error) => *codes.entry(error.code()).or_default() += 1,
        }
    }
    (ok, codes)
}

/// Asserts that exactly `admitted` calls succeeded and every other one was refused with
/// `refusal`.
fn assert_admitted<T>(
    results: &[Result<T, SpineError>],
    admitted: usize,
    refusal: &str,
    context: &str,
) {
    assert_refused_with(results, admitted, &[refusal], context);
}

/// Asserts that exactly `admitted` calls succeeded and every other one was refused with one
/// of `refusals`.
fn assert_refused_with<T>(
    results: &[Result<T, SpineError>],
    admitted: usize,
    refusals: &[&str],
    context: &str,
) {
    let (ok, codes) = tally(results);
    assert!(
        ok == admitted && codes.keys().all(|code| refusals.contains(code)),
        "{context}: {ok} admitted (expected {admitted}), refusals {codes:?} (expected only \
         {refusals:?})"
    );
}

/// [`CALLERS`] run admissions as `principal`, raced; their results in order.
async fn admission_burst(env: &Env, principal: &Principal) -> Vec<Result<RunSnapshot, SpineError>> {
    admissions_of(env, principal, |_| admit()).await
}

/// [`CALLERS`] run admissions as `principal`, the i-th asking for `request(i)`, raced.
async fn admissions_of(
    env: &Env,
    principal: &Principal,
    request: impl Fn(usize) -> AdmitRun,
) -> Vec<Result<RunSnapshot, SpineError>> {
    let calls = (0..CALLERS)
        .map(|i| {
            let (spine, principal, admit) = (env.spine.clone(), principal.clone(), request(i));
            async move { spine.admit_run(&principal, admit).await }
        })
        .collect();
    race(calls).await
}

/// Races [`CALLERS`] run admissions as `principal` and asserts that exactly [`LIMIT`] get
/// through, every other one refused with `refusal`; returns the round's context for the
/// checks that follow.
async fn race_admissions(env: &Env, principal: &Principal, refusal: &str, round: usize) -> String {
    let results = admission_burst(env, principal).await;
    let context = format!("{} round {round}", env.backend);
    assert_admitted(&results, LIMIT as usize, refusal, &context);
    context
}

/// Runs `round` [`rounds`] times on every backend, timing each backend.
async fn on_every_backend<F, Fut>(name: &str, mut round: F)
where
    F: FnMut(Arc<Env>, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in backends().unwrap() {
        let env = Arc::new(env(&backend).await);
        let started = Instant::now();
        for i in 0..rounds() {
            round(env.clone(), i).await;
        }
        println!(
            "{name} on {}: {} rounds in {:.2?}",
            env.backend,
            rounds(),
            started.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Quotas: exactly the limit is admitted, every round.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_run_starts_admit_exactly_the_daily_limit() {
    on_every_backend("daily runs", |env, round| async move {
        let limits = Limits {
            runs_per_day: LIMIT,
            ..Limits::open()
        };
        let (tenant, owners) = tenant(&env, limits, 1).await;
        let principal = owner(tenant, owners[0]);
        let context = race_admissions(&env, &principal, "quota_runs_per_day", round).await;
        let runs = number(
            &env.conn,
            "SELECT COUNT(*) AS n FROM worker_runs WHERE tenant_id = $1",
            vec![id(tenant)],
        )
        .await;
        let counter = number(
            &env.conn,
            "SELECT CAST(runs_today AS BIGINT) AS n FROM tenants WHERE id = $1",
            vec![id(tenant)],
        )
        .await;
        let audited = audit_rows(&env, tenant, audit_action(Operation::RunsAdmit)).await;
        assert_eq!(
            (runs, counter, audited),
            (i64::from(LIMIT), i64::from(LIMIT), i64::from(LIMIT)),
            "{context}: runs, runs_today and audit rows"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_run_starts_admit_exactly_the_concurrent_limit() {
    on_every_backend("concurrent runs", |env, round| async move {
        let limits = Limits {
            concurrent_runs: LIMIT,
            ..Limits::open()
        };
        let (tenant, owners) = tenant(&env, limits, 1).await;
        let principal = owner(tenant, owners[0]);
        let context = race_admissions(&env, &principal, "quota_concurrent_runs", round).await;
        let active = number(
            &env.conn,
            "SELECT COUNT(*) AS n FROM worker_runs WHERE tenant_id = $1 \
             AND status IN ('queued', 'running')",
            vec![id(tenant)],
        )
        .await;
        assert_eq!(active, i64::from(LIMIT), "{context}: active runs");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_run_starts_of_one_key_admit_exactly_its_concurrent_limit() {
    on_every_backend("key concurrent runs", |env, round| async move {
        let (tenant, owners) = tenant(&env, Limits::open(), 1).await;
        let issued = env
            .spine
            .issue_api_key(
                &owner(tenant, owners[0]),
                IssueKey {
                    name: "racer".into(),
                    max_concurrent_runs: Some(LIMIT),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        // The principal the host builds from the presented key, as in production.
        let principal = env
            .spine
            .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        let context = race_admissions(&env, &principal, "quota_key_concurrent_runs", round).await;
        let by_key = number(
            &env.conn,
            "SELECT COUNT(*) AS n FROM worker_runs WHERE tenant_id = $1 AND api_key_id = $2",
            vec![id(tenant), issued.key.id.as_uuid().into()],
        )
        .await;
        assert_eq!(by_key, i64::from(LIMIT), "{context}: the key's runs");
    })
    .await;
}

/// Runs that declare no estimate reserve nothing: their tokens are known only at completion.
/// What a race can break is the counter: every completion's tokens must land (the original
/// added them with a read-modify-write), and once the month is used up no admission gets
/// through. (Declared estimates are raced in the next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_completions_lose_no_tokens_and_close_the_month() {
    const TOKENS_PER_RUN: i64 = 7;
    on_every_backend("tokens per month", |env, round| async move {
        // The month's budget: what LIMIT runs use.
        let limits = Limits {
            tokens_per_month: i64::from(LIMIT) * TOKENS_PER_RUN,
            ..Limits::open()
        };
        let (tenant, owners) = tenant(&env, limits, 1).await;
        let principal = owner(tenant, owners[0]);
        let context = format!("{} round {round}", env.backend);
        let runs: Vec<_> = admission_burst(&env, &principal)
            .await
            .into_iter()
            .map(|admitted| admitted.unwrap().id)
            .collect();
        let calls = runs
            .iter()
            .map(|&run| {
                let (spine, principal) = (env.spine.clone(), principal.clone());
                async move {
                    let completion = RunCompletion {
                        success: true,
                        total_tokens: TOKENS_PER_RUN,
                        ..RunCompletion::default()
                    };
                    spine.complete_run(&principal, run, completion).await
                }
            })
            .collect();
        let completed = race(calls).await;
        assert_admitted(
            &completed,
            CALLERS,
            "none",
            &format!("{context}: completions"),
        );
        let counter = number(
            &env.conn,
            "SELECT tokens_this_month AS n FROM tenants WHERE id = $1",
            vec![id(tenant)],
        )
        .await;
        let recorded = number(
            &env.conn,
            "SELECT CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS n FROM worker_runs \
             WHERE tenant_id = $1",
            vec![id(tenant)],
        )
        .await;
        let expected = CALLERS as i64 * TOKENS_PER_RUN;
        assert_eq!(
            (counter, recorded),
            (expected, expected),
            "{context}: tokens_this_month and the runs' tokens"
        );
        // The month is used up: a burst of starts gets nothing through.
        let refused = admission_burst(&env, &principal).await;
        assert_admitted(&refused, 0, "quota_tokens_per_month", &context);
    })
    .await;
}

/// Runs that declare their tokens reserve them at admission: raced, exactly the runs whose
/// estimates fit in the month are admitted, so together they can never take it past its
/// quota; completion releases each reservation and charges what the run used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_token_reservations_admit_exactly_what_fits_the_month() {
    const ESTIMATE: i64 = 1_000;
    on_every_backend("token reservations", |env, round| async move {
        let limits = Limits {
            tokens_per_month: i64::from(LIMIT) * ESTIMATE,
            ..Limits::open()
        };
        let (tenant, owners) = tenant(&env, limits, 1).await;
        let principal = owner(tenant, owners[0]);
        let context = format!("{} round {round}", env.backend);
        let estimate = |_| AdmitRun {
            token_estimate: ESTIMATE,
            ..admit()
        };
        let results = admissions_of(&env, &principal, estimate).await;
        assert_admitted(&results, LIMIT as usize, "quota_tokens_per_month", &context);
        let reserved = || {
            number(
                &env.conn,
                "SELECT tokens_reserved AS n FROM tenants WHERE id = $1",
                vec![id(tenant)],
            )
        };
        assert_eq!(reserved().await, i64::from(LIMIT) * ESTIMATE, "{context}");
        // Each run used half its estimate: settling releases the rest.
        let calls = results
            .into_iter()
            .flatten()
            .map(|run| {
                let (spine, principal) = (env.spine.clone(), principal.clone());
                async move {
                    let completion = RunCompletion {
                        success: true,
                        total_tokens: ESTIMATE / 2,
                        ..RunCompletion::default()
                    };
                    spine.complete_run(&principal, run.id, completion).await
                }
            })
            .collect();
        assert_admitted(&race(calls).await, LIMIT as usize, "none", &context);
        let used = number(
            &env.conn,
            "SELECT tokens_this_month AS n FROM tenants WHERE id = $1",
            vec![id(tenant)],
        )
        .await;
        assert_eq!(
            (reserved().await, used),
            (0, i64::from(LIMIT) * ESTIMATE / 2),
            "{context}: nothing reserved, half the month used"
        );
    })
    .await;
}

/// Each admission asks for a worker of its own: exactly `max_workers` of them get one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_new_workers_admit_exactly_the_workers_limit() {
    on_every_backend("workers", |env, round| async move {
        let limits = Limits {
            workers: LIMIT,
            ..Limits::open()
        };
        let (tenant, owners) = tenant(&env, limits, 1).await;
        let principal = owner(tenant, owners[0]);
        let context = format!("{} round {round}", env.backend);
        let own_worker = |i| AdmitRun {
            worker_id: format!("worker-{i}"),
            ..admit()
        };
        let results = admissions_of(&env, &principal, own_worker).await;
        assert_admitted(&results, LIMIT as usize, "quota_workers", &context);
        let busy = number(
            &env.conn,
            "SELECT COUNT(DISTINCT worker_id) AS n FROM worker_runs WHERE tenant_id = $1 \
             AND status IN ('queued', 'running')",
            vec![id(tenant)],
        )
        .await;
        let counter = number(
            &env.conn,
            "SELECT CAST(active_workers AS BIGINT) AS n FROM tenants WHERE id = $1",
            vec![id(tenant)],
        )
        .await;
        assert_eq!(
            (busy, counter),
            (i64::from(LIMIT), i64::from(LIMIT)),
            "{context}"
        );
        // A busy worker still takes runs.
        let busy_worker = results.iter().flatten().next().unwrap().worker_id.clone();
        let again = AdmitRun {
            worker_id: busy_worker,
            ..admit()
        };
        env.spine.admit_run(&principal, again).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_key_issuance_stops_at_the_plan_limit() {
    on_every_backend("api keys", |env, round| async move {
        let limits = Limits {
            api_keys: LIMIT,
            ..Limits::open()
        };
        let (tenant, owners) = tenant(&env, limits, 1).await;
        let principal = owner(tenant, owners[0]);
        // One key exists already: the race is for the last LIMIT - 1 slots.
        env.spine
            .issue_api_key(
                &principal,
                IssueKey {
                    name: "existing".into(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let calls = (0..CALLERS)
            .map(|i| {
                let (spine, principal) = (env.spine.clone(), principal.clone());
                async move {
                    let request = IssueKey {
                        name: format!("racer-{i}"),
                        ..IssueKey::default()
                    };
                    spine.issue_api_key(&principal, request).await
                }
            })
            .collect();
        let results = race(calls).await;
        let context = format!("{} round {round}", env.backend);
        assert_admitted(
            &results,
            LIMIT as usize - 1,
            "api_key_quota_exceeded",
            &context,
        );
        let keys = number(
            &env.conn,
            "SELECT COUNT(*) AS n FROM api_keys WHERE tenant_id = $1 AND status = 'active'",
            vec![id(tenant)],
        )
        .await;
        let audited = audit_rows(&env, tenant, audit_action(Operation::ApiKeysIssue)).await;
        assert_eq!(
            (keys, audited),
            (i64::from(LIMIT), i64::from(LIMIT)),
            "{context}: active keys and their audit rows"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// State changes: one winner, and a state a serial order could have produced.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_invitations_to_one_address_leave_one_pending() {
    on_every_backend("invitations", |env, round| async move {
        let (tenant, owners) = tenant(&env, Limits::open(), 1).await;
        let principal = owner(tenant, owners[0]);
        // The same address, spelt three ways.
        let spellings = ["dana@example.com", "Dana@Example.com", " DANA@EXAMPLE.COM "];
        let calls = (0..CALLERS)
            .map(|i| {
                let (spine, principal) = (env.spine.clone(), principal.clone());
                let email = spellings[i % spellings.len()];
                async move {
                    spine
                        .invite_user(&principal, email, MembershipRole::Member)
                        .await
                }
            })
            .collect();
        let results = race(calls).await;
        let context = format!("{} round {round}", env.backend);
        assert_admitted(&results, 1, "invitation_pending", &context);
        let pending = number(
            &env.conn,
            "SELECT COUNT(*) AS n FROM invitations WHERE tenant_id = $1 AND status = 'pending'",
            vec![id(tenant)],
        )
        .await;
        let audited = audit_rows(&env, tenant, audit_action(Operation::AccountInviteUser)).await;
        assert_eq!((pending, audited), (1, 1), "{context}: pending invitations");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_racing_double_accept_creates_one_membership() {
    const ACCEPTS: usize = 8;
    on_every_backend("double accept", |env, round| async move {
        let (tenant, owners) = tenant(&env, Limits::open(), 1).await;
        let email = format!("erin-{}@example.com", tenant.as_uuid().simple());
        let issued = env
            .spine
            .invite_user(&owner(tenant, owners[0]), &email, MembershipRole::Member)
            .await
            .unwrap();
        let token = issued.token.expose().to_owned();
        let calls = (0..ACCEPTS)
            .map(|_| {
                let (spine, token) = (env.spine.clone(), token.clone());
                let invitation = issued.invitation.id;
                async move {
                    let invitee = Invitee {
                        external_user_id: None,
                        name: None,
                    };
                    spine
                        .accept_invitation(
                            tenant,
                            invitation,
                            &token,
                            invitee,
                            RequestMeta::default(),
                        )
                        .await
                }
            })
            .collect();
        let results = race(calls).await;
        let context = format!("{} round {round}", env.backend);
        // The losers see the invitation accepted, or (having read it while still pending)
        // the membership the winner created: both are the serial answers.
        assert_refused_with(
            &results,
            1,
            &["invitation_accepted", "already_member"],
            &context,
        );
        let users = number(
            &env.conn,
            "SELECT COUNT(*) AS n FROM users WHERE email = $1",
            vec![email.clone().into()],
        )
        .await;
        let memberships = number(
            &env.conn,
            "SELECT COUNT(*) AS n FROM tenant_memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.tenant_id = $1 AND u.email = $2",
            vec![id(tenant), email.clone().into()],
        )
        .await;
        let audited = audit_rows(
            &env,
            tenant,
            audit_action(Operation::AccountAcceptInvitation),
        )
        .await;
        assert_eq!(
            (users, memberships, audited),
            (1, 1, 1),
            "{context}: users, memberships and audit rows"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_onboarding_advances_never_regress() {
    const ADVANCES: usize = 30;
    let targets = [
        OnboardingState::IdentityVerified,
        OnboardingState::ApiKeyCreated,
        OnboardingState::SdkConnected,
    ];
    on_every_backend("onboarding", |env, round| async move {
        let (tenant, owners) = tenant(&env, Limits::open(), 1).await;
        let principal = owner(tenant, owners[0]);
        let state_sql = "SELECT CAST(onboarding_state AS BIGINT) AS n FROM tenants WHERE id = $1";
        // A watcher reads the state throughout the race: it must never go down.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (env, done) = (env.clone(), done.clone());
            tokio::spawn(async move {
                let mut seen = vec![number(&env.conn, state_sql, vec![id(tenant)]).await];
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    seen.push(number(&env.conn, state_sql, vec![id(tenant)]).await);
                }
                seen
            })
        };
        let calls = (0..ADVANCES)
            .map(|i| {
                let (spine, principal) = (env.spine.clone(), principal.clone());
                let target = targets[i % targets.len()];
                async move { (target, spine.advance_onboarding(&principal, target).await) }
            })
            .collect();
        let results = race(calls).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = watcher.await.unwrap();
        let context = format!("{} round {round}", env.backend);
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "{context}: the state went down: {seen:?}"
        );
        let mut applied = Vec::new();
        for (target, result) in &results {
            match result {
                // A success never reports a state below its target.
                Ok(outcome) => {
                    assert!(
                        outcome.to >= *target,
                        "{context}: {outcome:?} for {target:?}"
                    );
                    if !outcome.was_no_op {
                        applied.push(outcome.to);
                    }
                }
                Err(error) => assert_eq!(
                    error.code(),
                    "onboarding_regression",
                    "{context}: {error:?}"
                ),
            }
        }
        let last = *targets.last().unwrap();
        assert_eq!(
            number(&env.conn, state_sql, vec![id(tenant)]).await,
            last as i64,
            "{context}: the furthest target is where onboarding stands"
        );
        // Each applied advance moved to a state of its own: none was applied twice.
        let mut distinct = applied.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), applied.len(), "{context}: {applied:?}");
        let audited = audit_rows(&env, tenant, audit_action(Operation::OnboardingAdvance)).await;
        assert_eq!(audited, applied.len() as i64, "{context}: audit rows");
    })
    .await;
}

/// The lifecycle history as (from, to) pairs, and the tenant's status.
async fn lifecycle(env: &Env, tenant: TenantId) -> (Vec<(String, String)>, String) {
    let rows = env
        .conn
        .query_all_raw(statement(
            &env.conn,
            "SELECT from_status, to_status FROM lifecycle_events WHERE tenant_id = $1",
            vec![id(tenant)],
        ))
        .await
        .unwrap();
    let events = rows
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "from_status").unwrap(),
                row.try_get::<String>("", "to_status").unwrap(),
            )
        })
        .collect();
    let status = text(
        &env.conn,
        "SELECT status AS t FROM tenants WHERE id = $1",
        vec![id(tenant)],
    )
    .await;
    (events, status)
}

/// Whether some order of `events` is a path from `start` ending at `end`.
fn is_a_path(events: &[(String, String)], start: &str, end: &str) -> bool {
    fn walk(rest: &mut Vec<(String, String)>, at: &str, end: &str) -> bool {
        if rest.is_empty() {
            return at == end;
        }
        for i in 0..rest.len() {
            if rest[i].0 == at {
                let step = rest.remove(i);
                let found = walk(rest, &step.1, end);
                rest.insert(i, step);
                if found {
                    return true;
                }
            }
        }
        false
    }
    walk(&mut events.to_vec(), start, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_lifecycle_transitions_apply_one_and_refuse_the_other() {
    const PAIRS: usize = 10;
    on_every_backend("lifecycle", |env, round| async move {
        let context = format!("{} round {round}", env.backend);
        for pair in 0..PAIRS {
            // Two operators suspend the same tenant at once: one suspends it, the other finds
            // it suspended (a no-op) or loses the conditional update (`concurrent_transition`).
            let (tenant, _) = tenant(&env, Limits::open(), 0).await;
            let calls = (0..2)
                .map(|i| {
                    let spine = env.spine.clone();
                    async move {
                        let reason = format!("unpaid {i}");
                        spine
                            .transition_tenant(
                                &operator(),
                                tenant,
                                LifecycleAction::Suspend,
                                &reason,
                            )
                            .await
                    }
                })
                .collect();
            let results = race(calls).await;
            let applied = results
                .iter()
                .filter(|r| matches!(r, Ok(outcome) if !outcome.was_no_op))
                .count();
            for result in &results {
                if let Err(error) = result {
                    assert_eq!(
                        error.code(),
                        "concurrent_transition",
                        "{context}: {error:?}"
                    );
                }
            }
            let (events, status) = lifecycle(&env, tenant).await;
            let audited =
                audit_rows(&env, tenant, audit_action(Operation::LifecycleTransition)).await;
            assert_eq!(
                (applied, events.len(), audited, status.as_str()),
                (1, 1, 1, "suspended"),
                "{context} pair {pair}: applied, history, audit rows, status ({results:?})"
            );

            // Resume and terminate at once, from suspended: the history must be a path a
            // serial order could have produced, ending where the tenant stands.
            let calls = [LifecycleAction::Resume, LifecycleAction::Terminate]
                .into_iter()
                .map(|action| {
                    let spine = env.spine.clone();
                    async move {
                        spine
                            .transition_tenant(&operator(), tenant, action, "race")
                            .await
                    }
                })
                .collect();
            let results = race(calls).await;
            let (events, status) = lifecycle(&env, tenant).await;
            assert!(
                is_a_path(&events, "active", &status),
                "{context} pair {pair}: history {events:?} does not lead to {status} ({results:?})"
            );
            let audited =
                audit_rows(&env, tenant, audit_action(Operation::LifecycleTransition)).await;
            assert_eq!(
                audited,
                events.len() as i64,
                "{context}: one audit row per change"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_demotions_never_leave_a_tenant_without_an_owner() {
    const PAIRS: usize = 10;
    on_every_backend("demotions", |env, round| async move {
        let context = format!("{} round {round}", env.backend);
        for pair in 0..PAIRS {
            // Two owners demote each other at once: one may win, never both.
            let (tenant, owners) = tenant(&env, Limits::open(), 2).await;
            let calls = [(owners[0], owners[1]), (owners[1], owners[0])]
                .into_iter()
                .map(|(actor, target)| {
                    let spine = env.spine.clone();
                    async move {
                        spine
                            .change_role(&owner(tenant, actor), target, MembershipRole::Admin)
                            .await
                    }
                })
                .collect();
            let results = race(calls).await;
            let (ok, codes) = tally(&results);
            let owners_left = number(
                &env.conn,
                "SELECT COUNT(*) AS n FROM tenant_memberships WHERE tenant_id = $1 \
                 AND role = 'owner'",
                vec![id(tenant)],
            )
            .await;
            assert!(
                ok == 1 && owners_left == 1,
                "{context} pair {pair}: {ok} demotions applied, {owners_left} owners left, \
                 refusals {codes:?}"
            );
            let audited =
                audit_rows(&env, tenant, audit_action(Operation::AccountChangeRole)).await;
            assert_eq!(audited, 1, "{context} pair {pair}: audit rows");
        }
    })
    .await;
}
