//! Invitations through the engine, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::get_accounts_facade_driver;
use account_drivers::get_user_write_driver;
use account_drivers::users::NewUser;
use account_engines::api_keys::ApiKeyPepper;
use account_engines::invitations::{self, InvitationError, Invitee};
use account_engines::memberships::Acting;
use account_engines::tenants::{CreateTenant, create_tenant};
use account_engines::types::*;
use account_engines::{Db, ErrorCode, OffsetPage};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn pepper() -> ApiKeyPepper {
    ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap()
}

async fn setup(db: Db<'_>) -> (TenantId, Acting) {
    let owner = UserId::new();
    get_user_write_driver(db)
        .create_user(
            NewUser {
                id: owner,
                email: "owner@example.com".into(),
                external_user_id: None,
                name: None,
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
            name: "Inv".into(),
            slug: Some("inv".into()),
            plan: Plan::Free,
            owner,
            billing_email: None,
        },
        now(),
    )
    .await
    .unwrap();
    (
        tenant.tenant.id,
        Acting {
            user_id: owner,
            role: MembershipRole::Owner,
        },
    )
}

#[tokio::test]
async fn invite_accept_once_and_only_with_the_token() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (tenant, owner) = setup(db).await;
        let issued = invitations::invite(
            db,
            &pepper(),
            tenant,
            owner,
            " Ann@Example.com ",
            MembershipRole::Admin,
            now(),
        )
        .await
        .unwrap();
        assert_eq!(issued.invitation.email, "ann@example.com");
        assert_eq!(issued.invitation.expires_at, now() + TimeDelta::days(7));
        assert!(
            !format!("{issued:?}").contains(issued.token.expose()),
            "the token never shows in Debug"
        );

        let again = invitations::invite(
            db,
            &pepper(),
            tenant,
            owner,
            "ann@EXAMPLE.com",
            MembershipRole::Member,
            now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(again, InvitationError::AlreadyPending(_)),
            "{again}"
        );

        let wrong = invitations::accept(
            db,
            &pepper(),
            tenant,
            issued.invitation.id,
            "inv_wrong",
            Invitee::default(),
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(wrong, InvitationError::InvalidToken));
        let membership = invitations::accept(
            db,
            &pepper(),
            tenant,
            issued.invitation.id,
            issued.token.expose(),
            Invitee::default(),
            now(),
        )
        .await
        .unwrap();
        assert_eq!(
            (membership.role, membership.email.as_str()),
            (MembershipRole::Admin, "ann@example.com")
        );
        let twice = invitations::accept(
            db,
            &pepper(),
            tenant,
            issued.invitation.id,
            issued.token.expose(),
            Invitee::default(),
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(twice, InvitationError::AlreadyAccepted), "{twice}");
        assert_eq!(
            get_accounts_facade_driver(db)
                .fetch_tenant_memberships(
                    tenant,
                    OffsetPage {
                        limit: 10,
                        offset: 0
                    }
                )
                .await
                .unwrap()
                .total,
            2
        );

        let member_again = invitations::invite(
            db,
            &pepper(),
            tenant,
            owner,
            "ann@example.com",
            MembershipRole::Member,
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(member_again, InvitationError::AlreadyMember(_)));
    }
}

#[tokio::test]
async fn roles_are_capped_and_expiry_is_enforced() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (tenant, owner) = setup(db).await;
        let admin = Acting {
            user_id: owner.user_id,
            role: MembershipRole::Admin,
        };
        let error = invitations::invite(
            db,
            &pepper(),
            tenant,
            admin,
            "x@example.com",
            MembershipRole::Owner,
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, InvitationError::RoleTooHigh { .. }));
        assert_eq!(error.http_status(), 403);
        let member = Acting {
            user_id: owner.user_id,
            role: MembershipRole::Member,
        };
        assert!(matches!(
            invitations::invite(
                db,
                &pepper(),
                tenant,
                member,
                "x@example.com",
                MembershipRole::Viewer,
                now()
            )
            .await,
            Err(InvitationError::CannotManageUsers(_))
        ));
        assert!(matches!(
            invitations::invite(
                db,
                &pepper(),
                tenant,
                owner,
                "not-an-email",
                MembershipRole::Viewer,
                now()
            )
            .await,
            Err(InvitationError::InvalidEmail(_))
        ));

        let issued = invitations::invite(
            db,
            &pepper(),
            tenant,
            owner,
            "late@example.com",
            MembershipRole::Viewer,
            now(),
        )
        .await
        .unwrap();
        let eight_days = now() + TimeDelta::days(8);
        let expired = invitations::accept(
            db,
            &pepper(),
            tenant,
            issued.invitation.id,
            issued.token.expose(),
            Invitee::default(),
            eight_days,
        )
        .await
        .unwrap_err();
        assert!(matches!(expired, InvitationError::Expired));
        let listed = invitations::list(
            db,
            tenant,
            None,
            OffsetPage {
                limit: 10,
                offset: 0,
            },
            eight_days,
        )
        .await
        .unwrap();
        assert_eq!(listed.items[0].status, InvitationStatus::Expired);

        // An expired invitation no longer blocks a new one; a resend replaces the token.
        let fresh = invitations::invite(
            db,
            &pepper(),
            tenant,
            owner,
            "late@example.com",
            MembershipRole::Viewer,
            eight_days,
        )
        .await
        .unwrap();
        let resent = invitations::resend(
            db,
            &pepper(),
            tenant,
            owner,
            fresh.invitation.id,
            eight_days,
        )
        .await
        .unwrap();
        assert!(matches!(
            invitations::accept(
                db,
                &pepper(),
                tenant,
                fresh.invitation.id,
                fresh.token.expose(),
                Invitee::default(),
                eight_days
            )
            .await,
            Err(InvitationError::InvalidToken)
        ));
        invitations::revoke(db, tenant, owner, resent.invitation.id, eight_days)
            .await
            .unwrap();
        assert!(matches!(
            invitations::accept(
                db,
                &pepper(),
                tenant,
                fresh.invitation.id,
                resent.token.expose(),
                Invitee::default(),
                eight_days
            )
            .await,
            Err(InvitationError::Revoked)
        ));
    }
}
