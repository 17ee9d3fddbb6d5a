//! Run leases through the spine, on each backend: a heartbeat renews the lease (and the first
//! one starts the run, audited once); a finished run refuses heartbeats; the reaper expires a
//! lapsed run exactly once (audited as the system, its slot free again), also as a task of its
//! own; and raced against the run's completion, over many rounds, exactly one of the two
//! finishes the run, with its audit row, its event and its counters once.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::runs::leases::{LeaseDuration, Reaped, ReaperSettings};
use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::*;
use account_spine::{Actor, DomainEvent, ErrorCode, Principal, RequestMeta, SpineError};
use account_testkit::backends;
use account_testkit::fixtures::{Limits, TenantSeed, seed_tenant};
use chrono::TimeDelta;
use sea_orm::{DatabaseConnection, Value};
use std::time::{Duration, Instant};
use support::{Env, count, env, start};

/// Rounds of the expiry-against-completion race: `ACCOUNT_RACE_ROUNDS`, default 30.
fn rounds() -> usize {
    std::env::var("ACCOUNT_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(30)
}

/// A tenant on the free plan but with room for `concurrent` runs at once (and for as many
/// runs a day as the race's rounds need), with a member and a viewer; returns the tenant and
/// the two users.
async fn tenant(env: &Env, concurrent: i32) -> (TenantId, UserId, UserId) {
    let q = account_spine::types::PlanQuotas::built_in(&PlanCode::free()).unwrap();
    let limits = Limits {
        workers: q.max_workers,
        runs_per_day: 1_000_000,
        concurrent_runs: concurrent,
        tokens_per_month: q.max_tokens_per_month,
        api_keys: q.max_api_keys,
    };
    let seed = TenantSeed::new("Leases", "free", limits, start())
        .user("mia", Some("member"))
        .user("vic", Some("viewer"))
        .tagged();
    let seeded = seed_tenant(&env.second().await, &seed).await;
    (
        TenantId::from_uuid(seeded.id),
        UserId::from_uuid(seeded.users[0]),
        UserId::from_uuid(seeded.users[1]),
    )
}

fn user(tenant_id: TenantId, user_id: UserId, role: MembershipRole) -> Principal {
    Principal {
        tenant_id,
        actor: Actor::User { user_id, role },
        request: RequestMeta::default().with_request_id("leases"),
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

fn seconds(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// Rows of `table` matching `conds`, as another connection sees them.
async fn rows(conn: &DatabaseConnection, table: &str, conds: Vec<(&str, Value)>) -> i64 {
    count(conn, table, &conds).await
}

/// Audit rows of `run` with `action`.
async fn audited(conn: &DatabaseConnection, run: RunId, action: &str) -> i64 {
    let id = run.to_string();
    rows(
        conn,
        "audit_log",
        vec![("action", action.into()), ("resource_id", id.into())],
    )
    .await
}

fn code<T: std::fmt::Debug>(result: Result<T, SpineError>) -> &'static str {
    result.expect_err("refused").code()
}

#[tokio::test]
async fn a_heartbeat_renews_the_lease_and_the_first_one_starts_the_run() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (tenant, member, viewer) = tenant(&env, 5).await;
        let mia = user(tenant, member, MembershipRole::Member);
        let run = env.spine.admit_run(&mia, admit()).await.unwrap();
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!(run.lease_expires_at, Some(start() + seconds(60)));

        env.clock.advance(seconds(20));
        let first = env.spine.heartbeat_run(&mia, run.id).await.unwrap();
        assert_eq!(first.status, RunStatus::Running);
        assert_eq!(first.started_at, Some(start() + seconds(20)));
        assert_eq!(first.lease_expires_at, Some(start() + seconds(80)));
        env.clock.advance(seconds(20));
        let second = env.spine.heartbeat_run(&mia, run.id).await.unwrap();
        assert_eq!(second.lease_expires_at, Some(start() + seconds(100)));
        assert_eq!(second.started_at, first.started_at);
        let other = env.second().await;
        assert_eq!(
            audited(&other, run.id, "run.started").await,
            1,
            "{}: only the beat that started the run is audited",
            env.backend
        );

        // A viewer may not keep runs alive; an unknown run is not found.
        let vic = user(tenant, viewer, MembershipRole::Viewer);
        assert_eq!(
            code(env.spine.heartbeat_run(&vic, run.id).await),
            "forbidden"
        );
        let unknown = env.spine.heartbeat_run(&mia, RunId::new()).await;
        assert_eq!(code(unknown), "run_not_found");

        // A finished run refuses heartbeats: its worker should stop.
        env.spine
            .complete_run(&mia, run.id, RunCompletion::default())
            .await
            .unwrap();
        let refused = env.spine.heartbeat_run(&mia, run.id).await.unwrap_err();
        assert_eq!(refused.code(), "run_already_finished");
        assert_eq!(refused.http_status(), 409);

        // The lease is the spine's setting.
        let spine = env
            .spine
            .clone()
            .with_run_lease(LeaseDuration::new(Duration::from_secs(300)).unwrap());
        let longer = spine.admit_run(&mia, admit()).await.unwrap();
        assert_eq!(
            longer.lease_expires_at,
            Some(env.spine.now() + seconds(300))
        );
    }
}

#[tokio::test]
async fn the_reaper_expires_a_lapsed_run_once_audited_and_frees_its_slot() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (tenant, member, _) = tenant(&env, 1).await;
        let mia = user(tenant, member, MembershipRole::Member);
        let run = env.spine.admit_run(&mia, admit()).await.unwrap();
        let full = env.spine.admit_run(&mia, admit()).await;
        assert_eq!(code(full), "quota_concurrent_runs", "{}", env.backend);

        // A living worker's run is left alone, even past its first lease.
        env.clock.advance(seconds(50));
        env.spine.heartbeat_run(&mia, run.id).await.unwrap();
        env.clock.advance(seconds(50));
        assert_eq!(
            env.spine.reap_expired_runs(100).await.unwrap(),
            Reaped::default()
        );

        // Its worker dies: a minute after the last beat, the run is expired.
        env.clock.advance(seconds(11));
        let reaped = env.spine.reap_expired_runs(100).await.unwrap();
        assert_eq!(reaped.expired, [run.id], "{}", env.backend);
        let expired = env.spine.get_run(&mia, run.id).await.unwrap();
        assert_eq!(expired.status, RunStatus::Crashed);
        assert_eq!(expired.error.as_deref(), Some("lease expired"));
        assert_eq!(expired.success, Some(false));
        assert_eq!(expired.completed_at, Some(env.spine.now()));
        let other = env.second().await;
        let conds = vec![
            ("action", "run.lease_expired".into()),
            ("resource_type", "run".into()),
            ("resource_id", run.id.to_string().into()),
            ("tenant_id", tenant.as_uuid().into()),
            ("actor_type", "system".into()),
            ("reason", "lease expired".into()),
        ];
        assert_eq!(rows(&other, "audit_log", conds).await, 1);
        assert!(env.events.all().contains(&DomainEvent::RunCompleted {
            tenant_id: tenant,
            run_id: run.id,
            success: false,
        }));

        // Exactly once: the next passes find nothing, and the run is final.
        assert_eq!(
            env.spine.reap_expired_runs(100).await.unwrap(),
            Reaped::default()
        );
        assert_eq!(
            env.spine.expire_run_lease(tenant, run.id).await.unwrap(),
            None
        );
        assert_eq!(audited(&other, run.id, "run.lease_expired").await, 1);
        let late = env
            .spine
            .complete_run(&mia, run.id, RunCompletion::default());
        assert_eq!(code(late.await), "run_already_finished");

        // Its slot is free: the admission refused before now succeeds.
        env.spine.admit_run(&mia, admit()).await.unwrap();
    }
}

#[tokio::test]
async fn the_reaper_passes_are_bounded_and_the_spawned_reaper_expires_and_stops() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (tenant, member, _) = tenant(&env, 10).await;
        let mia = user(tenant, member, MembershipRole::Member);
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(env.spine.admit_run(&mia, admit()).await.unwrap().id);
        }
        env.clock.advance(seconds(61));
        let first = env.spine.reap_expired_runs(2).await.unwrap();
        assert_eq!(
            (first.expired.len(), first.more),
            (2, true),
            "{}",
            env.backend
        );

        // The task reaps the rest on its own, then stops when told.
        let reaper = env
            .spine
            .spawn_reaper(ReaperSettings::default().with_interval(Duration::from_millis(20)));
        let deadline = Instant::now() + Duration::from_secs(10);
        let last = *runs.last().unwrap();
        loop {
            let run = env.spine.get_run(&mia, last).await.unwrap();
            if run.status == RunStatus::Crashed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not reaped: {run:?}",
                env.backend
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        reaper.shutdown().await;
        let other = env.second().await;
        for run in runs {
            assert_eq!(audited(&other, run, "run.lease_expired").await, 1);
        }
        // Stopped: a run that lapses now stays until someone reaps it.
        let later = env.spine.admit_run(&mia, admit()).await.unwrap();
        env.clock.advance(seconds(61));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let still = env.spine.get_run(&mia, later.id).await.unwrap();
        assert_eq!(still.status, RunStatus::Queued);
    }
}

/// The run's outcome as stored, with what it left: (status, tokens added to the month,
/// completion rows, expiry rows).
async fn outcome(env: &Env, tenant: TenantId, run: RunId) -> (String, i64, i64, i64) {
    let other = env.second().await;
    let status = if rows(
        &other,
        "worker_runs",
        vec![("id", run.as_uuid().into()), ("status", "crashed".into())],
    )
    .await
        == 1
    {
        "crashed"
    } else if rows(
        &other,
        "worker_runs",
        vec![("id", run.as_uuid().into()), ("status", "completed".into())],
    )
    .await
        == 1
    {
        "completed"
    } else {
        "unfinished"
    };
    let tokens = rows(
        &other,
        "usage_records",
        vec![
            ("tenant_id", tenant.as_uuid().into()),
            ("run_id", run.as_uuid().into()),
            ("meter_name", "tokens_used".into()),
        ],
    )
    .await;
    (
        status.to_owned(),
        tokens,
        audited(&other, run, "run.completed").await,
        audited(&other, run, "run.lease_expired").await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expiry_racing_the_completion_finishes_the_run_exactly_once() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (tenant, member, _) = tenant(&env, 1).await;
        let mia = user(tenant, member, MembershipRole::Member);
        let (mut completed, mut expired) = (0, 0);
        let started = Instant::now();
        for round in 0..rounds() {
            let run = env.spine.admit_run(&mia, admit()).await.unwrap();
            env.clock.advance(seconds(61));
            let events_before = env.events.all().len();
            // The worker's late completion against two reapers (a pass and a direct expiry).
            let completion = RunCompletion {
                success: true,
                total_tokens: 10,
                ..RunCompletion::default()
            };
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(3));
            let complete = {
                let (spine, mia, barrier) = (env.spine.clone(), mia.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    spine.complete_run(&mia, run.id, completion).await
                })
            };
            let expire = {
                let (spine, barrier) = (env.spine.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    spine.expire_run_lease(tenant, run.id).await
                })
            };
            let reap = {
                let (spine, barrier) = (env.spine.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    spine.reap_expired_runs(100).await
                })
            };
            let complete = complete.await.unwrap();
            let expire = expire.await.unwrap().unwrap();
            let reap = reap.await.unwrap().unwrap();
            let context = format!("{} round {round}", env.backend);
            let expiries = usize::from(expire.is_some()) + reap.expired.len();
            assert_eq!(reap.failed, 0, "{context}: {reap:?}");
            let (status, tokens, completions, expiry_rows) = outcome(&env, tenant, run.id).await;
            match complete {
                Ok(done) => {
                    completed += 1;
                    assert_eq!(done.status, RunStatus::Completed, "{context}");
                    assert_eq!(expiries, 0, "{context}: expired a completed run");
                    assert_eq!(
                        (status.as_str(), tokens, completions, expiry_rows),
                        ("completed", 1, 1, 0),
                        "{context}"
                    );
                }
                Err(error) => {
                    expired += 1;
                    assert_eq!(error.code(), "run_already_finished", "{context}: {error:?}");
                    assert_eq!(expiries, 1, "{context}: {expire:?} {reap:?}");
                    assert_eq!(
                        (status.as_str(), tokens, completions, expiry_rows),
                        ("crashed", 0, 0, 1),
                        "{context}"
                    );
                }
            }
            let finished: Vec<_> = env.events.all()[events_before..]
                .iter()
                .filter(
                    |e| matches!(e, DomainEvent::RunCompleted { run_id, .. } if *run_id == run.id),
                )
                .cloned()
                .collect();
            assert_eq!(finished.len(), 1, "{context}: {finished:?}");
            // Whichever won, the one slot is free for the next round's admission.
        }
        // The month's tokens count only the completions that won.
        let other = env.second().await;
        let month = rows(
            &other,
            "tenants",
            vec![
                ("id", tenant.as_uuid().into()),
                ("tokens_this_month", (10 * completed as i64).into()),
            ],
        )
        .await;
        assert_eq!(
            month, 1,
            "{}: tokens of {completed} completions",
            env.backend
        );
        println!(
            "{}: {} rounds in {:.2?}: {completed} completions won, {expired} expiries won",
            env.backend,
            rounds(),
            started.elapsed()
        );
    }
}
