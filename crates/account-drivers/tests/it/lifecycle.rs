//! `lifecycle` driver tests.

use crate::support::*;
use account_drivers::lifecycle::NewLifecycleEvent;
use account_drivers::types::*;
use account_drivers::{OffsetPage, StatementCounter, get_tenant_lifecycle_driver};

#[tokio::test]
async fn transitions_are_conditional_and_recorded() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_lifecycle_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "life").await;
        let other = seed_tenant(db, "life-other").await;
        assert_eq!(
            driver.fetch_tenant_status(tenant).await.unwrap(),
            Some(TenantStatus::Active)
        );
        assert_eq!(counter.take(), 1, "fetch_tenant_status is one statement");
        assert_eq!(
            driver.fetch_tenant_status(TenantId::new()).await.unwrap(),
            None
        );
        counter.take();

        let wrong = driver
            .update_lifecycle_status(
                tenant,
                TenantStatus::Suspended,
                TenantStatus::Terminated,
                None,
                now(),
            )
            .await
            .unwrap();
        assert!(wrong.is_none(), "from the wrong state nothing changes");
        let change = driver
            .update_lifecycle_status(
                tenant,
                TenantStatus::Active,
                TenantStatus::Suspended,
                Some("abuse"),
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 2);
        assert_eq!(
            (change.previous, change.current),
            (TenantStatus::Active, TenantStatus::Suspended)
        );
        assert_eq!(
            driver.fetch_tenant_status(other).await.unwrap(),
            Some(TenantStatus::Active)
        );
        counter.take();

        let event = driver
            .insert_lifecycle_event(
                NewLifecycleEvent {
                    tenant_id: tenant,
                    from: TenantStatus::Active,
                    to: TenantStatus::Suspended,
                    action: "suspend_tenant".into(),
                    actor_type: ActorType::Founder,
                    actor_id: "ops@example.com".into(),
                    reason: Some("abuse".into()),
                },
                now(),
            )
            .await
            .unwrap();
        assert_eq!(counter.take(), 1, "insert_lifecycle_event is one statement");
        let history = driver
            .fetch_lifecycle_history(
                tenant,
                OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(counter.take(), 2, "fetch_lifecycle_history: count and page");
        assert_eq!(
            (history.total, history.items[0].action.as_str()),
            (1, "suspend_tenant")
        );
        assert_eq!(history.items, vec![event]);
        assert_eq!(
            driver
                .fetch_lifecycle_history(
                    other,
                    OffsetPage {
                        limit: 10,
                        offset: 0
                    }
                )
                .await
                .unwrap()
                .total,
            0
        );
    })
    .await;
}
