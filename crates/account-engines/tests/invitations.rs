//! Invitations through the engine, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::get_accounts_facade_driver;
use account_drivers::get_user_write_driver;
use account_drivers::users::NewUser;
use account_engines::api_keys::ApiKeyPepper;
use account_engines::invitations::{self, InvitationError, Invitee, IssuedInvitation};
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

async fn user(db: Db<'_>, email: &str) -> UserId {
    let id = UserId::new();
    get_user_write_driver(db)
        .create_user(
            NewUser {
                id,
                email: email.into(),
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

/// A real member with `role` (the engine re-reads roles, so a claimed role is not enough).
async fn member_with(db: Db<'_>, tenant: TenantId, email: &str, role: MembershipRole) -> Acting {
    let id = user(db, email).await;
    get_accounts_facade_driver(db)
        .insert_membership(tenant, id, role, None, now())
        .await
        .unwrap();
    Acting { user_id: id, role }
}

async fn invite(db: Db<'_>, tenant: TenantId, owner: Acting, email: &str) -> IssuedInvitation {
    invitations::invite(
        db,
        &pepper(),
        tenant,
        owner,
        email,
        MembershipRole::Member,
        now(),
    )
    .await
    .unwrap()
}

async fn accept(
    db: Db<'_>,
    tenant: TenantId,
    issued: &IssuedInvitation,
    invitee: Invitee,
) -> Result<account_drivers::memberships::MembershipSnapshot, InvitationError> {
    invitations::accept(
        db,
        &pepper(),
        tenant,
        issued.invitation.id,
        issued.token.expose(),
        invitee,
        now(),
    )
    .await
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
            plan: PlanCode::free(),
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
        let admin = member_with(db, tenant, "admin@example.com", MembershipRole::Admin).await;
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
        let member = member_with(db, tenant, "member@example.com", MembershipRole::Member).await;
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

#[tokio::test]
async fn accept_refuses_invitee_input_that_does_not_fit_with_a_4xx() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (tenant, owner) = setup(db).await;
        let issued = invite(db, tenant, owner, "bea@example.com").await;
        let cases = [
            (
                Invitee {
                    name: Some("n".repeat(256)),
                    ..Invitee::default()
                },
                "invalid_name",
                "display name must be at most 255 characters",
            ),
            (
                Invitee {
                    name: Some("two\nlines".into()),
                    ..Invitee::default()
                },
                "invalid_name",
                "display name must not contain control characters",
            ),
            (
                Invitee {
                    external_user_id: Some("x".repeat(101)),
                    ..Invitee::default()
                },
                "invalid_external_user_id",
                "external_user_id must be 1 to 100 characters without control characters",
            ),
        ];
        for (invitee, code, message) in cases {
            let error = accept(db, tenant, &issued, invitee).await.unwrap_err();
            assert_eq!(
                (
                    error.code(),
                    error.http_status(),
                    error.to_string().as_str()
                ),
                (code, 422, message)
            );
        }
        // Nothing was written: the invitation is still pending and no account exists.
        assert!(
            get_user_write_driver(db)
                .fetch_user_by_email("bea@example.com")
                .await
                .unwrap()
                .is_none()
        );
        let membership = accept(
            db,
            tenant,
            &issued,
            Invitee {
                name: Some("  Bea Lee ".into()),
                external_user_id: Some(" idp|42 ".into()),
            },
        )
        .await
        .unwrap();
        let account = get_user_write_driver(db)
            .fetch_user_by_id(membership.user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (account.name.as_deref(), account.external_user_id.as_deref()),
            (Some("Bea Lee"), Some("idp|42"))
        );

        // Someone else's identity-provider id is a conflict, not a storage failure.
        let second = invite(db, tenant, owner, "cy@example.com").await;
        let error = accept(
            db,
            tenant,
            &second,
            Invitee {
                external_user_id: Some("idp|42".into()),
                ..Invitee::default()
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, InvitationError::ExternalUserIdTaken),
            "{error:?}"
        );
        assert_eq!(error.http_status(), 409);
    }
}

#[tokio::test]
async fn an_existing_account_is_reused_and_the_claim_precedes_the_account() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (tenant, owner) = setup(db).await;
        let existing = user(db, "dan@example.com").await;
        let issued = invite(db, tenant, owner, "Dan@Example.com").await;
        let membership = accept(db, tenant, &issued, Invitee::default())
            .await
            .unwrap();
        assert_eq!(membership.user_id, existing, "the account is reused");
        // An accepted invitation creates nothing more, whoever sends the token again.
        let again = accept(db, tenant, &issued, Invitee::default())
            .await
            .unwrap_err();
        assert!(matches!(again, InvitationError::AlreadyAccepted));
        let fresh = invite(db, tenant, owner, "eve@example.com").await;
        invitations::revoke(db, tenant, owner, fresh.invitation.id, now())
            .await
            .unwrap();
        let revoked = accept(db, tenant, &fresh, Invitee::default())
            .await
            .unwrap_err();
        assert!(matches!(revoked, InvitationError::Revoked));
        assert!(
            get_user_write_driver(db)
                .fetch_user_by_email("eve@example.com")
                .await
                .unwrap()
                .is_none(),
            "a refused accept creates no account"
        );
    }
}

#[tokio::test]
async fn the_inviters_role_is_read_again_not_taken_from_the_principal() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let (tenant, owner) = setup(db).await;
        // Invited as admin, since demoted to member: the stale principal still says admin.
        let demoted = member_with(db, tenant, "ex-admin@example.com", MembershipRole::Member).await;
        let stale = Acting {
            role: MembershipRole::Admin,
            ..demoted
        };
        let error = invitations::invite(
            db,
            &pepper(),
            tenant,
            stale,
            "x@example.com",
            MembershipRole::Viewer,
            now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                error,
                InvitationError::CannotManageUsers(MembershipRole::Member)
            ),
            "{error:?}"
        );
        let pending = invite(db, tenant, owner, "y@example.com").await;
        assert!(matches!(
            invitations::revoke(db, tenant, stale, pending.invitation.id, now()).await,
            Err(InvitationError::CannotManageUsers(_))
        ));
        assert!(matches!(
            invitations::resend(db, &pepper(), tenant, stale, pending.invitation.id, now()).await,
            Err(InvitationError::CannotManageUsers(_))
        ));
        // Someone who is no member at all.
        let outsider = Acting {
            user_id: user(db, "outsider@example.com").await,
            role: MembershipRole::Owner,
        };
        let error = invitations::invite(
            db,
            &pepper(),
            tenant,
            outsider,
            "z@example.com",
            MembershipRole::Viewer,
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, InvitationError::InviterNotAMember));
        assert_eq!(error.http_status(), 403);
    }
}
