//! Run admission and completion through the engine, on each backend.
//!
//! Over 600 lines on purpose: one test binary for admission and completion (link time on 2
//! cores), every scenario sharing the fixtures at the top.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::get_tenant_driver;
use account_drivers::runs::{RunCompletion, RunFilter};
use account_drivers::tenants::NewTenant;
use account_engines::runs::leases::LeaseDuration;
use account_engines::runs::{
    AdmitRunRequest, RunError, RunPrincipal, admit_run, complete_run, get_run, list_runs,
    usage_period,
};
use account_engines::types::*;
use account_engines::{Db, ErrorCode, OffsetPage};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;

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
                plan: PlanCode::free(),
                quotas: account_engines::types::PlanQuotas::built_in(&PlanCode::free()).unwrap(),
                plan_version: 1,
                warn_at_percent: Some(80),
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
    key_limited(db, tenant, None).await
}

/// A key with its own concurrent-run limit.
async fn key_limited(db: Db<'_>, tenant: TenantId, limit: Option<i32>) -> ApiKeyId {
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
                max_concurrent_runs: limit,
                expires_at: None,
                rotated_from_id: None,
                metadata: None,
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
        },
        worker_id: "business-builder".into(),
        task: "write a plan".into(),
        input: None,
        run_id: RunId::new(),
        token_estimate: 0,
        audit: None,
        lease: LeaseDuration::DEFAULT,
    }
}

#[tokio::test]
async fn admission_refuses_the_run_over_the_limit_and_says_why() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "engine-runs").await;
        let key = key(db, tenant).await;
        for admitted_before in 0..5 {
            let admitted = admit_run(db, request(tenant, key), now()).await.unwrap();
            // The counters come back from the admission itself, this run included.
            assert_eq!(admitted.tenant.runs_today, admitted_before + 1);
            assert_eq!(admitted.run.tenant_id, tenant);
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
            .summarize_usage(tenant, now(), now() + TimeDelta::hours(1))
            .await
            .unwrap();
        let admitted: Vec<_> = usage
            .iter()
            .map(|m| (m.meter_name.as_str(), m.total))
            .collect();
        assert_eq!(
            admitted,
            vec![("worker_runs", 5)],
            "one usage record per admitted run, none for the refused one"
        );
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
        let run = admit_run(db, request(tenant, key), now())
            .await
            .unwrap()
            .run;
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
        let second = admit_run(db, request(tenant, key), now())
            .await
            .unwrap()
            .run;
        assert!(matches!(
            complete_run(db, tenant, second.id, negative, now()).await,
            Err(RunError::InvalidMetrics {
                field: "total_tokens"
            })
        ));
        // Found by schemathesis: i64::MAX tokens overflowed the month's counter (a 500).
        let huge = RunCompletion {
            total_tokens: account_engines::runs::MAX_RUN_METRIC + 1,
            ..RunCompletion::default()
        };
        assert!(matches!(
            complete_run(db, tenant, second.id, huge, now()).await,
            Err(RunError::InvalidMetrics {
                field: "total_tokens"
            })
        ));

        // An error text at the bound is stored; one character more is refused, run untouched.
        let max = account_engines::runs::MAX_RUN_ERROR_CHARS;
        let too_long = RunCompletion {
            error: Some("é".repeat(max + 1)),
            ..RunCompletion::default()
        };
        assert!(matches!(
            complete_run(db, tenant, second.id, too_long, now()).await,
            Err(RunError::ErrorTextTooLong { chars }) if chars == max + 1
        ));
        let at_bound = RunCompletion {
            error: Some("é".repeat(max)),
            ..RunCompletion::default()
        };
        let failed = complete_run(db, tenant, second.id, at_bound, now())
            .await
            .unwrap();
        assert_eq!(failed.error.map(|e| e.chars().count()), Some(max));

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

/// Adds to the tenant's counters for the period of `at`, as admissions and completions do.
async fn use_up(db: Db<'_>, tenant: TenantId, runs: i32, tokens: i64, at: DateTime<Utc>) {
    let period = usage_period(at);
    get_tenant_driver(db)
        .increment_tenant_usage(tenant, runs, tokens, period.day, period.month, at)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_daily_run_quota_refuses_through_admission_and_resets_the_next_day() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "runs-daily").await;
        let key = key(db, tenant).await;
        let limit = account_engines::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_runs_per_day;
        use_up(db, tenant, limit - 1, 0, now()).await;
        admit_run(db, request(tenant, key), now()).await.unwrap();
        let refused = admit_run(db, request(tenant, key), now())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, RunError::DailyRunLimit { limit: l, used } if l == limit && used == limit),
            "{refused:?}"
        );
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("quota_runs_per_day", 429)
        );
        assert_eq!(
            refused.to_string(),
            "runs_per_day quota exceeded: 100/100; try again tomorrow (UTC) or upgrade the plan"
        );
        let tomorrow = now() + TimeDelta::days(1);
        admit_run(db, request(tenant, key), tomorrow).await.unwrap();
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
        assert_eq!(page.total, 2, "the refused run was not recorded");
    }
}

#[tokio::test]
async fn the_monthly_token_quota_refuses_through_admission_until_the_next_month() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "runs-tokens").await;
        let key = key(db, tenant).await;
        let limit = account_engines::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_tokens_per_month;
        use_up(db, tenant, 0, limit - 1, now()).await;
        admit_run(db, request(tenant, key), now()).await.unwrap();
        use_up(db, tenant, 0, 1, now()).await;
        let refused = admit_run(db, request(tenant, key), now())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, RunError::MonthlyTokenLimit { limit: l, used, .. } if l == limit && used == limit),
            "{refused:?}"
        );
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("quota_tokens_per_month", 429)
        );
        // Tokens count per calendar month: on the 1st they start from zero.
        let next_month = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        admit_run(db, request(tenant, key), next_month)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_keys_own_concurrency_limit_refuses_through_admission() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "runs-key-limit").await;
        let narrow = key_limited(db, tenant, Some(1)).await;
        let wide = key(db, tenant).await;
        let first = admit_run(db, request(tenant, narrow), now())
            .await
            .unwrap()
            .run;
        let refused = admit_run(db, request(tenant, narrow), now())
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                RunError::KeyConcurrentRunLimit {
                    limit: 1,
                    active: 1
                }
            ),
            "{refused:?}"
        );
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("quota_key_concurrent_runs", 429)
        );
        // Another key of the tenant is not held back by this key's limit.
        admit_run(db, request(tenant, wide), now()).await.unwrap();
        // Once the key's run finishes, it may start another.
        complete_run(db, tenant, first.id, RunCompletion::default(), now())
            .await
            .unwrap();
        admit_run(db, request(tenant, narrow), now()).await.unwrap();
    }
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_through_admission() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "runs-suspended").await;
        let key = key(db, tenant).await;
        get_tenant_driver(db)
            .update_tenant_status(
                tenant,
                TenantStatus::Active,
                TenantStatus::Suspended,
                Some("unpaid"),
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        let refused = admit_run(db, request(tenant, key), now())
            .await
            .unwrap_err();
        assert!(matches!(
            refused,
            RunError::TenantInactive {
                status: TenantStatus::Suspended
            }
        ));
        assert_eq!(refused.http_status(), 403);
    }
}

#[tokio::test]
async fn runs_are_listed_by_status_worker_and_key() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let other = tenant(db, "runs-filter-other").await;
        let tenant = tenant(db, "runs-filter").await;
        let a = key(db, tenant).await;
        let b = key(db, tenant).await;
        let theirs = key(db, other).await;
        let run = |key, worker: &str, at| {
            let mut request = request(tenant, key);
            request.worker_id = worker.into();
            async move {
                admit_run(db, request, at)
                    .await
                    .map(|admitted| admitted.run)
            }
        };
        let first = run(a, "builder", now()).await.unwrap();
        let second = run(a, "critic", now() + TimeDelta::seconds(1))
            .await
            .unwrap();
        let third = run(b, "builder", now() + TimeDelta::seconds(2))
            .await
            .unwrap();
        admit_run(db, request(other, theirs), now()).await.unwrap();
        let success = RunCompletion {
            success: true,
            ..RunCompletion::default()
        };
        complete_run(db, tenant, first.id, success, now())
            .await
            .unwrap();

        let ids = |filter: RunFilter| async move {
            list_runs(
                db,
                tenant,
                &filter,
                OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(RunFilter::default()).await,
            vec![third.id, second.id, first.id],
            "newest first, this tenant's only"
        );
        assert_eq!(
            ids(RunFilter::default().with_status(RunStatus::Completed)).await,
            vec![first.id]
        );
        assert_eq!(
            ids(RunFilter::default().with_status(RunStatus::Queued)).await,
            vec![third.id, second.id]
        );
        assert_eq!(
            ids(RunFilter::default().with_worker("builder")).await,
            vec![third.id, first.id]
        );
        assert_eq!(
            ids(RunFilter::default().with_api_key(a)).await,
            vec![second.id, first.id]
        );
        assert_eq!(
            ids(RunFilter::default()
                .with_status(RunStatus::Queued)
                .with_worker("builder")
                .with_api_key(b))
            .await,
            vec![third.id]
        );
        assert!(
            ids(RunFilter::default().with_api_key(theirs))
                .await
                .is_empty(),
            "another tenant's key finds nothing here"
        );
    }
}

/// Found by schemathesis: PostgreSQL cannot store NUL, SQLite can; both refuse it alike.
/// A refused completion leaves the run open and counts nothing; a refused admission
/// starts no run.
#[tokio::test]
async fn run_text_holding_nul_is_refused_and_nothing_is_written() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "engine-nul").await;
        let key = key(db, tenant).await;
        let run = admit_run(db, request(tenant, key), now())
            .await
            .unwrap()
            .run;
        let refusals = [
            (
                RunCompletion {
                    output: Some(json!({"a": [{"b": "x\u{0}y"}]})),
                    ..RunCompletion::default()
                },
                "output.a[0].b",
                false,
            ),
            (
                RunCompletion {
                    output: Some(json!({"a": {"k\u{0}": 1}})),
                    ..RunCompletion::default()
                },
                "output.a",
                true,
            ),
            (
                RunCompletion {
                    replay_token: Some(json!(["\u{0}"])),
                    ..RunCompletion::default()
                },
                "replay_token[0]",
                false,
            ),
            (
                RunCompletion {
                    error: Some("bad\u{0}".into()),
                    ..RunCompletion::default()
                },
                "error",
                false,
            ),
        ];
        for (completion, field, in_key) in refusals {
            let completion = RunCompletion {
                success: true,
                total_tokens: 10,
                ..completion
            };
            let error = complete_run(db, tenant, run.id, completion, now())
                .await
                .unwrap_err();
            let RunError::TextHasNul(nul) = &error else {
                panic!("{}: {error:?}", backend.name());
            };
            assert_eq!((nul.field.as_str(), nul.in_key), (field, in_key));
            assert_eq!((error.http_status(), error.code()), (422, "text_has_nul"));
            let unchanged = get_run(db, tenant, run.id).await.unwrap();
            assert_eq!(
                (unchanged.status, unchanged.total_tokens),
                (RunStatus::Queued, 0)
            );
        }

        let nul_task = AdmitRunRequest {
            task: "write\u{0}".into(),
            ..request(tenant, key)
        };
        let nul_input = AdmitRunRequest {
            input: Some(json!({"deep": {"k\u{0}": "v"}})),
            ..request(tenant, key)
        };
        for (admission, field) in [(nul_task, "task"), (nul_input, "input.deep")] {
            let error = admit_run(db, admission, now()).await.unwrap_err();
            assert!(
                matches!(&error, RunError::TextHasNul(nul) if nul.field == field),
                "{}: {error:?}",
                backend.name()
            );
        }
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
        assert_eq!(page.total, 1, "the refused admissions started no run");
    }
}
