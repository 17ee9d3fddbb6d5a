//! `usage_records` driver tests.

use crate::support::*;
use account_drivers::types::*;
use account_drivers::usage::{MeterTotal, NewUsageRecord, hour_of};
use account_drivers::{OffsetPage, StatementCounter, get_tenant_driver};
use chrono::{DateTime, TimeDelta, Utc};

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
        assert_eq!(counter.take(), 2, "the record, then its hour's total");
        assert_eq!((written.period_start, written.period_end), hour_of(at));
        assert_eq!(written.period_start, now());

        let again = driver
            .insert_usage_record(record(tenant, "worker_runs", 1, Some("run-1")), at)
            .await
            .unwrap();
        assert!(again.is_none(), "a retried write is a no-op");
        assert_eq!(counter.take(), 1, "and leaves the hour's total alone");
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

/// One record the property test writes: meter (and its unit), amount, hour offset from
/// `now()` (-60 days to +2), minute, and an idempotency key drawn from a small set so that
/// retries happen.
type Written = (usize, i64, i64, i64, Option<u8>);

/// A period as a client in some time zone asks for it: local midnight of a day offset from
/// `now()`, a length in hours, and a UTC offset in minutes (whole and half hours, e.g.
/// +05:30).
type Asked = (i64, i64, i32);

const METERS: [(&str, UsageUnit); 3] = [
    ("worker_runs", UsageUnit::Count),
    ("tokens_used", UsageUnit::Tokens),
    ("run_seconds", UsageUnit::Seconds),
];

fn asked_period((day, hours, offset_minutes): Asked) -> (DateTime<Utc>, DateTime<Utc>) {
    let zone = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
    let local_day = (now() + TimeDelta::days(day))
        .with_timezone(&zone)
        .date_naive();
    let start = local_day
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(zone)
        .unwrap()
        .with_timezone(&Utc);
    (start, start + TimeDelta::hours(hours))
}

/// What the summary must say: the records (each idempotency key once) of the hours from the
/// one containing `start` up to `end`, summed per meter and unit.
fn expected(
    written: &[Written],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(String, UsageUnit, i64)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut totals = std::collections::BTreeMap::new();
    for &(meter, amount, hour, minute, key) in written {
        if let Some(key) = key
            && !seen.insert(key)
        {
            continue;
        }
        let (hour_start, _) = hour_of(later(hour * 3600 + minute * 60));
        if hour_start >= hour_of(start).0 && hour_start < end {
            let (name, unit) = METERS[meter];
            *totals.entry((name, unit.as_str())).or_insert(0) += amount;
        }
    }
    totals
        .into_iter()
        .map(|((name, unit), total)| {
            (
                name.to_owned(),
                UsageUnit::parse_exact(unit).unwrap(),
                total,
            )
        })
        .collect()
}

#[test]
fn hourly_totals_always_equal_the_records_summed() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records = proptest::collection::vec(
        (
            0..METERS.len(),
            1..1_000_000i64,
            -60 * 24..48i64,
            0..60i64,
            proptest::option::of(0..8u8),
        ),
        0..60,
    );
    let periods = proptest::collection::vec(
        (
            -62..3i64,
            1..24 * 70i64,
            (-24..=28i32).prop_map(|half_hours| half_hours * 30),
        ),
        1..6,
    );
    for backend in account_testkit::backends().unwrap() {
        let db = runtime
            .block_on(account_testkit::fresh_db(&backend))
            .unwrap();
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        // A tenant per case: a failing case shrinks against a clean slate.
        let outcome = runner.run(&(records.clone(), periods.clone()), |(written, asked)| {
            runtime.block_on(async {
                let driver = get_tenant_driver(handle(&db));
                let tenant = seed_tenant(&db, &format!("p-{}", TenantId::new())).await;
                for &(meter, amount, hour, minute, key) in &written {
                    let (name, unit) = METERS[meter];
                    let mut new = record(tenant, name, amount, None);
                    new.unit = unit;
                    new.idempotency_key = key.map(|k| format!("retry-{k}"));
                    driver
                        .insert_usage_record(new, later(hour * 3600 + minute * 60))
                        .await
                        .unwrap();
                }
                for period in asked {
                    let (start, end) = asked_period(period);
                    let summed: Vec<_> = driver
                        .summarize_usage(tenant, start, end)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|t| (t.meter_name, t.unit, t.total))
                        .collect();
                    prop_assert_eq!(summed, expected(&written, start, end), "{:?}", period);
                }
                Ok(())
            })
        });
        if let Err(failure) = outcome {
            panic!("{}: {failure}", backend.name());
        }
    }
}
