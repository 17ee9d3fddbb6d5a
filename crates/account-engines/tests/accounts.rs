//! Profile, support tickets and billing through the engines, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::billing::InvoiceUpsert;
use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_user_write_driver};
use account_engines::billing::{self, BillingError};
use account_engines::support::{self, OpenTicket, TicketError};
use account_engines::tenants::{CreateTenant, create_tenant};
use account_engines::types::*;
use account_engines::users::{self, ProfileError, ProfileUpdate};
use account_engines::{Db, ErrorCode, OffsetPage};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn owner_and_tenant(db: Db<'_>, slug: &str) -> (UserId, TenantId) {
    let user = UserId::new();
    get_user_write_driver(db)
        .create_user(
            NewUser {
                id: user,
                email: format!("{slug}@example.com"),
                external_user_id: None,
                name: Some("Ann".into()),
                avatar_url: None,
                status: UserStatus::Active,
            },
            now(),
        )
        .await
        .unwrap();
    let tenant = create_tenant(
        db,
        CreateTenant {
            name: slug.into(),
            slug: Some(slug.into()),
            plan: PlanCode::pro(),
            owner: user,
            billing_email: None,
        },
        now(),
    )
    .await
    .unwrap();
    (user, tenant.tenant.id)
}

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

#[tokio::test]
async fn profile_updates_validate_and_merge() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (user, tenant) = owner_and_tenant(db, "profile").await;
        let update = ProfileUpdate::default()
            .with_display_name(" Ann Lee ")
            .with_time_zone("Europe/Paris")
            .with_locale(" fr-ca")
            .with_preferences(json!({"theme": "dark", "lang": "en"}));
        users::update_profile(db, tenant, user, update, now())
            .await
            .unwrap();
        let patch =
            ProfileUpdate::default().with_preferences(json!({"lang": null, "density": "compact"}));
        users::update_profile(db, tenant, user, patch, now())
            .await
            .unwrap();
        let read = users::get_profile(db, tenant, user).await.unwrap();
        assert_eq!(read.name.as_deref(), Some("Ann Lee"));
        assert_eq!(read.time_zone.as_deref(), Some("Europe/Paris"));
        assert_eq!(read.locale.as_deref(), Some("fr-CA"), "stored canonical");
        assert_eq!(
            read.preferences,
            Some(json!({"theme": "dark", "density": "compact"}))
        );
        assert_eq!(read.role, MembershipRole::Owner);

        let bad_zone = ProfileUpdate::default().with_time_zone("Mars/Base");
        assert!(matches!(
            users::update_profile(db, tenant, user, bad_zone, now()).await,
            Err(ProfileError::InvalidTimeZone(_))
        ));
        let bad_locale = ProfileUpdate::default().with_locale("fr_CA");
        assert!(matches!(
            users::update_profile(db, tenant, user, bad_locale, now()).await,
            Err(ProfileError::InvalidLocale(_))
        ));
        let (_, other_tenant) = owner_and_tenant(db, "other-profile").await;
        assert!(matches!(
            users::get_profile(db, other_tenant, user).await,
            Err(ProfileError::NotFound)
        ));
    }
}

#[tokio::test]
async fn tickets_are_validated_scoped_and_paged() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (user, tenant) = owner_and_tenant(db, "tickets").await;
        let (_, other) = owner_and_tenant(db, "tickets-other").await;
        let ticket = OpenTicket {
            subject: "Cannot rotate key".into(),
            description: "Steps:\n1. rotate".into(),
            category: TicketCategory::Technical,
            priority: TicketPriority::High,
        };
        let opened = support::create_support_ticket(db, tenant, user, ticket.clone(), now())
            .await
            .unwrap();
        assert_eq!(opened.status, TicketStatus::Open);
        let empty = OpenTicket {
            subject: " ".into(),
            ..ticket
        };
        assert!(matches!(
            support::create_support_ticket(db, tenant, user, empty, now()).await,
            Err(TicketError::InvalidText(_))
        ));
        assert_eq!(
            support::list_support_tickets(db, tenant, None, PAGE)
                .await
                .unwrap()
                .total,
            1
        );
        assert!(matches!(
            support::get_ticket(db, other, opened.id).await,
            Err(TicketError::NotFound)
        ));
    }
}

#[tokio::test]
async fn billing_reads_stored_data_and_records_invoices_idempotently() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (_, tenant) = owner_and_tenant(db, "billing").await;
        let invoice = || InvoiceUpsert {
            id: InvoiceId::new(),
            tenant_id: tenant,
            external_id: "in_123".into(),
            number: Some("A-1".into()),
            status: InvoiceStatus::Open,
            currency: "EUR".into(),
            amount_due_cents: 4900,
            amount_paid_cents: 0,
            period_start: now() - TimeDelta::days(30),
            period_end: now(),
            issued_at: now(),
            due_at: None,
            paid_at: None,
            hosted_url: None,
        };
        let first = billing::record_invoice(db, invoice(), now()).await.unwrap();
        let replay = billing::record_invoice(db, invoice(), now()).await.unwrap();
        assert_eq!(first.id, replay.id, "a replay updates the same invoice");
        assert_eq!(first.currency, "eur");
        let negative = InvoiceUpsert {
            amount_due_cents: -1,
            ..invoice()
        };
        assert!(matches!(
            billing::record_invoice(db, negative, now()).await,
            Err(BillingError::InvalidAmounts(_))
        ));

        let summary = billing::get_billing_summary(db, tenant, now())
            .await
            .unwrap();
        assert_eq!(summary.tenant.plan, PlanCode::pro());
        assert_eq!(summary.recent_invoices.len(), 1);
        assert!(summary.subscription.is_none());
        assert_eq!(
            billing::get_billing_invoices(db, tenant, PAGE)
                .await
                .unwrap()
                .total,
            1
        );
        assert_eq!(
            get_accounts_facade_driver(db)
                .fetch_invoices(tenant, PAGE)
                .await
                .unwrap()
                .total,
            1
        );
    }
}

/// Found by schemathesis: PostgreSQL cannot store NUL, SQLite can; both refuse it alike,
/// and the refused update changes nothing (not even the fields that were valid).
#[tokio::test]
async fn profile_text_holding_nul_is_refused_and_nothing_is_written() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (user, tenant) = owner_and_tenant(db, "nul-profile").await;
        let stored = ProfileUpdate::default()
            .with_time_zone("UTC")
            .with_preferences(json!({"theme": "dark"}));
        users::update_profile(db, tenant, user, stored, now())
            .await
            .unwrap();
        for (preferences, field, in_key) in [
            (
                json!({"theme": {"x": ["x\u{0}y"]}}),
                "preferences.theme.x[0]",
                false,
            ),
            (json!({"k\u{0}": "v"}), "preferences", true),
        ] {
            let update = ProfileUpdate::default()
                .with_time_zone("Europe/Paris")
                .with_preferences(preferences);
            let error = users::update_profile(db, tenant, user, update, now())
                .await
                .unwrap_err();
            let ProfileError::PreferencesHaveNul(nul) = &error else {
                panic!("{}: {error:?}", backend.name());
            };
            assert_eq!((nul.field.as_str(), nul.in_key), (field, in_key));
            assert_eq!((error.http_status(), error.code()), (422, "text_has_nul"));
            let read = users::get_profile(db, tenant, user).await.unwrap();
            assert_eq!(read.preferences, Some(json!({"theme": "dark"})));
            assert_eq!(read.time_zone.as_deref(), Some("UTC"));
        }
        let named = ProfileUpdate::default().with_display_name("Ann\u{0}Lee");
        assert!(matches!(
            users::update_profile(db, tenant, user, named, now()).await,
            Err(ProfileError::InvalidName(TextError::Nul {
                field: "display name"
            }))
        ));
    }
}
