//! `subscriptions` driver tests.

use crate::support::*;
use account_drivers::billing::SubscriptionUpsert;
use account_drivers::types::*;
use account_drivers::{StatementCounter, get_accounts_facade_driver};

fn subscription(tenant: TenantId, external_id: &str) -> SubscriptionUpsert {
    SubscriptionUpsert {
        id: SubscriptionId::new(),
        tenant_id: tenant,
        external_id: external_id.into(),
        plan: PlanCode::pro(),
        status: SubscriptionStatus::Trialing,
        billing_period: BillingPeriod::Monthly,
        current_period_start: Some(now()),
        current_period_end: Some(later(30 * 86_400)),
        trial_ends_at: Some(later(14 * 86_400)),
        canceled_at: None,
        cancel_at_period_end: false,
    }
}

#[tokio::test]
async fn upsert_is_one_idempotent_statement() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "billing").await;
        let other = seed_tenant(db, "billing-other").await;

        let input = subscription(tenant, "sub_1");
        let created = driver
            .upsert_subscription(input.clone(), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(created.id, input.id);
        assert_eq!(created.tenant_id, tenant);
        assert_eq!(created.external_id, "sub_1");
        assert_eq!(created.plan, PlanCode::pro());
        assert_eq!(created.status, SubscriptionStatus::Trialing);
        assert_eq!(created.billing_period, BillingPeriod::Monthly);
        assert_eq!(created.current_period_end, Some(later(30 * 86_400)));
        assert_eq!(created.trial_ends_at, Some(later(14 * 86_400)));
        assert_eq!((created.created_at, created.updated_at), (now(), now()));

        // The same external id again: the row is rewritten, keeping its id and creation time.
        let mut replay = subscription(tenant, "sub_1");
        replay.status = SubscriptionStatus::Canceled;
        replay.canceled_at = Some(later(60));
        replay.cancel_at_period_end = true;
        let updated = driver.upsert_subscription(replay, later(60)).await.unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(updated.id, created.id);
        assert_eq!(updated.created_at, now());
        assert_eq!(updated.updated_at, later(60));
        assert_eq!(updated.status, SubscriptionStatus::Canceled);
        assert_eq!(updated.canceled_at, Some(later(60)));
        assert!(updated.cancel_at_period_end);

        // The same external id at another tenant is another row.
        let elsewhere = driver
            .upsert_subscription(subscription(other, "sub_1"), now())
            .await
            .unwrap();
        assert_ne!(elsewhere.id, created.id);
        assert_eq!(
            driver.fetch_subscription(tenant).await.unwrap(),
            Some(updated)
        );
        assert_eq!(
            driver.fetch_subscription(other).await.unwrap(),
            Some(elsewhere)
        );
    })
    .await;
}

#[tokio::test]
async fn fetch_returns_the_tenants_latest_subscription() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "latest").await;
        let other = seed_tenant(db, "latest-other").await;
        assert_eq!(driver.fetch_subscription(tenant).await.unwrap(), None);

        driver
            .upsert_subscription(subscription(tenant, "sub_old"), now())
            .await
            .unwrap();
        let tie_a = driver
            .upsert_subscription(subscription(tenant, "sub_a"), later(10))
            .await
            .unwrap();
        let tie_b = driver
            .upsert_subscription(subscription(tenant, "sub_b"), later(10))
            .await
            .unwrap();
        driver
            .upsert_subscription(subscription(other, "sub_newer"), later(99))
            .await
            .unwrap();
        assert!(tie_a.id < tie_b.id);
        counter.take();

        let latest = driver.fetch_subscription(tenant).await.unwrap().unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(latest.id, tie_b.id, "newest, ties by the larger id");
        assert_eq!(
            driver
                .fetch_subscription(other)
                .await
                .unwrap()
                .unwrap()
                .external_id,
            "sub_newer"
        );
    })
    .await;
}
