//! Lifecycle, onboarding, SDK attestation and memory pin rules through the engines, on each
//! backend.
//!
//! Over 600 lines: four small areas' engine rules, each a handful of tests sharing one setup.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::get_tenant_driver;
use account_drivers::tenants::NewTenant;
use account_engines::lifecycle::{self, LifecycleAction, LifecycleActor, LifecycleError};
use account_engines::memory_pins::{self, MemoryPinError, SavePin};
use account_engines::onboarding::{self, ForcedCompletion, OnboardingError};
use account_engines::types::*;
use account_engines::{Db, ErrorCode, OffsetPage};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn tenant(db: Db<'_>, slug: &str) -> TenantId {
    tenant_on(db, slug, PlanCode::free()).await
}

async fn tenant_on(db: Db<'_>, slug: &str, plan: PlanCode) -> TenantId {
    let id = TenantId::new();
    get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id,
                name: slug.into(),
                slug: slug.into(),
                quotas: account_engines::types::PlanQuotas::built_in(&plan).unwrap(),
                plan,
                plan_version: 1,
                warn_at_percent: Some(80),
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
            .unwrap_err();
        assert!(
            matches!(
                back,
                OnboardingError::Regression {
                    current: OnboardingState::SdkConnected,
                    target: OnboardingState::IdentityVerified
                }
            ),
            "an onboarding regression is refused: {back:?}"
        );
        assert_eq!(
            (back.code(), back.http_status()),
            ("onboarding_regression", 409)
        );
        assert_eq!(
            onboarding::state(db, tenant).await.unwrap(),
            OnboardingState::SdkConnected,
            "and changes nothing"
        );
        let same = onboarding::advance(db, tenant, OnboardingState::SdkConnected, None, now())
            .await
            .unwrap();
        assert!(
            same.was_no_op && same.from == same.to && same.to == OnboardingState::SdkConnected,
            "the current state is an idempotent no-op"
        );
        // The evidence-driven form never refuses for being past the target.
        let reached = onboarding::reach(db, tenant, OnboardingState::ApiKeyCreated, now())
            .await
            .unwrap();
        assert!(reached.was_no_op && reached.to == OnboardingState::SdkConnected);

        let refused = onboarding::advance(db, tenant, OnboardingState::Complete, None, now())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, OnboardingError::ActivationIncomplete { ref missing } if missing.contains("API key") && missing.contains("SDK")),
            "{refused}"
        );

        onboarding::attest(db, tenant, "1.2.0", "python", None, now())
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
        let again = onboarding::advance(db, tenant, OnboardingState::Complete, Some(&force), now())
            .await
            .unwrap();
        assert!(
            again.was_no_op && !again.forced,
            "forcing again changes nothing"
        );
        assert!(matches!(
            onboarding::advance(db, tenant, OnboardingState::SdkConnected, None, now()).await,
            Err(OnboardingError::Regression { .. })
        ));
        assert!(
            onboarding::reach(db, tenant, OnboardingState::SdkConnected, now())
                .await
                .unwrap()
                .was_no_op,
            "an SDK handshake after completion is fine"
        );
        assert!(matches!(
            onboarding::advance(db, TenantId::new(), OnboardingState::Complete, None, now()).await,
            Err(OnboardingError::TenantNotFound)
        ));
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

#[tokio::test]
async fn lifecycle_actor_ids_are_bounded() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "life-actor").await;
        for actor_id in [String::new(), "o".repeat(101), "ops\n".repeat(3)] {
            let actor = LifecycleActor {
                actor_type: ActorType::Founder,
                actor_id,
            };
            let error =
                lifecycle::transition(db, tenant, LifecycleAction::Suspend, &actor, "x", now())
                    .await
                    .unwrap_err();
            assert!(matches!(error, LifecycleError::InvalidActor), "{error:?}");
            assert_eq!(error.http_status(), 422);
        }
        let longest = LifecycleActor {
            actor_type: ActorType::Founder,
            actor_id: "o".repeat(100),
        };
        lifecycle::transition(db, tenant, LifecycleAction::Suspend, &longest, "x", now())
            .await
            .unwrap();
    }
}

fn pin(key: &str, value: serde_json::Value, ttl: Option<i32>) -> SavePin {
    SavePin {
        key: key.into(),
        value,
        source: None,
        ttl_seconds: ttl,
    }
}

fn page(limit: u64) -> OffsetPage {
    OffsetPage { limit, offset: 0 }
}

#[tokio::test]
async fn pins_list_by_literal_prefix_within_the_tenant() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let other = tenant(db, "pins-list-other").await;
        let tenant = tenant(db, "pins-list").await;
        for (i, key) in ["agent:a", "agent:b", "Agent:c", "agent_x", "user:1"]
            .into_iter()
            .enumerate()
        {
            let at = now() + TimeDelta::seconds(i64::try_from(i).unwrap());
            memory_pins::upsert(db, tenant, pin(key, json!({"i": i}), None), at)
                .await
                .unwrap();
        }
        memory_pins::upsert(db, tenant, pin("agent:old", json!({}), Some(1)), now())
            .await
            .unwrap();
        memory_pins::upsert(db, other, pin("agent:theirs", json!({}), None), now())
            .await
            .unwrap();
        let later = now() + TimeDelta::seconds(10);
        let keys = |page: account_engines::Page<memory_pins::MemoryPin>| {
            page.items.into_iter().map(|p| p.key).collect::<Vec<_>>()
        };
        let listed = memory_pins::list(db, tenant, Some("agent:"), false, page(10), later)
            .await
            .unwrap();
        assert_eq!(listed.total, 2, "case-sensitive, literal, live only");
        assert_eq!(keys(listed), vec!["agent:b", "agent:a"], "newest first");
        let with_expired = memory_pins::list(db, tenant, Some("agent:"), true, page(10), later)
            .await
            .unwrap();
        assert_eq!(with_expired.total, 3);
        let literal = memory_pins::list(db, tenant, Some("agent_"), false, page(10), later)
            .await
            .unwrap();
        assert_eq!(keys(literal), vec!["agent_x"], "`_` is not a wildcard");
        let all = memory_pins::list(db, tenant, None, false, page(2), later)
            .await
            .unwrap();
        assert_eq!((all.total, all.items.len()), (5, 2));
        assert!(matches!(
            memory_pins::list(db, tenant, Some("a/b"), false, page(10), later).await,
            Err(MemoryPinError::InvalidKey(_))
        ));
        assert!(matches!(
            memory_pins::list(db, tenant, None, false, page(101), later).await,
            Err(MemoryPinError::InvalidPage)
        ));
    }
}

#[tokio::test]
async fn pin_values_are_bounded_by_the_tenants_plan() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let free = tenant(db, "pins-size-free").await;
        let pro = tenant_on(db, "pins-size-pro", PlanCode::pro()).await;
        let limit = account_engines::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_pin_value_bytes as usize;
        // `{"v":"…"}` serialises to the text plus 8 bytes.
        let sized = |bytes: usize| json!({ "v": "x".repeat(bytes - 8) });
        assert_eq!(sized(limit).to_string().len(), limit);
        memory_pins::upsert(db, free, pin("fits", sized(limit), None), now())
            .await
            .unwrap();
        let error = memory_pins::upsert(db, free, pin("big", sized(limit + 1), None), now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, MemoryPinError::ValueTooLarge { max, size } if max == limit && size == limit + 1),
            "{error:?}"
        );
        assert_eq!(
            (error.code(), error.http_status()),
            ("pin_value_too_large", 413)
        );
        // A larger plan allows more.
        memory_pins::upsert(db, pro, pin("big", sized(limit + 1), None), now())
            .await
            .unwrap();
        let pro_limit = account_engines::types::PlanQuotas::built_in(&PlanCode::pro())
            .unwrap()
            .max_pin_value_bytes as usize;
        assert!(matches!(
            memory_pins::upsert(db, pro, pin("bigger", sized(pro_limit + 1), None), now()).await,
            Err(MemoryPinError::ValueTooLarge { .. })
        ));
        assert!(matches!(
            memory_pins::upsert(db, TenantId::new(), pin("k", json!({}), None), now()).await,
            Err(MemoryPinError::TenantNotFound)
        ));
    }
}

#[tokio::test]
async fn the_pin_count_limit_counts_live_pins_only() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let other = tenant(db, "pins-count-other").await;
        let tenant = tenant(db, "pins-count").await;
        let limit = account_engines::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_memory_pins as u64;
        // Ten of the pins expire after a minute; the rest live on.
        for i in 0..limit {
            let ttl = (i < 10).then_some(60);
            memory_pins::upsert(db, tenant, pin(&format!("k{i}"), json!({}), ttl), now())
                .await
                .unwrap();
        }
        let error = memory_pins::upsert(db, tenant, pin("one-more", json!({}), None), now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, MemoryPinError::TooManyPins { limit: l } if l == limit),
            "{error:?}"
        );
        assert_eq!((error.code(), error.http_status()), ("quota_pins", 409));
        // Replacing a live pin never hits the limit; another tenant's limit is its own.
        memory_pins::upsert(db, tenant, pin("k500", json!({"v": 2}), None), now())
            .await
            .unwrap();
        memory_pins::upsert(db, other, pin("k0", json!({}), None), now())
            .await
            .unwrap();
        // Once ten expire (not yet cleaned up), ten new pins fit, and no more.
        let later = now() + TimeDelta::seconds(61);
        for i in 0..10 {
            memory_pins::upsert(db, tenant, pin(&format!("new{i}"), json!({}), None), later)
                .await
                .unwrap();
        }
        assert!(matches!(
            memory_pins::upsert(db, tenant, pin("new10", json!({}), None), later).await,
            Err(MemoryPinError::TooManyPins { .. })
        ));
    }
}

#[tokio::test]
async fn cleanup_removes_expired_pins_of_one_tenant_or_of_all() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let a = tenant(db, "pins-clean-a").await;
        let b = tenant(db, "pins-clean-b").await;
        for (tenant, key, ttl) in [
            (a, "a:expiring-1", Some(10)),
            (a, "a:expiring-2", Some(10)),
            (a, "a:kept", None),
            (a, "a:later", Some(3600)),
            (b, "b:expiring", Some(10)),
            (b, "b:kept", None),
        ] {
            memory_pins::upsert(db, tenant, pin(key, json!({}), ttl), now())
                .await
                .unwrap();
        }
        let later = now() + TimeDelta::seconds(11);
        assert_eq!(memory_pins::cleanup(db, a, later).await.unwrap(), 2);
        let remaining = |tenant| async move {
            memory_pins::list(db, tenant, None, true, page(10), later)
                .await
                .unwrap()
                .total
        };
        assert_eq!(remaining(a).await, 2);
        assert_eq!(
            remaining(b).await,
            2,
            "the other tenant's pins are untouched"
        );
        assert_eq!(memory_pins::cleanup(db, a, later).await.unwrap(), 0);
        assert_eq!(
            memory_pins::cleanup_all_tenants(db, later).await.unwrap(),
            1
        );
        assert_eq!(remaining(b).await, 1);
        assert_eq!(remaining(a).await, 2, "an unexpired TTL survives");
    }
}

/// Found by schemathesis: PostgreSQL cannot store NUL, SQLite can; both refuse it alike.
#[tokio::test]
async fn pin_values_holding_nul_are_refused_and_nothing_is_written() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "nul-pins").await;
        for (value, field, in_key) in [
            (
                json!({"a": {"b": ["ok", "x\u{0}y"]}}),
                "value.a.b[1]",
                false,
            ),
            (json!({"a": {"k\u{0}": 1}}), "value.a", true),
        ] {
            let error = memory_pins::upsert(db, tenant, pin("nul", value, None), now())
                .await
                .unwrap_err();
            let MemoryPinError::ValueHasNul(nul) = &error else {
                panic!("{}: {error:?}", backend.name());
            };
            assert_eq!((nul.field.as_str(), nul.in_key), (field, in_key));
            assert_eq!((error.http_status(), error.code()), (422, "text_has_nul"));
            assert!(matches!(
                memory_pins::get(db, tenant, "nul", now()).await,
                Err(MemoryPinError::NotFound)
            ));
        }
    }
}
