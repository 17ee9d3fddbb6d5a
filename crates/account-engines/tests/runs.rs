//! Run admission and completion through the engine, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::get_tenant_driver;
use account_drivers::runs::{RunCompletion, RunFilter};
use account_drivers::tenants::NewTenant;
use account_engines::runs::{
    AdmitRunRequest, RunError, RunPrincipal, admit_run, complete_run, get_run, list_runs,
};
use account_engines::types::*;
use account_engines::{Db, OffsetPage};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn tenant(db: Db<'_>, slug: &str) -> TenantId {
    get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id: TenantId::new(),
                name: slug.into(),
                slug: slug.into(),
                plan: Plan::Free,
                quotas: Plan::Free.quotas(),
                external_org_id: None,
                billing_email: None,
            },
            now(),
        )
        .await
        .unwrap()
        .id
}

/// The runs are started with a real key (runs reference their key and user).
async fn key(db: Db<'_>, tenant: TenantId) -> ApiKeyId {
    let id = ApiKeyId::new();
    get_tenant_driver(db)
        .insert_api_key(
            account_drivers::api_keys::NewApiKey {
                id,
                tenant_id: tenant,
                user_id: None,
                name: "ci".into(),
                key_prefix: "acc_live_test".into(),
                key_digest: id.to_string(),
                permissions: vec!["run:*".into()],
                allowed_workers: None,
                rate_limit_rpm: None,
                max_concurrent_runs: None,
                expires_at: None,
                rotated_from_id: None,
            },
            now(),
        )
        .await
        .unwrap();
    id
}

fn request(tenant: TenantId, key: ApiKeyId) -> AdmitRunRequest {
    AdmitRunRequest {
        tenant_id: tenant,
        principal: RunPrincipal::ApiKey {
            key_id: key,
            allowed_workers: None,
            max_concurrent_runs: None,
        },
        worker_id: "business-builder".into(),
        task: "write a plan".into(),
        input: None,
    }
}

#[tokio::test]
async fn admission_refuses_the_run_over_the_limit_and_says_why() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "engine-runs").await;
        let key = key(db, tenant).await;
        for _ in 0..5 {
            admit_run(db, request(tenant, key), now()).await.unwrap();
        }
        let refused = admit_run(db, request(tenant, key), now())
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                RunError::ConcurrentRunLimit {
                    limit: 5,
                    active: 5
                }
            ),
            "{refused}"
        );
        assert_eq!(
            refused.to_string(),
            "concurrent_runs quota exceeded: 5/5; wait for a run to finish"
        );
        assert!(matches!(
            admit_run(db, request(TenantId::new(), key), now()).await,
            Err(RunError::TenantNotFound)
        ));
        let usage = get_tenant_driver(db)
            .summarize_usage(tenant, now(), now())
            .await
            .unwrap();
        assert!(usage.is_empty() || usage[0].total == 5);
    }
}

#[tokio::test]
async fn completion_counts_tokens_once_and_is_scoped() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "engine-done").await;
        let key = key(db, tenant).await;
        let other = tenant_other(db).await;
        let run = admit_run(db, request(tenant, key), now()).await.unwrap();
        let completion = || RunCompletion {
            success: true,
            total_tokens: 300,
            cost_cents: 3,
            ..RunCompletion::default()
        };

        assert!(matches!(
            complete_run(db, other, run.id, completion(), now()).await,
            Err(RunError::RunNotFound)
        ));
        let done = complete_run(db, tenant, run.id, completion(), now())
            .await
            .unwrap();
        assert_eq!(
            (done.status, done.total_tokens),
            (RunStatus::Completed, 300)
        );
        let again = complete_run(db, tenant, run.id, completion(), now())
            .await
            .unwrap_err();
        assert!(matches!(
            again,
            RunError::AlreadyFinished {
                status: RunStatus::Completed
            }
        ));

        let snapshot = get_tenant_driver(db)
            .fetch_tenant_snapshot(tenant)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snapshot.tokens_this_month, 300, "tokens counted once");
        let usage = get_tenant_driver(db)
            .summarize_usage(tenant, now(), now() + chrono::TimeDelta::hours(1))
            .await
            .unwrap();
        let tokens: Vec<_> = usage
            .iter()
            .filter(|m| m.meter_name == "tokens_used")
            .map(|m| m.total)
            .collect();
        assert_eq!(tokens, vec![300]);

        let negative = RunCompletion {
            total_tokens: -1,
            ..RunCompletion::default()
        };
        let second = admit_run(db, request(tenant, key), now()).await.unwrap();
        assert!(matches!(
            complete_run(db, tenant, second.id, negative, now()).await,
            Err(RunError::InvalidMetrics {
                field: "total_tokens"
            })
        ));

        assert_eq!(get_run(db, tenant, run.id).await.unwrap().id, run.id);
        let page = list_runs(
            db,
            tenant,
            &RunFilter::default(),
            OffsetPage {
                limit: 10,
                offset: 0,
            },
        )
        .await
        .unwrap();
        assert_eq!(page.total, 2);
        assert!(matches!(
            list_runs(
                db,
                tenant,
                &RunFilter::default(),
                OffsetPage {
                    limit: 0,
                    offset: 0
                }
            )
            .await,
            Err(RunError::InvalidPage)
        ));
    }
}

async fn tenant_other(db: Db<'_>) -> TenantId {
    tenant(db, "engine-other").await
}
