//! No driver method begins, commits or rolls back: proven on sea-orm's mock database, whose
//! transaction log records every statement a call sends.

use crate::support::now;
use account_drivers::api_keys::NewApiKey;
use account_drivers::runs::{NewRun, RunAdmission, RunCompletion, UsagePeriod};
use account_drivers::types::*;
use account_drivers::usage::NewUsageRecord;
use account_drivers::{Db, get_tenant_driver};
use sea_orm::{DatabaseBackend, MockDatabase, MockExecResult, Transaction};

fn assert_no_transaction_control(log: &[Transaction]) {
    for entry in log {
        let sql = format!("{entry:?}").to_uppercase();
        for word in ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT"] {
            assert!(!sql.contains(word), "a driver sent {word}: {sql}");
        }
    }
    assert!(!log.is_empty(), "the calls ran statements");
}

#[tokio::test]
async fn write_methods_send_no_transaction_control() {
    let tenant = TenantId::new();
    let db = MockDatabase::new(DatabaseBackend::Postgres)
        .append_query_results([Vec::<account_models::entities::api_keys::Model>::new()])
        .append_query_results([Vec::<account_models::entities::worker_runs::Model>::new()])
        .append_query_results([Vec::<account_models::entities::worker_runs::Model>::new()])
        .append_exec_results([MockExecResult {
            last_insert_id: 0,
            rows_affected: 1,
        }])
        .into_connection();
    let driver = get_tenant_driver(Db::for_pool(&db));
    let _ = driver
        .insert_api_key(
            NewApiKey {
                id: ApiKeyId::new(),
                tenant_id: tenant,
                user_id: None,
                name: "k".into(),
                key_prefix: "p".into(),
                key_digest: "d".into(),
                permissions: vec![],
                allowed_workers: None,
                rate_limit_rpm: None,
                max_concurrent_runs: None,
                expires_at: None,
                rotated_from_id: None,
                metadata: None,
            },
            now(),
        )
        .await;
    let run = NewRun {
        id: RunId::new(),
        tenant_id: tenant,
        worker_id: "w".into(),
        task: "t".into(),
        api_key_id: None,
        user_id: None,
        input: None,
        parent_run_id: None,
        attempt: 1,
        token_estimate: 0,
        lease_expires_at: now(),
    };
    let usage = NewUsageRecord {
        id: UsageRecordId::new(),
        tenant_id: tenant,
        meter_name: "worker_runs".into(),
        amount: 1,
        unit: UsageUnit::Count,
        worker_id: None,
        api_key_id: None,
        run_id: None,
        idempotency_key: None,
        metadata: None,
    };
    let period = UsagePeriod {
        day: now().date_naive(),
        month: now().date_naive(),
    };
    let _ = driver
        .admit_run(RunAdmission::new(run, period, usage, None), now())
        .await;
    let _ = driver
        .update_run_completed(tenant, RunId::new(), RunCompletion::default(), now())
        .await;
    let _ = driver
        .heartbeat_run(tenant, RunId::new(), now(), now())
        .await;
    let _ = driver.expire_run_lease(tenant, RunId::new(), now()).await;
    let _ = driver
        .touch_api_key_last_used(
            tenant,
            ApiKeyId::new(),
            now(),
            std::time::Duration::from_secs(60),
        )
        .await;
    assert_no_transaction_control(&db.into_transaction_log());
}
