//! `worker_runs` driver tests, including admission raced by many transactions.

use crate::support::*;
use account_drivers::runs::{
    Admission, NewRun, RunAdmission, RunCompletion, RunFilter, RunSnapshot, UsagePeriod,
};
use account_drivers::types::*;
use account_drivers::usage::NewUsageRecord;
use account_drivers::{Db, OffsetPage, StatementCounter, TenantDriver, get_tenant_driver};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    DatabaseConnection, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub(crate) fn period() -> UsagePeriod {
    UsagePeriod {
        day: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        month: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
    }
}

/// A run of `tenant` on `worker`, started with `key`, reserving `estimate` tokens.
pub(crate) fn new_run(
    tenant: TenantId,
    key: Option<ApiKeyId>,
    worker: &str,
    estimate: i64,
) -> NewRun {
    NewRun {
        id: RunId::new(),
        tenant_id: tenant,
        worker_id: worker.into(),
        task: "draft a plan".into(),
        api_key_id: key,
        user_id: None,
        input: Some(serde_json::json!({"goal": "x"})),
        parent_run_id: None,
        attempt: 1,
        token_estimate: estimate,
        lease_expires_at: now() + chrono::TimeDelta::seconds(60),
    }
}

/// The admission of `run` in `period`, metered, not audited.
fn admission_of(run: NewRun, period: UsagePeriod) -> RunAdmission {
    let usage = NewUsageRecord {
        id: UsageRecordId::new(),
        tenant_id: run.tenant_id,
        meter_name: "worker_runs".into(),
        amount: 1,
        unit: UsageUnit::Count,
        worker_id: Some(run.worker_id.clone()),
        api_key_id: run.api_key_id,
        run_id: Some(run.id),
        idempotency_key: Some(format!("run:{}:admitted", run.id)),
        metadata: None,
    };
    RunAdmission::new(run, period, usage, None)
}

/// Admits `run` on `driver` at `at` (a pool handle: each statement commits by itself).
pub(crate) async fn admit_at(
    driver: &TenantDriver<'_>,
    run: NewRun,
    at: DateTime<Utc>,
) -> RunSnapshot {
    match driver
        .admit_run(admission_of(run, period()), at)
        .await
        .unwrap()
    {
        Admission::Admitted { run, .. } => run,
        other => panic!("expected an admission, got {other:?}"),
    }
}

/// Admits one run in its own transaction, as the spine does (committed either way: a
/// refusal leaves nothing to roll back); returns the admission and how many statements
/// `admit_run` sent.
async fn admit_counted(conn: &DatabaseConnection, run: NewRun) -> (Admission, u64) {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = conn.begin_with_options(options).await.unwrap();
    let counter = StatementCounter::new();
    // Under GUARD too: the transaction's own BEGIN/COMMIT go through `txn`, never the handle.
    let driver = get_tenant_driver(
        Db::for_transaction(&txn)
            .counting(&GUARD)
            .counting(&counter),
    );
    let admission = driver
        .admit_run(admission_of(run, period()), now())
        .await
        .unwrap();
    let statements = counter.take();
    txn.commit().await.unwrap();
    (admission, statements)
}

/// Admits one run in its own transaction; whether it was admitted.
async fn admit_in_transaction(conn: &DatabaseConnection, run: NewRun) -> bool {
    matches!(admit_counted(conn, run).await.0, Admission::Admitted { .. })
}

/// The statements an admission takes on `conn`'s backend: one on PostgreSQL (the whole
/// admission is one statement); on SQLite the worker, the key, the tenant, the run, the usage
/// record and its hourly total one by one.
fn admitted_statements(conn: &DatabaseConnection, keyed: bool) -> u64 {
    match conn.get_database_backend() {
        DbBackend::Postgres => 1,
        _ => 5 + u64::from(keyed),
    }
}

/// `(tenant active runs, active workers, tokens reserved)`, each with what it counts.
async fn counters(db: &account_testkit::TestDb, tenant: TenantId) -> [(i64, i64); 3] {
    use account_models::entities::{tenants, worker_runs};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let row = tenants::Entity::find_by_id(tenant)
        .one(db.conn())
        .await
        .unwrap()
        .unwrap();
    let active = worker_runs::Entity::find()
        .filter(worker_runs::Column::TenantId.eq(tenant))
        .filter(worker_runs::Column::Status.is_in([RunStatus::Queued, RunStatus::Running]))
        .all(db.conn())
        .await
        .unwrap();
    let workers: std::collections::HashSet<_> = active.iter().map(|r| &r.worker_id).collect();
    [
        (i64::from(row.active_runs), active.len() as i64),
        (i64::from(row.active_workers), workers.len() as i64),
        (
            row.tokens_reserved,
            active.iter().map(|r| r.token_estimate).sum(),
        ),
    ]
}

#[tokio::test]
async fn admission_counts_and_refuses_with_the_usage_that_refused() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "runs").await; // free: 5 concurrent, 3 workers, 100 a day
        let other = seed_tenant(db, "runs-other").await;
        let run = || new_run(tenant, None, "business-builder", 0);
        for _ in 0..5 {
            let (admission, statements) = admit_counted(db.conn(), run()).await;
            assert!(
                matches!(admission, Admission::Admitted { .. }),
                "{admission:?}"
            );
            assert_eq!(statements, admitted_statements(db.conn(), false));
        }
        let (refused, _) = admit_counted(db.conn(), run()).await;
        match refused {
            Admission::Refused(usage) => {
                assert_eq!(usage.tenant.active_runs, 5);
                assert_eq!(usage.tenant.runs_today, 5);
                assert!(!usage.new_worker && usage.key.is_none());
            }
            other => panic!("the sixth concurrent run is refused, got {other:?}"),
        }
        for (counter, source) in counters(db, tenant).await {
            assert_eq!(
                counter, source,
                "a refusal leaves the counters as they were"
            );
        }
        let driver = get_tenant_driver(handle(db));
        assert_eq!(driver.count_running_runs(tenant).await.unwrap().count, 5);
        assert_eq!(driver.count_running_runs(other).await.unwrap().count, 0);
        let missing = new_run(TenantId::new(), None, "business-builder", 0);
        assert!(matches!(
            driver
                .admit_run(admission_of(missing, period()), now())
                .await
                .unwrap(),
            Admission::TenantMissing
        ));
        assert_eq!(
            driver
                .fetch_tenant_snapshot(other)
                .await
                .unwrap()
                .unwrap()
                .runs_today,
            0,
            "another tenant's counters are untouched"
        );
    })
    .await;
}

#[tokio::test]
async fn admission_respects_the_per_key_limit() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "keyed").await;
        let key = crate::api_keys::seed_key_limited(db, tenant, Some(2)).await;
        let run = || new_run(tenant, Some(key), "business-builder", 0);
        assert!(admit_in_transaction(db.conn(), run()).await);
        let (admission, statements) = admit_counted(db.conn(), run()).await;
        assert!(
            matches!(admission, Admission::Admitted { .. }),
            "{admission:?}"
        );
        assert_eq!(statements, admitted_statements(db.conn(), true));
        let (refused, _) = admit_counted(db.conn(), run()).await;
        match refused {
            Admission::Refused(usage) => {
                let key = usage.key.expect("the key's limit refused");
                assert_eq!((key.max_concurrent_runs, key.active_runs), (Some(2), 2));
                assert_eq!(usage.tenant.active_runs, 2);
            }
            other => panic!("the key's third concurrent run is refused, got {other:?}"),
        }
        // Runs without the key are still admitted.
        assert!(
            admit_in_transaction(db.conn(), new_run(tenant, None, "business-builder", 0)).await
        );
        for (counter, source) in counters(db, tenant).await {
            assert_eq!(counter, source);
        }
    })
    .await;
}

#[tokio::test]
async fn admission_reserves_tokens_and_counts_busy_workers_until_settled() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "reserve").await; // free: 1,000,000 tokens, 3 workers
        let driver = get_tenant_driver(handle(db));
        let first = admit_at(&driver, new_run(tenant, None, "a", 600_000), now()).await;
        // 400,000 left: a run declaring more is refused, one declaring that much fits.
        let (refused, _) = admit_counted(db.conn(), new_run(tenant, None, "a", 400_001)).await;
        match refused {
            Admission::Refused(usage) => assert_eq!(usage.tenant.tokens_reserved, 600_000),
            other => panic!("over the month's tokens with the reservation, got {other:?}"),
        }
        admit_at(&driver, new_run(tenant, None, "b", 400_000), now()).await;
        assert!(
            !admit_in_transaction(db.conn(), new_run(tenant, None, "c", 0)).await,
            "reserved up to the quota: nothing more"
        );
        // Settling releases the reservation and charges what was used.
        let mut done = driver
            .update_run_completed(tenant, first.id, RunCompletion::default(), now())
            .await
            .unwrap()
            .unwrap();
        done.total_tokens = 100_000;
        driver.settle_run(&done, period(), now()).await.unwrap();
        let snapshot = driver.fetch_tenant_snapshot(tenant).await.unwrap().unwrap();
        assert_eq!(
            (snapshot.tokens_this_month, snapshot.tokens_reserved),
            (100_000, 400_000)
        );
        // Workers: "a" is idle again; "b" is busy; "c" and "d" make three, "e" a fourth.
        for worker in ["c", "d"] {
            admit_at(&driver, new_run(tenant, None, worker, 0), now()).await;
        }
        let (refused, _) = admit_counted(db.conn(), new_run(tenant, None, "e", 0)).await;
        match refused {
            Admission::Refused(usage) => {
                assert!(usage.new_worker);
                assert_eq!(usage.tenant.active_workers, 3);
            }
            other => panic!("a fourth busy worker is refused, got {other:?}"),
        }
        assert!(
            admit_in_transaction(db.conn(), new_run(tenant, None, "c", 0)).await,
            "a busy worker takes another run"
        );
        for (counter, source) in counters(db, tenant).await {
            assert_eq!(counter, source);
        }
    })
    .await;
}

#[tokio::test]
async fn admission_refuses_inactive_tenants_and_exhausted_days() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "quota").await;
        let driver = get_tenant_driver(handle(db));
        driver
            .update_tenant_usage(
                tenant,
                account_drivers::tenants::UsageCounters {
                    runs_today: 100,
                    runs_this_month: 100,
                    tokens_this_month: 0,
                    usage_day: period().day,
                    usage_month: period().month,
                },
                now(),
            )
            .await
            .unwrap();
        let run = || new_run(tenant, None, "business-builder", 0);
        assert!(
            !admit_in_transaction(db.conn(), run()).await,
            "100 runs today is the free limit"
        );
        let tomorrow = UsagePeriod {
            day: period().day.succ_opt().unwrap(),
            month: period().month,
        };
        assert!(matches!(
            driver
                .admit_run(admission_of(run(), tomorrow), now())
                .await
                .unwrap(),
            Admission::Admitted { .. }
        ));

        driver
            .update_tenant_status(
                tenant,
                TenantStatus::Active,
                TenantStatus::Suspended,
                None,
                now(),
            )
            .await
            .unwrap();
        assert!(
            !admit_in_transaction(db.conn(), run()).await,
            "a suspended tenant runs nothing"
        );
    })
    .await;
}

#[tokio::test]
async fn racing_admissions_never_exceed_the_concurrent_limit() {
    for backend in account_testkit::backends().unwrap() {
        if backend.name() != "postgres" {
            continue; // SQLite serialises writers whole; the race is PostgreSQL's to prove
        }
        let db = account_testkit::fresh_db(&backend).await.unwrap();
        let tenant = seed_tenant(&db, "race").await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let conn = db.conn().clone();
            // Two workers, so the worker rows race too.
            let run = new_run(tenant, None, ["a", "b"][i % 2], 0);
            tasks.push(tokio::spawn(async move {
                admit_in_transaction(&conn, run).await
            }));
        }
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap());
        }
        assert_eq!(admitted, 5, "exactly max_concurrent_runs admitted");
        let snapshot = get_tenant_driver(handle(&db))
            .fetch_tenant_snapshot(tenant)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snapshot.runs_today, 5, "no lost or phantom counter updates");
        for (counter, source) in counters(&db, tenant).await {
            assert_eq!(counter, source);
        }
    }
}

#[tokio::test]
async fn completion_is_recorded_once_and_scoped_to_the_tenant() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "done").await;
        let other = seed_tenant(db, "done-other").await;
        let run = admit_at(&driver, new_run(tenant, None, "w", 0), now()).await;
        counter.take();
        assert_eq!(run.status, RunStatus::Queued);

        let completion = RunCompletion {
            success: true,
            total_tokens: 1200,
            total_latency_ms: 900,
            cost_cents: 12,
            ..RunCompletion::default()
        };
        assert!(
            driver
                .update_run_completed(other, run.id, completion.clone(), later(1))
                .await
                .unwrap()
                .is_none(),
            "another tenant cannot complete it"
        );
        let done = driver
            .update_run_completed(tenant, run.id, completion.clone(), later(2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 2);
        assert_eq!(
            (done.status, done.total_tokens, done.completed_at),
            (RunStatus::Completed, 1200, Some(later(2)))
        );
        assert!(
            driver
                .update_run_completed(tenant, run.id, completion, later(3))
                .await
                .unwrap()
                .is_none(),
            "a second completion changes nothing"
        );

        assert_eq!(
            driver
                .fetch_run_by_id(tenant, run.id)
                .await
                .unwrap()
                .unwrap()
                .completed_at,
            Some(later(2))
        );
        assert_eq!(counter.take(), 2);
        assert!(
            driver
                .fetch_run_by_id(other, run.id)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn lists_are_ordered_filtered_and_paged_both_ways() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "list").await;
        let other = seed_tenant(db, "list-other").await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                admit_at(&driver, new_run(tenant, None, "w", 0), later(i))
                    .await
                    .id,
            );
        }
        admit_at(&driver, new_run(other, None, "w", 0), later(9)).await;
        driver
            .update_run_completed(
                tenant,
                ids[0],
                RunCompletion {
                    success: false,
                    ..RunCompletion::default()
                },
                later(10),
            )
            .await
            .unwrap();
        counter.take();

        let page = driver
            .fetch_runs(
                tenant,
                &RunFilter::default(),
                OffsetPage {
                    limit: 2,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "fetch_runs: the tenant's run total, and the page"
        );
        assert_eq!(
            page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[4], ids[3]]
        );
        assert_eq!((page.total, page.has_more), (5, true));

        let failed = RunFilter::default().with_status(RunStatus::Failed);
        let page = driver
            .fetch_runs(
                tenant,
                &failed,
                OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[0]]
        );

        counter.take();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = driver
                .fetch_runs_after(tenant, &RunFilter::default(), after, 2)
                .await
                .unwrap();
            assert_eq!(counter.take(), 1, "fetch_runs_after: one keyset page");
            assert!(page.items.iter().all(|r| r.tenant_id == tenant));
            seen.extend(page.items.iter().map(|r| r.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids.iter().rev().copied().collect::<Vec<_>>());
    })
    .await;
}
