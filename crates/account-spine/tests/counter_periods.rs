//! Counter periods, as a property: random sequences of run admissions (in concurrent
//! bursts), completions with tokens and clock steps across day and month boundaries, driven
//! through the spine with a steppable clock and compared, step by step, with a reference
//! model. The daily run counter and the monthly run and token counters must equal what the
//! model admitted in the current period (no lost increment, no missed or spurious reset), and
//! no period ever admits more than its limit.
//!
//! Cases: `ACCOUNT_PROPTEST_CASES` (default 24 per backend). Measured on the 2-core build host:
//! about 5 s on SQLite and 4 s on PostgreSQL at the default.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout)] // timings (and a skip's reason) are part of the report

use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::*;
use account_spine::{
    Actor, Clock, DatabaseConfig, ErrorCode, FixedClock, Principal, RequestMeta, Spine,
};
use account_testkit::fixtures::{self, TenantSeed, seed_tenant};
use account_testkit::{Backend, UrlDb, backends};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

fn cases() -> u32 {
    std::env::var("ACCOUNT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

/// Where every case starts: late on the 30th of January, so days and a month end come soon.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 30, 21, 0, 0).unwrap()
}

/// One step of a case.
#[derive(Clone, Debug)]
enum Step {
    /// This many admissions at once.
    Admit(usize),
    /// Completes the oldest active run with this many tokens.
    Complete(i64),
    /// Moves the clock forward by this much.
    Wait(TimeDelta),
    /// Moves the clock to one second before the next UTC midnight.
    ToDayEnd,
    /// Moves the clock to one second before the next month.
    ToMonthEnd,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..=4).prop_map(Step::Admit),
        3 => (0i64..=40).prop_map(Step::Complete),
        2 => (1i64..=180).prop_map(|m| Step::Wait(TimeDelta::minutes(m))),
        1 => (1i64..=40).prop_map(|h| Step::Wait(TimeDelta::hours(h))),
        1 => Just(Step::ToDayEnd),
        1 => Just(Step::ToMonthEnd),
    ]
}

/// The tenant's limits in one case.
#[derive(Clone, Copy, Debug)]
struct Limits {
    runs_per_day: i32,
    concurrent_runs: i32,
    tokens_per_month: i64,
}

fn limits() -> impl Strategy<Value = Limits> {
    (1i32..=6, 1i32..=4, 10i64..=120).prop_map(|(runs_per_day, concurrent_runs, tokens)| Limits {
        runs_per_day,
        concurrent_runs,
        tokens_per_month: tokens,
    })
}

/// What the counters must say, from the admissions and completions the model accepted.
#[derive(Debug, Default)]
struct Model {
    runs_by_day: BTreeMap<NaiveDate, i64>,
    runs_by_month: BTreeMap<NaiveDate, i64>,
    tokens_by_month: BTreeMap<NaiveDate, i64>,
    active: VecDeque<RunId>,
}

fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap()
}

impl Model {
    fn runs_today(&self, day: NaiveDate) -> i64 {
        self.runs_by_day.get(&day).copied().unwrap_or(0)
    }

    fn tokens(&self, day: NaiveDate) -> i64 {
        self.tokens_by_month
            .get(&month_of(day))
            .copied()
            .unwrap_or(0)
    }

    /// How many of `burst` admissions at once go through, and what refuses the rest (the
    /// engine names the first exhausted limit in the order daily runs, tokens, concurrency).
    fn admit(&self, limits: Limits, day: NaiveDate, burst: usize) -> (usize, Option<&'static str>) {
        let room = |limit: i64, used: i64| usize::try_from((limit - used).max(0)).unwrap();
        let runs_room = room(i64::from(limits.runs_per_day), self.runs_today(day));
        let concurrency_room = room(i64::from(limits.concurrent_runs), self.active.len() as i64);
        let tokens_open = self.tokens(day) < limits.tokens_per_month;
        let admitted = if tokens_open {
            burst.min(runs_room).min(concurrency_room)
        } else {
            0
        };
        let refusal = (admitted < burst).then_some(if runs_room <= admitted {
            "quota_runs_per_day"
        } else if !tokens_open {
            "quota_tokens_per_month"
        } else {
            "quota_concurrent_runs"
        });
        (admitted, refusal)
    }
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
    let db = UrlDb::new(backend, "account-periods").await.unwrap();
    let clock = Arc::new(FixedClock::new(start()));
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_clock(clock.clone());
    let conn = db.raw().await.unwrap();
    Env {
        backend: backend.name(),
        spine,
        clock,
        conn,
        _db: db,
    }
}

/// A fresh tenant with `limits` and an owner acting on it.
async fn tenant(env: &Env, limits: Limits) -> Principal {
    let limits = fixtures::Limits {
        workers: 100,
        runs_per_day: limits.runs_per_day,
        concurrent_runs: limits.concurrent_runs,
        tokens_per_month: limits.tokens_per_month,
        api_keys: 100,
    };
    // The owner, a member with the owner role (the spine reads it from the membership).
    let seed = TenantSeed::new("Periods", "enterprise", limits, env.clock.now())
        .user("owner", Some("owner"))
        .tagged();
    let seeded = seed_tenant(&env.conn, &seed).await;
    let (tenant, user) = (
        TenantId::from_uuid(seeded.id),
        UserId::from_uuid(seeded.users[0]),
    );
    Principal {
        tenant_id: tenant,
        actor: Actor::User {
            user_id: user,
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    }
}

/// The counters as stored, read as the admission reads them: a counter whose period is not
/// the current one counts zero.
#[derive(Debug, PartialEq, Eq)]
struct Counters {
    runs_today: i64,
    runs_this_month: i64,
    tokens_this_month: i64,
}

async fn counters(env: &Env, tenant: TenantId, day: NaiveDate) -> Counters {
    let backend = env.conn.get_database_backend();
    let placeholder = if backend == DbBackend::Sqlite {
        "?"
    } else {
        "$1"
    };
    let row = env
        .conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT CAST(runs_today AS BIGINT) AS runs_today, \
                 CAST(runs_this_month AS BIGINT) AS runs_this_month, tokens_this_month, \
                 usage_day, usage_month FROM tenants WHERE id = {placeholder}"
            ),
            [tenant.as_uuid().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let usage_day: Option<NaiveDate> = row.try_get("", "usage_day").unwrap();
    let usage_month: Option<NaiveDate> = row.try_get("", "usage_month").unwrap();
    let current = |period: Option<NaiveDate>, expected: NaiveDate, value: i64| {
        if period == Some(expected) { value } else { 0 }
    };
    Counters {
        runs_today: current(usage_day, day, row.try_get("", "runs_today").unwrap()),
        runs_this_month: current(
            usage_month,
            month_of(day),
            row.try_get("", "runs_this_month").unwrap(),
        ),
        tokens_this_month: current(
            usage_month,
            month_of(day),
            row.try_get("", "tokens_this_month").unwrap(),
        ),
    }
}

/// Plays `steps` through the spine and the model; fails at the first disagreement.
async fn play(env: &Env, limits: Limits, steps: &[Step]) -> Result<(), TestCaseError> {
    env.clock.set(start());
    let principal = tenant(env, limits).await;
    let tenant = principal.tenant_id;
    let mut model = Model::default();
    for (i, step) in steps.iter().enumerate() {
        let now = env.clock.now();
        let day = now.date_naive();
        match *step {
            Step::Admit(burst) => {
                let (expected, refusal) = model.admit(limits, day, burst);
                let calls: Vec<_> = (0..burst)
                    .map(|_| {
                        let (spine, principal) = (env.spine.clone(), principal.clone());
                        tokio::spawn(async move {
                            let request = AdmitRun {
                                worker_id: "business-builder".into(),
                                task: "plan".into(),
                                input: None,
                                token_estimate: 0,
                            };
                            spine.admit_run(&principal, request).await
                        })
                    })
                    .collect();
                let mut admitted = Vec::new();
                let mut refusals = Vec::new();
                for call in calls {
                    match call.await.unwrap() {
                        Ok(run) => admitted.push(run.id),
                        Err(error) => refusals.push(error.code()),
                    }
                }
                prop_assert_eq!(
                    admitted.len(),
                    expected,
                    "step {} {:?} at {}: admitted (refusals {:?})",
                    i,
                    step,
                    now,
                    refusals
                );
                if let Some(refusal) = refusal {
                    prop_assert!(
                        refusals.iter().all(|r| *r == refusal),
                        "step {} at {}: refusals {:?}, expected {}",
                        i,
                        now,
                        refusals,
                        refusal
                    );
                }
                let n = admitted.len() as i64;
                *model.runs_by_day.entry(day).or_default() += n;
                *model.runs_by_month.entry(month_of(day)).or_default() += n;
                model.active.extend(admitted);
            }
            Step::Complete(tokens) => {
                let Some(run) = model.active.pop_front() else {
                    continue;
                };
                let completion = RunCompletion {
                    success: true,
                    total_tokens: tokens,
                    ..RunCompletion::default()
                };
                let completed = env.spine.complete_run(&principal, run, completion).await;
                prop_assert!(completed.is_ok(), "step {}: {:?}", i, completed);
                *model.tokens_by_month.entry(month_of(day)).or_default() += tokens;
            }
            Step::Wait(by) => env.clock.advance(by),
            Step::ToDayEnd => {
                let midnight = day.checked_add_days(Days::new(1)).unwrap();
                env.clock
                    .set(midnight.and_hms_opt(0, 0, 0).unwrap().and_utc() - TimeDelta::seconds(1));
            }
            Step::ToMonthEnd => {
                let next = month_of(day).checked_add_months(Months::new(1)).unwrap();
                env.clock
                    .set(next.and_hms_opt(0, 0, 0).unwrap().and_utc() - TimeDelta::seconds(1));
            }
        }
        // After every step, in the period the clock now shows.
        let day = env.clock.now().date_naive();
        let stored = counters(env, tenant, day).await;
        let expected = Counters {
            runs_today: model.runs_today(day),
            runs_this_month: model
                .runs_by_month
                .get(&month_of(day))
                .copied()
                .unwrap_or(0),
            tokens_this_month: model.tokens(day),
        };
        prop_assert_eq!(&stored, &expected, "after step {} {:?} on {}", i, step, day);
    }
    // No day ever admitted more than its limit (the model's count is the spine's admissions).
    for (day, runs) in &model.runs_by_day {
        prop_assert!(
            *runs <= i64::from(limits.runs_per_day),
            "{}: {} runs",
            day,
            runs
        );
    }
    Ok(())
}

#[test]
fn counters_follow_their_periods_and_never_lose_an_increment() {
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
        let strategy = (limits(), proptest::collection::vec(step(), 1..40));
        let outcome = runner.run(&strategy, |(limits, steps)| {
            runtime.block_on(play(&env, limits, &steps))
        });
        println!(
            "counter periods on {}: {} cases in {:.2?}",
            env.backend,
            cases(),
            started.elapsed()
        );
        if let Err(failure) = outcome {
            panic!("{}: {failure}", env.backend);
        }
    }
}
