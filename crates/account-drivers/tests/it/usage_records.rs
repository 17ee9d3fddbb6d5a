//! `usage_records` driver tests.

use crate::support::*;
use account_drivers::types::*;
use account_drivers::usage::{MeterTotal, NewUsageRecord, hour_of};
use account_drivers::{OffsetPage, StatementCounter, get_tenant_driver};

fn record(tenant: TenantId, meter: &str, amount: i64, key: Option<&str>) -> NewUsageRecord {
    NewUsageRecord {
        id: UsageRecordId::new(),
        tenant_id: tenant,
        meter_name: meter.into(),
        amount,
        unit: if meter == "tokens_used" {
            UsageUnit::Tokens
        } else {
            UsageUnit::Count
        },
        worker_id: Some("business-builder".into()),
        api_key_id: None,
        run_id: None,
        idempotency_key: key.map(str::to_owned),
        metadata: None,
    }
}

#[tokio::test]
async fn records_land_in_their_hour_once_per_idempotency_key() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "usage").await;
        let at = later(125); // 10:02:05
        let written = driver
            .insert_usage_record(record(tenant, "worker_runs", 1, Some("run-1")), at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!((written.period_start, written.period_end), hour_of(at));
        assert_eq!(written.period_start, now());

        let again = driver
            .insert_usage_record(record(tenant, "worker_runs", 1, Some("run-1")), at)
            .await
            .unwrap();
        assert!(again.is_none(), "a retried write is a no-op");
        // The same key in another tenant is another record.
        let other = seed_tenant(db, "usage-other").await;
        assert!(
            driver
                .insert_usage_record(record(other, "worker_runs", 1, Some("run-1")), at)
                .await
                .unwrap()
                .is_some()
        );
        // Records without a key never collide.
        assert!(
            driver
                .insert_usage_record(record(tenant, "worker_runs", 1, None), at)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            driver
                .insert_usage_record(record(tenant, "worker_runs", 1, None), at)
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn summaries_sum_per_meter_in_sql_including_the_current_hour() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "sum").await;
        let other = seed_tenant(db, "sum-other").await;
        driver
            .insert_usage_record(record(tenant, "tokens_used", 500, None), later(-7200))
            .await
            .unwrap();
        driver
            .insert_usage_record(record(tenant, "tokens_used", 250, None), later(60))
            .await
            .unwrap();
        driver
            .insert_usage_record(record(tenant, "worker_runs", 1, None), later(90))
            .await
            .unwrap();
        driver
            .insert_usage_record(record(other, "worker_runs", 40, None), later(90))
            .await
            .unwrap();
        counter.take();

        // From the start of today's earlier hour to "now" (10:05): the partial hour counts.
        let totals = driver
            .summarize_usage(tenant, later(-7200), later(300))
            .await
            .unwrap();
        assert_eq!(
            counter.take(),
            1,
            "summarize_usage is one aggregate statement"
        );
        let rows: Vec<(&str, UsageUnit, i64)> = totals
            .iter()
            .map(|t: &MeterTotal| (t.meter_name.as_str(), t.unit, t.total))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("tokens_used", UsageUnit::Tokens, 750),
                ("worker_runs", UsageUnit::Count, 1),
            ]
        );
        let recent = driver
            .summarize_usage(tenant, now(), later(300))
            .await
            .unwrap();
        assert_eq!(recent[0].total, 250);
        assert!(
            driver
                .summarize_usage(tenant, later(3600), later(7200))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(counter.take(), 2, "summarize_usage: one statement per call");
        assert_eq!(
            driver
                .summarize_usage(other, later(-7200), later(300))
                .await
                .unwrap()
                .iter()
                .map(|t| (t.meter_name.as_str(), t.total))
                .collect::<Vec<_>>(),
            vec![("worker_runs", 40)],
            "each tenant sums its own records only"
        );
        counter.take();

        let page = driver
            .fetch_usage_records(
                tenant,
                later(-7200),
                later(300),
                OffsetPage {
                    limit: 2,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(counter.take(), 2, "fetch_usage_records: count and page");
        assert_eq!((page.total, page.has_more, page.items.len()), (3, true, 2));
        assert!(page.items.iter().all(|r| r.tenant_id == tenant));
        assert_eq!(page.items[0].amount, 500, "oldest first");
    })
    .await;
}
