//! `sdk_attestations` driver tests.

use crate::support::*;
use account_drivers::onboarding::NewAttestation;
use account_drivers::{StatementCounter, get_sdk_attestation_driver};

#[tokio::test]
async fn attestations_upsert_per_hash_and_are_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_sdk_attestation_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "sdk").await;
        let other = seed_tenant(db, "sdk-other").await;
        assert!(!driver.has_attestation(tenant).await.unwrap());
        assert_eq!(counter.take(), 1, "has_attestation is one statement");
        assert_eq!(driver.fetch_attestation(tenant).await.unwrap(), None);
        counter.take();
        let attestation = |version| NewAttestation {
            tenant_id: tenant,
            sdk_version: version,
            sdk_language: "python",
            client_id: None,
            attestation_hash: "h1",
        };
        let first = driver
            .write_attestation(attestation("1.0"), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        let again = driver
            .write_attestation(attestation("1.1"), later(5))
            .await
            .unwrap();
        assert_eq!(
            (again.id, again.sdk_version.as_str(), again.attested_at),
            (first.id, "1.1", later(5))
        );
        counter.take();
        assert!(driver.has_attestation(tenant).await.unwrap());
        assert_eq!(counter.take(), 1, "has_attestation is one statement");
        assert!(!driver.has_attestation(other).await.unwrap());
        counter.take();
        assert_eq!(
            driver
                .fetch_attestation(tenant)
                .await
                .unwrap()
                .unwrap()
                .attested_at,
            later(5)
        );
        assert_eq!(counter.take(), 1, "fetch_attestation is one statement");
        assert_eq!(
            driver.fetch_attestation(other).await.unwrap(),
            None,
            "another tenant's attestation is never returned"
        );
    })
    .await;
}
