//! Billing writes and the summary's derived figures, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::usage::NewUsageRecord;
use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_tenant_driver, get_user_write_driver};
use account_engines::billing::{
    self, BillingError, InvoiceUpsert, MAX_HOSTED_URL_CHARS, MAX_INVOICE_NUMBER_CHARS,
    SubscriptionUpsert, UsageWindowSource,
};
use account_engines::tenants::{CreateTenant, create_tenant};
use account_engines::types::*;
use account_engines::{Db, ErrorCode};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn tenant(db: Db<'_>, slug: &str) -> TenantId {
    let owner = UserId::new();
    get_user_write_driver(db)
        .create_user(
            NewUser {
                id: owner,
                email: format!("{slug}@example.com"),
                external_user_id: None,
                name: None,
                avatar_url: None,
                status: UserStatus::Active,
            },
            now(),
        )
        .await
        .unwrap();
    create_tenant(
        db,
        CreateTenant {
            name: slug.into(),
            slug: Some(slug.into()),
            plan: PlanCode::free(),
            owner,
            billing_email: None,
        },
        now(),
    )
    .await
    .unwrap()
    .tenant
    .id
}

fn subscription(tenant: TenantId, external_id: &str) -> SubscriptionUpsert {
    SubscriptionUpsert {
        id: SubscriptionId::new(),
        tenant_id: tenant,
        external_id: external_id.into(),
        plan: PlanCode::pro(),
        status: SubscriptionStatus::Trialing,
        billing_period: BillingPeriod::Monthly,
        current_period_start: Some(now() - TimeDelta::days(10)),
        current_period_end: Some(now() + TimeDelta::days(20)),
        trial_ends_at: Some(now() + TimeDelta::days(4)),
        canceled_at: None,
        cancel_at_period_end: false,
    }
}

fn invoice(tenant: TenantId) -> InvoiceUpsert {
    InvoiceUpsert {
        id: InvoiceId::new(),
        tenant_id: tenant,
        external_id: "in_1".into(),
        number: Some("INV-0001".into()),
        status: InvoiceStatus::Open,
        currency: "USD".into(),
        amount_due_cents: 1_000,
        amount_paid_cents: 0,
        period_start: now() - TimeDelta::days(30),
        period_end: now(),
        issued_at: now(),
        due_at: None,
        paid_at: None,
        hosted_url: None,
    }
}

#[tokio::test]
async fn record_subscription_is_idempotent_by_external_id() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "subs").await;

        let first = billing::record_subscription(db, subscription(tenant, "sub_1"), now())
            .await
            .unwrap();
        let later = now() + TimeDelta::hours(1);
        let replay = billing::record_subscription(
            db,
            SubscriptionUpsert {
                status: SubscriptionStatus::Active,
                ..subscription(tenant, "sub_1")
            },
            later,
        )
        .await
        .unwrap();
        assert_eq!(
            replay.id,
            first.id,
            "{}: a replay rewrites the row",
            backend.name()
        );
        assert_eq!(replay.created_at, first.created_at);
        assert_eq!(replay.updated_at, later);
        assert_eq!(replay.status, SubscriptionStatus::Active);
        let same = billing::record_subscription(
            db,
            SubscriptionUpsert {
                status: SubscriptionStatus::Active,
                ..subscription(tenant, "sub_1")
            },
            later,
        )
        .await
        .unwrap();
        assert_eq!(same, replay, "replaying the same report changes nothing");

        let other = tenant_with_same_external_id(db, "subs-other").await;
        assert_ne!(
            other.id, first.id,
            "external ids are unique per tenant only"
        );
        let stored = get_accounts_facade_driver(db)
            .fetch_subscription(tenant)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.id, first.id);
        assert_eq!(stored.status, SubscriptionStatus::Active);
    }
}

async fn tenant_with_same_external_id(db: Db<'_>, slug: &str) -> billing::Subscription {
    let other = tenant(db, slug).await;
    billing::record_subscription(db, subscription(other, "sub_1"), now())
        .await
        .unwrap()
}

#[tokio::test]
async fn billing_writes_refuse_unknown_tenants_with_a_client_error() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let ghost = TenantId::new();

        let error = billing::record_subscription(db, subscription(ghost, "sub_x"), now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, BillingError::TenantNotFound),
            "{}: {error:?}",
            backend.name()
        );
        assert_eq!(
            (error.code(), error.http_status()),
            ("tenant_not_found", 404)
        );
        let error = billing::record_invoice(db, invoice(ghost), now())
            .await
            .unwrap_err();
        assert!(matches!(error, BillingError::TenantNotFound), "{error:?}");
        assert!(matches!(
            billing::get_billing_summary(db, ghost, now()).await,
            Err(BillingError::TenantNotFound)
        ));
    }
}

#[tokio::test]
async fn record_subscription_validates_its_input() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "subs-input").await;

        let long_id = "s".repeat(101);
        assert!(
            matches!(
                billing::record_subscription(db, subscription(tenant, &long_id), now()).await,
                Err(BillingError::InvalidExternalId)
            ),
            "{}",
            backend.name()
        );
        let reversed = SubscriptionUpsert {
            current_period_end: Some(now() - TimeDelta::days(11)),
            ..subscription(tenant, "sub_r")
        };
        let error = billing::record_subscription(db, reversed, now())
            .await
            .unwrap_err();
        assert_eq!(
            (error.code(), error.http_status()),
            ("invalid_amounts", 422)
        );
        let widest = "s".repeat(100);
        billing::record_subscription(db, subscription(tenant, &widest), now())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn record_invoice_fits_its_texts_to_the_columns() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "invoices").await;

        let too_long = InvoiceUpsert {
            number: Some("9".repeat(MAX_INVOICE_NUMBER_CHARS + 1)),
            ..invoice(tenant)
        };
        let error = billing::record_invoice(db, too_long, now())
            .await
            .unwrap_err();
        assert_eq!(
            (error.code(), error.http_status()),
            ("invalid_invoice_number", 422),
            "{}",
            backend.name()
        );
        let url_prefix = "https://pay.example.com/";
        let long_url = InvoiceUpsert {
            hosted_url: Some(format!(
                "{url_prefix}{}",
                "u".repeat(MAX_HOSTED_URL_CHARS + 1 - url_prefix.len())
            )),
            ..invoice(tenant)
        };
        let error = billing::record_invoice(db, long_url, now())
            .await
            .unwrap_err();
        assert_eq!(
            (error.code(), error.http_status()),
            ("invalid_hosted_url", 422)
        );
        let not_a_url = InvoiceUpsert {
            hosted_url: Some("ftp://pay.example.com/1".into()),
            ..invoice(tenant)
        };
        assert!(matches!(
            billing::record_invoice(db, not_a_url, now()).await,
            Err(BillingError::InvalidHostedUrl)
        ));

        // The widest values the columns hold are stored as given (PostgreSQL enforces the
        // widths; these prove the limits are the columns', not stricter).
        let widest = InvoiceUpsert {
            number: Some("9".repeat(MAX_INVOICE_NUMBER_CHARS)),
            hosted_url: Some(format!(
                "{url_prefix}{}",
                "u".repeat(MAX_HOSTED_URL_CHARS - url_prefix.len())
            )),
            ..invoice(tenant)
        };
        let stored = billing::record_invoice(db, widest.clone(), now())
            .await
            .unwrap();
        assert_eq!(stored.number, widest.number);
        assert_eq!(stored.hosted_url, widest.hosted_url);
        assert_eq!(stored.currency, "usd");
    }
}

#[tokio::test]
async fn the_summary_derives_period_next_invoice_and_usage_from_stored_rows() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db, "summary").await;
        let tenants = get_tenant_driver(db);
        let record = |meter: &str, amount: i64, unit: UsageUnit| NewUsageRecord {
            id: UsageRecordId::new(),
            tenant_id: tenant,
            meter_name: meter.into(),
            amount,
            unit,
            worker_id: None,
            api_key_id: None,
            run_id: None,
            idempotency_key: None,
            metadata: None,
        };
        // Two records inside the subscription period, one last month, one this month but
        // before the period: only the first two count while the subscription applies.
        tenants
            .insert_usage_record(record("tokens", 120, UsageUnit::Tokens), now())
            .await
            .unwrap();
        tenants
            .insert_usage_record(
                record("tokens", 30, UsageUnit::Tokens),
                now() - TimeDelta::days(2),
            )
            .await
            .unwrap();
        tenants
            .insert_usage_record(
                record("runs", 1, UsageUnit::Count),
                now() - TimeDelta::days(40),
            )
            .await
            .unwrap();
        tenants
            .insert_usage_record(
                record("tokens", 7, UsageUnit::Tokens),
                now() - TimeDelta::days(20),
            )
            .await
            .unwrap();
        let day = now().date_naive();
        let month = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap();
        tenants
            .increment_tenant_usage(tenant, 3, 150, day, month, now())
            .await
            .unwrap();

        let without = billing::get_billing_summary(db, tenant, now())
            .await
            .unwrap();
        assert_eq!(without.billing_period, None, "{}", backend.name());
        assert_eq!(without.next_invoice_date, None);
        assert_eq!(
            without.usage_window.source,
            UsageWindowSource::CalendarMonth
        );
        assert_eq!(
            without.usage_window.start,
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
        let month_tokens: i64 = without.usage.iter().map(|m| m.total).sum();
        assert_eq!(month_tokens, 157, "this month's records only");
        assert_eq!(without.counters.runs_this_month, 3);
        assert_eq!(without.counters.tokens_this_month, 150);

        billing::record_subscription(db, subscription(tenant, "sub_1"), now())
            .await
            .unwrap();
        let with = billing::get_billing_summary(db, tenant, now())
            .await
            .unwrap();
        assert_eq!(with.billing_period, Some(BillingPeriod::Monthly));
        assert_eq!(with.usage_window.source, UsageWindowSource::Subscription);
        assert_eq!(with.usage_window.start, now() - TimeDelta::days(10));
        assert_eq!(with.usage.len(), 1);
        assert_eq!(
            (
                with.usage[0].meter_name.as_str(),
                with.usage[0].unit,
                with.usage[0].total
            ),
            ("tokens", UsageUnit::Tokens, 150)
        );
        assert_eq!(
            with.next_invoice_date,
            Some(now() + TimeDelta::days(4)),
            "a trial bills first when it ends"
        );
        let after_trial = billing::get_billing_summary(db, tenant, now() + TimeDelta::days(5))
            .await
            .unwrap();
        assert_eq!(
            after_trial.next_invoice_date,
            Some(now() + TimeDelta::days(20))
        );
        let next_month = billing::get_billing_summary(db, tenant, now() + TimeDelta::days(8))
            .await
            .unwrap();
        assert_eq!(
            next_month.counters.tokens_this_month, 0,
            "December starts at zero"
        );

        billing::record_subscription(
            db,
            SubscriptionUpsert {
                status: SubscriptionStatus::Active,
                cancel_at_period_end: true,
                ..subscription(tenant, "sub_1")
            },
            now(),
        )
        .await
        .unwrap();
        let ending = billing::get_billing_summary(db, tenant, now())
            .await
            .unwrap();
        assert_eq!(ending.next_invoice_date, None, "it ends with the period");
    }
}
