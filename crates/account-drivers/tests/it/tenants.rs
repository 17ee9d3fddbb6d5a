//! `tenants` driver tests.

use crate::support::*;
use account_drivers::tenants::{NewTenant, TenantFilter, UsageCounters};
use account_drivers::types::*;
use account_drivers::{
    OffsetPage, StatementCounter, get_accounts_facade_driver, get_tenant_driver,
};
use chrono::NaiveDate;

fn new_tenant(slug: &str) -> NewTenant {
    NewTenant {
        id: TenantId::new(),
        name: format!("Tenant {slug}"),
        slug: slug.to_owned(),
        plan: PlanCode::pro(),
        quotas: account_drivers::types::PlanQuotas::built_in(&PlanCode::pro()).unwrap(),
        plan_version: 1,
        warn_at_percent: Some(80),
        external_org_id: None,
        billing_email: Some("billing@example.com".into()),
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

#[tokio::test]
async fn insert_returns_the_row_in_one_statement_and_reads_find_it() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = driver
            .insert_tenant(new_tenant("acme"), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(tenant.plan, PlanCode::pro());
        assert_eq!(
            tenant.quotas,
            account_drivers::types::PlanQuotas::built_in(&PlanCode::pro()).unwrap()
        );
        assert_eq!(tenant.status, TenantStatus::Active);
        assert_eq!(tenant.onboarding_state, OnboardingState::Created);

        let read = driver
            .fetch_tenant_snapshot(tenant.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(read, tenant);
        assert_eq!(
            driver
                .fetch_tenant_by_slug("acme")
                .await
                .unwrap()
                .unwrap()
                .id,
            tenant.id
        );
        assert_eq!(counter.take(), 1, "fetch_tenant_by_slug is one statement");
        assert_eq!(
            driver
                .fetch_tenant_by_id(tenant.id)
                .await
                .unwrap()
                .unwrap()
                .slug,
            "acme"
        );
        assert_eq!(counter.take(), 1, "fetch_tenant_by_id is one statement");
        assert!(
            driver
                .fetch_tenant_by_id(TenantId::new())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            driver
                .fetch_tenant_by_slug("nobody")
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn a_taken_slug_is_a_named_conflict() {
    each_backend(async |db| {
        let driver = get_tenant_driver(handle(db));
        driver
            .insert_tenant(new_tenant("taken"), now())
            .await
            .unwrap();
        let error = driver
            .insert_tenant(new_tenant("taken"), now())
            .await
            .unwrap_err();
        assert_eq!(
            error.conflicting_constraint(),
            Some("uq_tenants_slug"),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn plan_and_status_updates_touch_only_their_tenant() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let mine = seed_tenant(db, "mine").await;
        let other = seed_tenant(db, "other").await;

        let updated = driver
            .update_tenant_plan(
                mine,
                &PlanCode::enterprise(),
                account_drivers::tenants::PlanVersionRef {
                    version: 1,
                    warn_at_percent: Some(80),
                },
                account_drivers::types::PlanQuotas::built_in(&PlanCode::enterprise()).unwrap(),
                later(5),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(updated.quotas.max_api_keys, 100);
        assert_eq!(updated.updated_at, later(5));

        // A transition from the wrong state changes nothing.
        let wrong = driver
            .update_tenant_status(
                mine,
                TenantStatus::Suspended,
                TenantStatus::Active,
                None,
                later(6),
            )
            .await
            .unwrap();
        assert!(wrong.is_none());
        assert_eq!(counter.take(), 1, "a refused transition is one statement");
        let suspended = driver
            .update_tenant_status(
                mine,
                TenantStatus::Active,
                TenantStatus::Suspended,
                Some("unpaid"),
                later(7),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1, "update_tenant_status is one statement");
        assert_eq!(suspended.status, TenantStatus::Suspended);
        assert_eq!(suspended.suspended_reason.as_deref(), Some("unpaid"));

        let untouched = driver.fetch_tenant_snapshot(other).await.unwrap().unwrap();
        assert_eq!(untouched.plan, PlanCode::free());
        assert_eq!(untouched.status, TenantStatus::Active);
        assert_eq!(untouched.updated_at, now());
    })
    .await;
}

#[tokio::test]
async fn usage_counters_increment_atomically_and_reset_by_period() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "usage").await;
        let other = seed_tenant(db, "usage-other").await;
        let month = day(1);

        let first = driver
            .increment_tenant_usage(tenant, 1, 100, day(25), month, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(
            (
                first.runs_today,
                first.runs_this_month,
                first.tokens_this_month
            ),
            (1, 1, 100)
        );
        assert_eq!(first.last_run_reset_at, Some(now()));

        let second = driver
            .increment_tenant_usage(tenant, 1, 50, day(25), month, later(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                second.runs_today,
                second.runs_this_month,
                second.tokens_this_month
            ),
            (2, 2, 150)
        );
        assert_eq!(second.last_run_reset_at, Some(now()), "same day: no reset");

        // Next day: the daily counter starts again, the monthly ones keep counting.
        let next_day = driver
            .increment_tenant_usage(tenant, 1, 0, day(26), month, later(86_400))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                next_day.runs_today,
                next_day.runs_this_month,
                next_day.tokens_this_month
            ),
            (1, 3, 150)
        );
        assert_eq!(next_day.usage_day, Some(day(26)));

        // Next month: everything starts again.
        let december = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let next_month = driver
            .increment_tenant_usage(tenant, 1, 7, december, december, later(600_000))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                next_month.runs_today,
                next_month.runs_this_month,
                next_month.tokens_this_month
            ),
            (1, 1, 7)
        );

        let untouched = driver.fetch_tenant_snapshot(other).await.unwrap().unwrap();
        assert_eq!((untouched.runs_today, untouched.tokens_this_month), (0, 0));
        counter.take();

        let set = driver
            .update_tenant_usage(
                tenant,
                UsageCounters {
                    runs_today: 9,
                    runs_this_month: 9,
                    tokens_this_month: 9,
                    usage_day: day(25),
                    usage_month: month,
                },
                later(2),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1, "update_tenant_usage is one statement");
        assert_eq!(
            (set.runs_today, set.tokens_this_month, set.usage_day),
            (9, 9, Some(day(25)))
        );
        let untouched = driver.fetch_tenant_snapshot(other).await.unwrap().unwrap();
        assert_eq!(
            (untouched.runs_today, untouched.usage_day),
            (0, None),
            "the other tenant's counters are untouched"
        );
    })
    .await;
}

#[tokio::test]
async fn lock_tenant_reports_existence() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "lock").await;
        assert!(driver.lock_tenant(tenant).await.unwrap());
        assert_eq!(counter.take(), 1, "lock_tenant is one statement");
        assert!(!driver.lock_tenant(TenantId::new()).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn projects_are_the_tenants_the_user_belongs_to() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let facade = get_accounts_facade_driver(handle(db).counting(&counter));
        let user = seed_user(db, "ann@example.com").await;
        let stranger = seed_user(db, "bob@example.com").await;
        let first = seed_tenant(db, "first").await;
        let second = seed_tenant(db, "second").await;
        let _not_mine = seed_tenant(db, "third").await;
        seed_membership(db, first, user, MembershipRole::Owner).await;
        seed_membership(db, second, user, MembershipRole::Viewer).await;

        let page = facade
            .fetch_tenants(user, TenantFilter::default(), PAGE)
            .await
            .unwrap();
        assert_eq!(counter.take(), 2, "fetch_tenants: count and page");
        let mut ids: Vec<_> = page.items.iter().map(|t| t.id).collect();
        ids.sort();
        let mut expected = vec![first, second];
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(page.total, 2);
        assert!(!page.has_more);
        assert_eq!(
            facade
                .count_tenants(user, TenantFilter::default())
                .await
                .unwrap(),
            2
        );
        assert_eq!(counter.take(), 1, "count_tenants is one statement");
        assert_eq!(
            facade
                .count_tenants(stranger, TenantFilter::default())
                .await
                .unwrap(),
            0
        );

        let one = facade
            .fetch_tenants(
                user,
                TenantFilter::default(),
                OffsetPage {
                    limit: 1,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(one.items.len(), 1);
        assert!(one.has_more);

        let suspended_only = TenantFilter {
            status: Some(TenantStatus::Suspended),
        };
        assert_eq!(facade.count_tenants(user, suspended_only).await.unwrap(), 0);

        counter.take();
        let project = facade
            .insert_project(new_tenant("new-project"), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1, "insert_project is one statement");
        assert_eq!(
            facade.fetch_tenant(project.id).await.unwrap().unwrap().slug,
            "new-project"
        );
        assert_eq!(counter.take(), 1, "fetch_tenant is one statement");
        assert_eq!(
            facade
                .fetch_tenant_detail(project.id)
                .await
                .unwrap()
                .unwrap()
                .quotas,
            account_drivers::types::PlanQuotas::built_in(&PlanCode::pro()).unwrap()
        );
        assert_eq!(counter.take(), 1, "fetch_tenant_detail is one statement");
        assert_eq!(facade.fetch_tenant(TenantId::new()).await.unwrap(), None);
        assert_eq!(
            facade.fetch_tenant_detail(TenantId::new()).await.unwrap(),
            None
        );
    })
    .await;
}
