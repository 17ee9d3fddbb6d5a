//! The tenant engine on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::get_user_write_driver;
use account_drivers::users::NewUser;
use account_engines::tenants::{CreateTenant, TenantError, change_plan, create_tenant};
use account_engines::types::*;
use account_engines::usage::usage_summary;
use account_engines::{Db, ErrorCode};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn user(db: Db<'_>) -> UserId {
    let id = UserId::new();
    get_user_write_driver(db)
        .create_user(
            NewUser {
                id,
                email: format!("{}@example.com", id.as_uuid().simple()),
                external_user_id: None,
                name: None,
                avatar_url: None,
                status: UserStatus::Active,
            },
            now(),
        )
        .await
        .unwrap();
    id
}

fn request(name: &str, slug: Option<&str>, owner: UserId) -> CreateTenant {
    CreateTenant {
        name: name.into(),
        slug: slug.map(str::to_owned),
        plan: PlanCode::free(),
        owner,
        billing_email: None,
    }
}

#[tokio::test]
async fn a_tenant_is_created_with_its_quotas_and_its_owner() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let owner = user(db).await;
        let created = create_tenant(db, request("Acme Labs", None, owner), now())
            .await
            .unwrap();
        assert_eq!(created.tenant.slug, "acme-labs");
        assert_eq!(
            created.tenant.quotas,
            account_engines::types::PlanQuotas::built_in(&PlanCode::free()).unwrap()
        );
        assert_eq!(
            (created.owner.user_id, created.owner.role),
            (owner, MembershipRole::Owner)
        );

        let taken = create_tenant(db, request("Other", Some("acme-labs"), owner), now())
            .await
            .unwrap_err();
        assert!(
            matches!(taken, TenantError::SlugTaken(ref s) if s == "acme-labs"),
            "{taken}"
        );
        assert_eq!(taken.http_status(), 409);
        assert!(matches!(
            create_tenant(db, request(" ", None, owner), now()).await,
            Err(TenantError::InvalidName(_))
        ));
        assert!(matches!(
            create_tenant(db, request("X", Some("Bad Slug"), owner), now()).await,
            Err(TenantError::InvalidSlug(_))
        ));

        let (before, after) = change_plan(db, created.tenant.id, PlanCode::pro(), now())
            .await
            .unwrap();
        assert_eq!(
            (before.plan, after.plan, after.quotas),
            (
                PlanCode::free(),
                PlanCode::pro(),
                account_engines::types::PlanQuotas::built_in(&PlanCode::pro()).unwrap()
            )
        );
        assert!(matches!(
            change_plan(db, created.tenant.id, PlanCode::pro(), now()).await,
            Err(TenantError::SamePlan(ref plan)) if *plan == PlanCode::pro()
        ));
        assert!(matches!(
            change_plan(db, TenantId::new(), PlanCode::pro(), now()).await,
            Err(TenantError::NotFound)
        ));

        assert!(
            usage_summary(db, created.tenant.id, now() - TimeDelta::days(1), now())
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            usage_summary(db, created.tenant.id, now(), now()).await,
            Err(TenantError::InvalidPeriod)
        ));
    }
}

#[tokio::test]
async fn a_missing_owner_or_a_bad_billing_email_is_the_callers_4xx() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let nobody = UserId::new();
        let error = create_tenant(db, request("Ghost Co", Some("ghost-co"), nobody), now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, TenantError::OwnerNotFound(id) if id == nobody),
            "{error:?}"
        );
        assert_eq!(
            (error.code(), error.http_status()),
            ("owner_not_found", 404)
        );
        assert!(
            account_drivers::get_tenant_driver(db)
                .fetch_tenant_by_slug("ghost-co")
                .await
                .unwrap()
                .is_none(),
            "nothing was written for the refused request"
        );

        let owner = user(db).await;
        let mut bad = request("Billing Co", None, owner);
        bad.billing_email = Some("accounts at example.com".into());
        let error = create_tenant(db, bad, now()).await.unwrap_err();
        assert!(matches!(
            error,
            TenantError::InvalidBillingEmail(EmailError::MissingAt)
        ));
        assert_eq!(
            (
                error.code(),
                error.http_status(),
                error.to_string().as_str()
            ),
            (
                "invalid_billing_email",
                422,
                "billing_email: email must contain an `@`"
            )
        );
        let mut long = request("Billing Co", None, owner);
        long.billing_email = Some(format!("{}@example.com", "a".repeat(250)));
        assert!(matches!(
            create_tenant(db, long, now()).await,
            Err(TenantError::InvalidBillingEmail(EmailError::TooLong))
        ));

        let mut good = request("Billing Co", None, owner);
        good.billing_email = Some("  Accounts@Example.COM ".into());
        // Normalised on the way in (no snapshot reads the column back).
        create_tenant(db, good, now()).await.unwrap();
    }
}
