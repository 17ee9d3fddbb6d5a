//! Operator-only use cases and tenant data use cases through the spine, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_engines::lifecycle::LifecycleAction;
use account_engines::memory_pins::SavePin;
use account_spine::types::*;
use account_spine::{
    Actor, DomainEvent, FixedClock, OperatorPrincipal, Principal, RecordedEvents, RequestMeta,
    Spine, SpineError,
};
use account_testkit::fixtures::insert_user;
use account_testkit::{backends, fresh_db};
use chrono::{TimeDelta, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use std::sync::Arc;

async fn count(conn: &DatabaseConnection, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    }
}

#[tokio::test]
async fn operators_create_suspend_and_the_tenant_feels_it() {
    for backend in backends().unwrap() {
        let db = fresh_db(&backend).await.unwrap();
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let clock = Arc::new(FixedClock::new(start));
        let events = Arc::new(RecordedEvents::default());
        let spine = Spine::from_connection(db.host_conn().clone())
            .with_clock(clock.clone())
            .with_events(events.clone());
        let owner = UserId::new();
        insert_user(db.conn(), owner.as_uuid(), "owner@example.com", start).await;

        let created = spine
            .create_tenant(
                &operator(),
                account_engines::tenants::CreateTenant {
                    name: "Acme".into(),
                    slug: None,
                    plan: PlanCode::free(),
                    owner,
                    billing_email: None,
                },
            )
            .await
            .unwrap();
        let tenant = created.tenant.id;
        let member = Principal {
            tenant_id: tenant,
            actor: Actor::User {
                user_id: owner,
                role: MembershipRole::Owner,
            },
            request: RequestMeta::default(),
        };

        // Pins with a TTL expire; saving again renews.
        let pin = SavePin {
            key: "agent:cfg".into(),
            value: json!({"v": 1}),
            source: None,
            ttl_seconds: Some(30),
        };
        spine.upsert_pin(&member, pin.clone()).await.unwrap();
        clock.advance(TimeDelta::seconds(31));
        assert!(matches!(
            spine.get_pin(&member, "agent:cfg").await,
            Err(SpineError::MemoryPin(_))
        ));
        spine.upsert_pin(&member, pin).await.unwrap();
        assert_eq!(
            spine.get_pin(&member, "agent:cfg").await.unwrap().value,
            json!({"v": 1})
        );

        // Only operators transition; a suspended tenant reads but cannot write.
        spine
            .transition_tenant(
                &operator(),
                tenant,
                LifecycleAction::Suspend,
                "unpaid invoice",
            )
            .await
            .unwrap();
        assert!(events.all().contains(&DomainEvent::TenantStatusChanged {
            tenant_id: tenant,
            from: TenantStatus::Active,
            to: TenantStatus::Suspended
        }));
        let blocked = spine
            .upsert_pin(
                &member,
                SavePin {
                    key: "k".into(),
                    value: json!({}),
                    source: None,
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                blocked,
                SpineError::TenantStatusForbids {
                    status: TenantStatus::Suspended,
                    ..
                }
            ),
            "{blocked:?}"
        );
        spine
            .list_pins(
                &member,
                None,
                false,
                account_spine::OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();

        let other = db.second_connection().await.unwrap();
        assert_eq!(
            count(&other, "audit_log", "action = 'tenant.created'").await,
            1,
            "{}",
            backend.name()
        );
        assert_eq!(
            count(
                &other,
                "audit_log",
                "action = 'tenant.lifecycle_changed' AND reason = 'unpaid invoice' \
                 AND actor_type = 'founder' \
                 AND CAST(new_value AS TEXT) LIKE '%\"operator\":%ops@example.com%'"
            )
            .await,
            1,
            "the row names the operator who acted"
        );
        assert_eq!(
            count(&other, "lifecycle_events", "to_status = 'suspended'").await,
            1
        );

        spine
            .transition_tenant(&operator(), tenant, LifecycleAction::Resume, "paid")
            .await
            .unwrap();
        let forced = spine
            .force_complete_onboarding(&operator(), tenant, "pilot customer")
            .await
            .unwrap();
        assert!(forced.forced);
        assert_eq!(
            count(&other, "audit_log", "action = 'onboarding.force_completed'").await,
            1
        );
        // Past SDK_CONNECTED, a handshake is still welcome and changes no state ...
        let handshake = spine
            .sdk_handshake(&member, "1.2.0", "python", None)
            .await
            .unwrap();
        assert!(handshake.was_no_op && handshake.to == OnboardingState::Complete);
        // ... but asking to move back is refused, typed, and not audited as an advance.
        let back = spine
            .advance_onboarding(&member, OnboardingState::ApiKeyCreated)
            .await
            .unwrap_err();
        assert_eq!(
            (
                account_spine::ErrorCode::code(&back),
                account_spine::ErrorCode::http_status(&back)
            ),
            ("onboarding_regression", 409)
        );
        let same = spine
            .advance_onboarding(&member, OnboardingState::Complete)
            .await
            .unwrap();
        assert!(same.was_no_op, "the current state is a no-op");
        assert_eq!(
            count(&other, "audit_log", "action = 'onboarding.advanced'").await,
            0
        );
        spine
            .change_plan(&operator(), tenant, PlanCode::pro())
            .await
            .unwrap();
        assert_eq!(
            count(&other, "tenants", "plan = 'pro' AND max_api_keys = 20").await,
            1
        );
    }
}
