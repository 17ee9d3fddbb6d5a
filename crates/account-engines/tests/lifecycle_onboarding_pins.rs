//! Lifecycle, onboarding, SDK attestation and memory pin rules through the engines, on each
//! backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::get_tenant_driver;
use account_drivers::tenants::NewTenant;
use account_engines::lifecycle::{self, LifecycleAction, LifecycleActor, LifecycleError};
use account_engines::memory_pins::{self, MemoryPinError, SavePin};
use account_engines::onboarding::{self, ForcedCompletion, OnboardingError};
use account_engines::sdk_attestations;
use account_engines::types::*;
use account_engines::{Db, OffsetPage};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn tenant(db: Db<'_>, slug: &str) -> TenantId {
    let id = TenantId::new();
    get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id,
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
        .unwrap();
    id
}

fn founder() -> LifecycleActor {
    LifecycleActor {
        actor_type: ActorType::Founder,
        actor_id: "ops@example.com".into(),
    }
}

#[tokio::test]
async fn lifecycle_transitions_follow_the_machine_and_are_recorded() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "life").await;
        let suspended = lifecycle::transition(
            db,
            tenant,
            LifecycleAction::Suspend,
            &founder(),
            "unpaid",
            now(),
        )
        .await
        .unwrap();
        assert_eq!(
            (suspended.from, suspended.to, suspended.was_no_op),
            (TenantStatus::Active, TenantStatus::Suspended, false)
        );
        let again = lifecycle::transition(
            db,
            tenant,
            LifecycleAction::Suspend,
            &founder(),
            "unpaid",
            now(),
        )
        .await
        .unwrap();
        assert!(
            again.was_no_op,
            "a transition to the current status is an idempotent no-op"
        );
        let archive =
            lifecycle::transition(db, tenant, LifecycleAction::Archive, &founder(), "x", now())
                .await
                .unwrap_err();
        assert!(matches!(archive, LifecycleError::InvalidTransition { .. }));
        let user = LifecycleActor {
            actor_type: ActorType::User,
            actor_id: "u".into(),
        };
        assert!(matches!(
            lifecycle::transition(db, tenant, LifecycleAction::Resume, &user, "x", now()).await,
            Err(LifecycleError::Forbidden)
        ));
        lifecycle::transition(
            db,
            tenant,
            LifecycleAction::Terminate,
            &founder(),
            "closed",
            now(),
        )
        .await
        .unwrap();
        lifecycle::transition(
            db,
            tenant,
            LifecycleAction::Archive,
            &founder(),
            "retention",
            now(),
        )
        .await
        .unwrap();
        let out_of_archive = lifecycle::transition(
            db,
            tenant,
            LifecycleAction::Resume,
            &founder(),
            "oops",
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(
            out_of_archive,
            LifecycleError::InvalidTransition {
                from: TenantStatus::Archived,
                ..
            }
        ));
        let history = lifecycle::history(
            db,
            tenant,
            OffsetPage {
                limit: 10,
                offset: 0,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            history.total, 3,
            "three real transitions, no entry for the no-op"
        );
    }
}

#[tokio::test]
async fn onboarding_needs_evidence_unless_forced() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "onboard").await;
        let advanced = onboarding::advance(db, tenant, OnboardingState::SdkConnected, None, now())
            .await
            .unwrap();
        assert_eq!(
            (advanced.from, advanced.to),
            (OnboardingState::Created, OnboardingState::SdkConnected)
        );
        let back = onboarding::advance(db, tenant, OnboardingState::IdentityVerified, None, now())
            .await
            .unwrap();
        assert!(back.was_no_op, "an onboarding regression is a no-op");
        assert_eq!(back.to, OnboardingState::SdkConnected);

        let refused = onboarding::advance(db, tenant, OnboardingState::Complete, None, now())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, OnboardingError::ActivationIncomplete { ref missing } if missing.contains("API key") && missing.contains("SDK")),
            "{refused}"
        );

        sdk_attestations::attest(db, tenant, "1.2.0", "python", None, now())
            .await
            .unwrap();
        let still = onboarding::advance(db, tenant, OnboardingState::Complete, None, now())
            .await
            .unwrap_err();
        assert!(
            matches!(still, OnboardingError::ActivationIncomplete { ref missing } if !missing.contains("SDK"))
        );

        let force = ForcedCompletion {
            actor_type: ActorType::Founder,
            reason: "enterprise pilot".into(),
        };
        let forced =
            onboarding::advance(db, tenant, OnboardingState::Complete, Some(&force), now())
                .await
                .unwrap();
        assert!(forced.forced && forced.to == OnboardingState::Complete);
        let not_staff = ForcedCompletion {
            actor_type: ActorType::User,
            reason: "please".into(),
        };
        assert!(matches!(
            onboarding::advance(
                db,
                tenant,
                OnboardingState::Complete,
                Some(&not_staff),
                now()
            )
            .await,
            Err(OnboardingError::Forbidden)
        ));
    }
}

#[tokio::test]
async fn memory_pins_validate_renew_and_audit() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "pins").await;
        let pin = |key: &str, value, ttl| SavePin {
            key: key.into(),
            value,
            source: None,
            ttl_seconds: ttl,
        };
        memory_pins::upsert(
            db,
            tenant,
            pin("agent:cfg", json!({"a": 1}), Some(60)),
            now(),
        )
        .await
        .unwrap();
        assert!(matches!(
            memory_pins::upsert(db, tenant, pin("../etc", json!({}), None), now()).await,
            Err(MemoryPinError::InvalidKey(_))
        ));
        assert!(matches!(
            memory_pins::upsert(db, tenant, pin("k", json!([1]), None), now()).await,
            Err(MemoryPinError::ValueNotObject)
        ));
        assert!(matches!(
            memory_pins::upsert(db, tenant, pin("k", json!({}), Some(-1)), now()).await,
            Err(MemoryPinError::InvalidTtl)
        ));

        let later = now() + TimeDelta::seconds(61);
        assert!(matches!(
            memory_pins::get(db, tenant, "agent:cfg", later).await,
            Err(MemoryPinError::NotFound)
        ));
        memory_pins::upsert(
            db,
            tenant,
            pin("agent:cfg", json!({"a": 2}), Some(60)),
            later,
        )
        .await
        .unwrap();
        assert_eq!(
            memory_pins::get(db, tenant, "agent:cfg", later)
                .await
                .unwrap()
                .value,
            json!({"a": 2}),
            "re-saving renews the TTL"
        );
        assert!(
            memory_pins::delete(db, tenant, "agent:cfg", later)
                .await
                .unwrap()
        );
        let audit = account_drivers::get_memory_pins_driver(db)
            .fetch_audit(
                tenant,
                OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        let operations: Vec<_> = audit.items.iter().map(|e| e.operation.as_str()).collect();
        assert_eq!(
            operations.len(),
            4,
            "two upserts, one hit, one delete: {operations:?}"
        );
        assert_eq!(memory_pins::cleanup(db, tenant, later).await.unwrap(), 0);
    }
}
