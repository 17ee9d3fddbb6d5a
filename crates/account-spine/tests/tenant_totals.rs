//! Tenant totals, as a property: random sequences of members joining (by invitation) and
//! leaving, keys issued (by the owner or by a member, some expiring), rotated and revoked,
//! and runs admitted (in concurrent bursts) and completed, driven through the spine. After
//! every step each total kept on the tenant row equals the `COUNT(*)` of the rows it stands
//! for (`member_count`: memberships; `api_key_count`: keys not revoked; `run_count`: runs),
//! and every membership carries its member's email; after each sequence the unfiltered lists
//! report those counts as their totals. Refusals (key quota, concurrency, a member leaving
//! twice, the last key manager) are part of the sequences: a refused write must leave every
//! total as it was. Keys are never deleted, so there is no deletion step.
//!
//! Cases: `ACCOUNT_PROPTEST_CASES` (default 32 per backend, up to 24 steps each). Measured on
//! the 2-core build host with other builds running (load 5–7): 1.6–2.0 s on SQLite and
//! 3.5–4.7 s on PostgreSQL (the test server) at the default.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout)] // timings are part of the report

use account_engines::invitations::Invitee;
use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::memberships::UserFilter;
use account_spine::runs::{AdmitRun, RunCompletion, RunFilter};
use account_spine::types::*;
use account_spine::{
    Actor, Clock, DatabaseConfig, FixedClock, OffsetPage, Principal, RequestMeta, Spine,
};
use account_testkit::fixtures::{self, TenantSeed, insert_user, seed_tenant};
use account_testkit::{Backend, UrlDb, backends};
use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

fn cases() -> u32 {
    std::env::var("ACCOUNT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

/// Users a case may invite, besides its owner.
const PEOPLE: usize = 3;

/// One step of a case.
#[derive(Clone, Debug)]
enum Step {
    /// Invites person `i` (as an admin) and accepts; refused when they are a member already.
    Join(usize),
    /// The owner removes person `i`, revoking their personal keys; refused when not a member.
    Leave(usize),
    /// Person `i`, or the owner when `None`, issues a key; `expiring` ones expire in a minute.
    Issue { by: Option<usize>, expiring: bool },
    /// This many key issues by the owner at once.
    IssueBurst(usize),
    /// The owner revokes the `n`-th key issued (modulo their number).
    Revoke(usize),
    /// The owner rotates the `n`-th key issued (without grace).
    Rotate(usize),
    /// This many run admissions at once.
    Admit(usize),
    /// Completes the oldest active run.
    Complete,
    /// Moves the clock two minutes on (expiring keys expire).
    Wait,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..PEOPLE).prop_map(Step::Join),
        2 => (0..PEOPLE).prop_map(Step::Leave),
        3 => (prop::option::of(0..PEOPLE), any::<bool>())
            .prop_map(|(by, expiring)| Step::Issue { by, expiring }),
        1 => (2usize..=3).prop_map(Step::IssueBurst),
        2 => (0usize..8).prop_map(Step::Revoke),
        1 => (0usize..8).prop_map(Step::Rotate),
        3 => (1usize..=3).prop_map(Step::Admit),
        2 => Just(Step::Complete),
        1 => Just(Step::Wait),
    ]
}

struct Env {
    backend: &'static str,
    spine: Spine,
    clock: Arc<FixedClock>,
    conn: DatabaseConnection,
    /// Held so the database outlives the pools on it.
    _db: UrlDb,
}

async fn env(backend: &Backend) -> Env {
    let db = UrlDb::new(backend, "account-totals").await.unwrap();
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 3, 10, 9, 0, 0).unwrap(),
    ));
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_clock(clock.clone())
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
    let conn = db.raw().await.unwrap();
    Env {
        backend: backend.name(),
        spine,
        clock,
        conn,
        _db: db,
    }
}

/// A case's tenant: its owner and the people it may invite (users already, members not).
struct Case {
    tenant: TenantId,
    owner: Principal,
    people: Vec<(UserId, String)>,
    keys: Vec<ApiKeyId>,
    active_runs: VecDeque<RunId>,
}

impl Case {
    /// Person `i` acting as the admin an accepted invitation makes them.
    fn person(&self, i: usize) -> Principal {
        Principal {
            tenant_id: self.tenant,
            actor: Actor::User {
                user_id: self.people[i].0,
                role: MembershipRole::Admin,
            },
            request: RequestMeta::default(),
        }
    }
}

async fn case(env: &Env, max_api_keys: i32, concurrent_runs: i32) -> Case {
    let limits = fixtures::Limits {
        workers: 100,
        runs_per_day: 1_000,
        concurrent_runs,
        tokens_per_month: 1_000_000,
        api_keys: max_api_keys,
    };
    let seed = TenantSeed::new("Totals", "enterprise", limits, env.clock.now())
        .user("owner", Some("owner"))
        .tagged();
    let seeded = seed_tenant(&env.conn, &seed).await;
    let tenant = TenantId::from_uuid(seeded.id);
    let mut people = Vec::new();
    for i in 0..PEOPLE {
        let (id, email) = (Uuid::now_v7(), format!("p{i}-{}@example.com", seeded.id));
        insert_user(&env.conn, id, &email, env.clock.now()).await;
        people.push((UserId::from_uuid(id), email));
    }
    Case {
        tenant,
        owner: Principal {
            tenant_id: tenant,
            actor: Actor::User {
                user_id: UserId::from_uuid(seeded.users[0]),
                role: MembershipRole::Owner,
            },
            request: RequestMeta::default(),
        },
        people,
        keys: Vec::new(),
        active_runs: VecDeque::new(),
    }
}

/// `[(kept total, COUNT(*))]` for members, keys not revoked and runs, and the memberships
/// whose email differs from their user's.
async fn totals(env: &Env, tenant: TenantId) -> ([(i64, i64); 3], i64) {
    let backend = env.conn.get_database_backend();
    let p = if backend == DbBackend::Sqlite {
        "?"
    } else {
        "$1"
    };
    let sql = format!(
        "SELECT t.member_count, \
           (SELECT COUNT(*) FROM tenant_memberships m WHERE m.tenant_id = t.id) AS members, \
           t.api_key_count, \
           (SELECT COUNT(*) FROM api_keys k WHERE k.tenant_id = t.id AND k.status <> 'revoked') \
             AS keys, \
           t.run_count, \
           (SELECT COUNT(*) FROM worker_runs r WHERE r.tenant_id = t.id) AS runs, \
           (SELECT COUNT(*) FROM tenant_memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.tenant_id = t.id AND m.member_email <> u.email) AS wrong_emails \
         FROM tenants t WHERE t.id = {p}"
    );
    let row = env
        .conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant.as_uuid().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let get = |column: &str| row.try_get::<i64>("", column).unwrap();
    (
        [
            (get("member_count"), get("members")),
            (get("api_key_count"), get("keys")),
            (get("run_count"), get("runs")),
        ],
        get("wrong_emails"),
    )
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
        token_estimate: 0,
    }
}

fn key(name: &str, expires_at: Option<chrono::DateTime<Utc>>) -> IssueKey {
    IssueKey {
        name: name.into(),
        expires_at,
        ..IssueKey::default()
    }
}

/// Runs one step; refusals are expected and ignored (the totals must not move for them).
async fn apply(env: &Env, case: &mut Case, step: &Step) {
    let spine = &env.spine;
    match *step {
        Step::Join(i) => {
            let email = case.people[i].1.clone();
            if let Ok(issued) = spine
                .invite_user(&case.owner, &email, MembershipRole::Admin)
                .await
            {
                spine
                    .accept_invitation(
                        case.tenant,
                        issued.invitation.id,
                        issued.token.expose(),
                        Invitee::default(),
                        RequestMeta::default(),
                    )
                    .await
                    .expect("a fresh invitation is accepted");
            }
        }
        Step::Leave(i) => {
            let _ = spine.remove_user(&case.owner, case.people[i].0).await;
        }
        Step::Issue { by, expiring } => {
            let principal = by.map_or_else(|| case.owner.clone(), |i| case.person(i));
            let expires = expiring.then(|| env.clock.now() + TimeDelta::minutes(1));
            if let Ok(issued) = spine.issue_api_key(&principal, key("k", expires)).await {
                case.keys.push(issued.key.id);
            }
        }
        Step::IssueBurst(n) => {
            let calls: Vec<_> = (0..n)
                .map(|_| {
                    let (spine, owner) = (spine.clone(), case.owner.clone());
                    tokio::spawn(async move { spine.issue_api_key(&owner, key("b", None)).await })
                })
                .collect();
            for call in calls {
                if let Ok(issued) = call.await.unwrap() {
                    case.keys.push(issued.key.id);
                }
            }
        }
        Step::Revoke(n) if !case.keys.is_empty() => {
            let key = case.keys[n % case.keys.len()];
            let _ = spine.revoke_api_key(&case.owner, key, "test").await;
        }
        Step::Rotate(n) if !case.keys.is_empty() => {
            let key = case.keys[n % case.keys.len()];
            if let Ok(rotated) = spine
                .rotate_api_key(&case.owner, key, TimeDelta::zero())
                .await
            {
                case.keys.push(rotated.issued.key.id);
            }
        }
        Step::Revoke(_) | Step::Rotate(_) => {}
        Step::Admit(n) => {
            let calls: Vec<_> = (0..n)
                .map(|_| {
                    let (spine, owner) = (spine.clone(), case.owner.clone());
                    tokio::spawn(async move { spine.admit_run(&owner, admit()).await })
                })
                .collect();
            for call in calls {
                if let Ok(run) = call.await.unwrap() {
                    case.active_runs.push_back(run.id);
                }
            }
        }
        Step::Complete => {
            if let Some(run) = case.active_runs.pop_front() {
                let completion = RunCompletion {
                    success: true,
                    total_tokens: 10,
                    ..RunCompletion::default()
                };
                spine
                    .complete_run(&case.owner, run, completion)
                    .await
                    .expect("an active run completes");
            }
        }
        Step::Wait => env.clock.advance(TimeDelta::minutes(2)),
    }
}

/// Plays `steps` on a fresh tenant; fails at the first total that differs from its count.
async fn play(
    env: &Env,
    (max_api_keys, concurrent_runs): (i32, i32),
    steps: &[Step],
) -> Result<(), TestCaseError> {
    let mut case = case(env, max_api_keys, concurrent_runs).await;
    for (i, step) in steps.iter().enumerate() {
        apply(env, &mut case, step).await;
        let (kept, wrong_emails) = totals(env, case.tenant).await;
        for ((total, count), what) in kept.iter().zip(["members", "keys", "runs"]) {
            prop_assert_eq!(total, count, "{} after step {} {:?}", what, i, step);
        }
        prop_assert_eq!(wrong_emails, 0, "member emails after step {} {:?}", i, step);
    }
    // The unfiltered lists report the counts as their totals.
    let ([(_, members), (_, keys), (_, runs)], _) = totals(env, case.tenant).await;
    let page = OffsetPage {
        limit: 1,
        offset: 0,
    };
    let owner = &case.owner;
    let spine = &env.spine;
    let users = spine.list_users(owner, UserFilter::default(), page).await;
    let listed_keys = spine.list_api_keys(owner, false, page).await;
    let listed_runs = spine.list_runs(owner, &RunFilter::default(), page).await;
    let count = |n: i64| u64::try_from(n).unwrap();
    prop_assert_eq!(users.unwrap().total, count(members));
    prop_assert_eq!(listed_keys.unwrap().total, count(keys));
    prop_assert_eq!(listed_runs.unwrap().total, count(runs));
    Ok(())
}

#[test]
fn every_total_equals_the_count_of_its_rows() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in backends().unwrap() {
        let env = runtime.block_on(env(&backend));
        let started = Instant::now();
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        // Key quotas of 1 to 4 and 1 to 3 concurrent runs, so refusals are frequent.
        let strategy = ((1i32..=4, 1i32..=3), prop::collection::vec(step(), 1..=24));
        let outcome = runner.run(&strategy, |(limits, steps)| {
            runtime.block_on(play(&env, limits, &steps))
        });
        println!(
            "tenant totals on {}: {} cases in {:.2?}",
            env.backend,
            cases(),
            started.elapsed()
        );
        if let Err(failure) = outcome {
            panic!("{}: {failure}", env.backend);
        }
    }
}
