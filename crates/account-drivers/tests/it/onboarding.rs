//! `onboarding` driver tests.

use crate::support::*;
use account_drivers::types::*;
use account_drivers::{OffsetPage, StatementCounter, get_onboarding_driver};

#[tokio::test]
async fn onboarding_only_moves_forward() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_onboarding_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "onboard").await;
        let other = seed_tenant(db, "onboard-other").await;
        assert_eq!(
            driver.fetch_onboarding_state(tenant).await.unwrap(),
            Some(OnboardingState::Created)
        );
        assert_eq!(counter.take(), 1, "fetch_onboarding_state is one statement");
        assert_eq!(
            driver
                .fetch_onboarding_state(TenantId::new())
                .await
                .unwrap(),
            None
        );
        counter.take();

        let written = driver
            .write_onboarding_state(tenant, OnboardingState::IdentityVerified, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1, "a write that moves is one statement");
        assert_eq!(
            (written.changed, written.current),
            (true, OnboardingState::IdentityVerified)
        );
        let moved = driver
            .advance_onboarding_state(tenant, OnboardingState::SdkConnected, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1, "an advance that moves is one statement");
        assert!(moved.changed);
        let regress = driver
            .write_onboarding_state(tenant, OnboardingState::ApiKeyCreated, now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            counter.take(),
            2,
            "a write that does not move is the refused update plus one read"
        );
        assert_eq!(
            (regress.changed, regress.current),
            (false, OnboardingState::SdkConnected),
            "never backwards"
        );
        assert_eq!(
            driver.fetch_onboarding_state(other).await.unwrap(),
            Some(OnboardingState::Created)
        );
        assert!(
            driver
                .advance_onboarding_state(TenantId::new(), OnboardingState::Complete, now())
                .await
                .unwrap()
                .is_none()
        );

        let stalled = driver
            .list_stalled(
                later(1),
                OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(stalled.total, 2);
    })
    .await;
}
