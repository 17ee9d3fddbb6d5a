//! `worker_runs` driver tests, including admission raced by many transactions.

use crate::support::*;
use account_drivers::runs::{
    Admission, KeyConcurrency, NewRun, RunCompletion, RunFilter, UsagePeriod,
};
use account_drivers::types::*;
use account_drivers::{Db, OffsetPage, StatementCounter, get_tenant_driver};
use chrono::NaiveDate;
use sea_orm::{DatabaseConnection, SqliteTransactionMode, TransactionOptions, TransactionTrait};

fn period() -> UsagePeriod {
    UsagePeriod {
        day: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        month: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
    }
}

fn new_run(tenant: TenantId, key: Option<ApiKeyId>) -> NewRun {
    NewRun {
        id: RunId::new(),
        tenant_id: tenant,
        worker_id: "business-builder".into(),
        task: "draft a plan".into(),
        api_key_id: key,
        user_id: None,
        input: Some(serde_json::json!({"goal": "x"})),
        parent_run_id: None,
        attempt: 1,
    }
}

/// Admits one run (and inserts it when admitted) in its own transaction, as the spine does;
/// returns the admission and how many statements `admit_run` sent.
async fn admit_counted(
    conn: &DatabaseConnection,
    tenant: TenantId,
    key: Option<KeyConcurrency>,
) -> (Admission, u64) {
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
        .admit_run(tenant, key, period(), now())
        .await
        .unwrap();
    let statements = counter.take();
    if let Admission::Admitted(_) = admission {
        driver
            .insert_run(new_run(tenant, key.map(|k| k.api_key_id)), now())
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
    (admission, statements)
}

/// Admits and inserts one run in its own transaction; whether it was admitted.
async fn admit_in_transaction(
    conn: &DatabaseConnection,
    tenant: TenantId,
    key: Option<KeyConcurrency>,
) -> bool {
    matches!(
        admit_counted(conn, tenant, key).await.0,
        Admission::Admitted(_)
    )
}

#[tokio::test]
async fn admission_counts_and_refuses_with_the_usage_that_refused() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "runs").await; // free: 5 concurrent, 100 per day
        let other = seed_tenant(db, "runs-other").await;
        for _ in 0..5 {
            let (admission, statements) = admit_counted(db.conn(), tenant, None).await;
            assert!(matches!(admission, Admission::Admitted(_)), "{admission:?}");
            assert_eq!(
                statements, 2,
                "admitted: the lock and the conditional update"
            );
        }
        let (refused, statements) = admit_counted(db.conn(), tenant, None).await;
        match refused {
            Admission::Refused(usage) => {
                assert_eq!((usage.active_runs, usage.key_active_runs), (5, 0));
                assert_eq!(usage.tenant.runs_today, 5);
            }
            other => panic!("the sixth concurrent run is refused, got {other:?}"),
        }
        assert_eq!(
            statements, 3,
            "refused: the lock, the conditional update and one read of the usage"
        );

        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        match driver
            .admit_run(tenant, None, period(), now())
            .await
            .unwrap()
        {
            Admission::Refused(usage) => {
                assert_eq!(usage.active_runs, 5);
                assert_eq!(usage.tenant.runs_today, 5);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            counter.take(),
            3,
            "refused on a pool handle: the same three"
        );
        assert_eq!(driver.count_running_runs(tenant).await.unwrap().count, 5);
        assert_eq!(counter.take(), 1, "count_running_runs is one statement");
        assert_eq!(driver.count_running_runs(other).await.unwrap().count, 0);
        counter.take();
        assert!(matches!(
            driver
                .admit_run(TenantId::new(), None, period(), now())
                .await
                .unwrap(),
            Admission::TenantMissing
        ));
        assert_eq!(counter.take(), 1, "a missing tenant stops at the lock");
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
        let key = crate::api_keys::seed_key(db, tenant).await;
        let limited = Some(KeyConcurrency {
            api_key_id: key,
            max_concurrent_runs: Some(2),
        });
        assert!(admit_in_transaction(db.conn(), tenant, limited).await);
        let (admission, statements) = admit_counted(db.conn(), tenant, limited).await;
        assert!(matches!(admission, Admission::Admitted(_)), "{admission:?}");
        assert_eq!(statements, 2, "admitted with a key limit: still two");
        let (refused, statements) = admit_counted(db.conn(), tenant, limited).await;
        match refused {
            Admission::Refused(usage) => {
                assert_eq!((usage.active_runs, usage.key_active_runs), (2, 2));
            }
            other => panic!("the key's third concurrent run is refused, got {other:?}"),
        }
        assert_eq!(statements, 3, "refused with a key limit: still three");
        // Runs without the key are still admitted.
        assert!(admit_in_transaction(db.conn(), tenant, None).await);
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
        assert!(
            !admit_in_transaction(db.conn(), tenant, None).await,
            "100 runs today is the free limit"
        );
        let tomorrow = UsagePeriod {
            day: period().day.succ_opt().unwrap(),
            month: period().month,
        };
        assert!(matches!(
            driver
                .admit_run(tenant, None, tomorrow, now())
                .await
                .unwrap(),
            Admission::Admitted(_)
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
            !admit_in_transaction(db.conn(), tenant, None).await,
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
        for _ in 0..24 {
            let conn = db.conn().clone();
            tasks.push(tokio::spawn(async move {
                admit_in_transaction(&conn, tenant, None).await
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
    }
}

#[tokio::test]
async fn completion_is_recorded_once_and_scoped_to_the_tenant() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "done").await;
        let other = seed_tenant(db, "done-other").await;
        let run = driver
            .insert_run(new_run(tenant, None), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
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
                driver
                    .insert_run(new_run(tenant, None), later(i))
                    .await
                    .unwrap()
                    .id,
            );
        }
        driver
            .insert_run(new_run(other, None), later(9))
            .await
            .unwrap();
        // Inserted without admission's limits: counted as admission would have.
        count_as_admitted(db, tenant, 5).await;
        count_as_admitted(db, other, 1).await;
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
