//! Membership rules through the engine, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::tenants::NewTenant;
use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_tenant_driver, get_user_write_driver};
use account_engines::memberships::{
    Acting, MembershipError, UserFilter, get_user_detail, list_users, remove_member,
    transfer_ownership, update_user_role,
};
use account_engines::types::*;
use account_engines::users::{UserError, create_user, record_login};
use account_engines::{Db, ErrorCode, OffsetPage};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn page(limit: u64, offset: u64) -> OffsetPage {
    OffsetPage { limit, offset }
}

async fn tenant(db: Db<'_>) -> TenantId {
    let id = TenantId::new();
    get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id,
                name: "T".into(),
                slug: format!("t-{}", id.as_uuid().simple()),
                plan: PlanCode::free(),
                quotas: account_engines::types::PlanQuotas::built_in(&PlanCode::free()).unwrap(),
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

async fn member(db: Db<'_>, tenant: TenantId, email: &str, role: MembershipRole) -> Acting {
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
    get_accounts_facade_driver(db)
        .insert_membership(tenant, id, role, None, now())
        .await
        .unwrap();
    Acting { user_id: id, role }
}

#[tokio::test]
async fn role_rules_hold() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db).await;
        let owner = member(db, tenant, "owner@example.com", MembershipRole::Owner).await;
        let admin = member(db, tenant, "admin@example.com", MembershipRole::Admin).await;
        let viewer = member(db, tenant, "viewer@example.com", MembershipRole::Viewer).await;

        let error = update_user_role(
            db,
            tenant,
            admin,
            viewer.user_id,
            MembershipRole::Member,
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, MembershipError::OnlyOwnersChangeRoles));
        let error = update_user_role(
            db,
            tenant,
            owner,
            owner.user_id,
            MembershipRole::Admin,
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, MembershipError::OwnRole));
        let changed = update_user_role(
            db,
            tenant,
            owner,
            viewer.user_id,
            MembershipRole::Member,
            now(),
        )
        .await
        .unwrap();
        assert_eq!(
            (changed.previous, changed.membership.role),
            (MembershipRole::Viewer, MembershipRole::Member)
        );
        let stranger = UserId::new();
        assert!(matches!(
            update_user_role(db, tenant, owner, stranger, MembershipRole::Admin, now()).await,
            Err(MembershipError::NotAMember)
        ));

        // The last owner can neither leave nor be removed; an admin cannot remove an owner.
        assert!(matches!(
            remove_member(db, tenant, owner, owner.user_id, now()).await,
            Err(MembershipError::LastOwner)
        ));
        assert!(matches!(
            remove_member(db, tenant, admin, owner.user_id, now()).await,
            Err(MembershipError::OwnerRemovalNeedsOwner)
        ));
        let error = remove_member(db, tenant, viewer, admin.user_id, now())
            .await
            .unwrap_err();
        assert!(matches!(error, MembershipError::CannotManageUsers(_)));
        assert!((400..500).contains(&error.http_status()));
        remove_member(db, tenant, admin, viewer.user_id, now())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn ownership_transfers_atomically_and_the_last_owner_is_kept() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db).await;
        let owner = member(db, tenant, "owner@example.com", MembershipRole::Owner).await;
        let admin = member(db, tenant, "admin@example.com", MembershipRole::Admin).await;

        let (promoted, demoted) = transfer_ownership(db, tenant, owner, admin.user_id, now())
            .await
            .unwrap();
        assert_eq!(
            (promoted.role, demoted.role),
            (MembershipRole::Owner, MembershipRole::Admin)
        );
        assert_eq!(
            get_accounts_facade_driver(db)
                .count_owners(tenant)
                .await
                .unwrap(),
            1
        );

        let new_owner = Acting {
            user_id: admin.user_id,
            role: MembershipRole::Owner,
        };
        let error = update_user_role(
            db,
            tenant,
            Acting {
                user_id: owner.user_id,
                role: MembershipRole::Owner,
            },
            new_owner.user_id,
            MembershipRole::Admin,
            now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, MembershipError::OnlyOwnersChangeRoles),
            "a stale owner principal (an admin since the transfer) cannot demote the last owner: {error}"
        );
        // Nor can the new owner, the last one, leave.
        assert!(matches!(
            remove_member(db, tenant, new_owner, new_owner.user_id, now()).await,
            Err(MembershipError::LastOwner)
        ));
        assert!(matches!(
            transfer_ownership(db, tenant, new_owner, new_owner.user_id, now()).await,
            Err(MembershipError::TransferToSelf)
        ));
    }
}

#[tokio::test]
async fn a_demoted_owner_with_a_stale_principal_is_refused() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db).await;
        let first = member(db, tenant, "first@example.com", MembershipRole::Owner).await;
        let second = member(db, tenant, "second@example.com", MembershipRole::Owner).await;
        let third = member(db, tenant, "third@example.com", MembershipRole::Owner).await;
        let viewer = member(db, tenant, "viewer@example.com", MembershipRole::Viewer).await;
        // `second` demotes `first`; `first` still holds a principal that says owner.
        update_user_role(
            db,
            tenant,
            second,
            first.user_id,
            MembershipRole::Admin,
            now(),
        )
        .await
        .unwrap();
        let stale = first;
        assert_eq!(stale.role, MembershipRole::Owner);
        // Two owners remain, so only the fresh role can refuse these.
        let error = update_user_role(
            db,
            tenant,
            stale,
            third.user_id,
            MembershipRole::Member,
            now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, MembershipError::OnlyOwnersChangeRoles),
            "{error:?}"
        );
        assert_eq!(error.http_status(), 403);
        let error = remove_member(db, tenant, stale, third.user_id, now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, MembershipError::OwnerRemovalNeedsOwner),
            "an admin (now) cannot remove an owner: {error:?}"
        );
        let error = transfer_ownership(db, tenant, stale, viewer.user_id, now())
            .await
            .unwrap_err();
        assert!(matches!(error, MembershipError::OnlyOwnersChangeRoles));
        let owners = get_accounts_facade_driver(db)
            .count_owners(tenant)
            .await
            .unwrap();
        assert_eq!(owners, 2, "nothing changed");

        // The other way round: promoted since the principal was made, the fresh role counts.
        let promoted_stale = viewer;
        update_user_role(
            db,
            tenant,
            second,
            viewer.user_id,
            MembershipRole::Admin,
            now(),
        )
        .await
        .unwrap();
        remove_member(db, tenant, promoted_stale, first.user_id, now())
            .await
            .unwrap();

        // Removed meanwhile: no authority at all.
        remove_member(db, tenant, second, third.user_id, now())
            .await
            .unwrap();
        let error = update_user_role(
            db,
            tenant,
            third,
            viewer.user_id,
            MembershipRole::Member,
            now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, MembershipError::ActorNotAMember),
            "{error:?}"
        );
        assert_eq!(error.http_status(), 403);
    }
}

#[tokio::test]
async fn users_are_listed_by_filter_and_detailed_with_their_capabilities() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = tenant(db).await;
        let other = tenant_other(db).await;
        let owner = member(db, tenant, "c-owner@example.com", MembershipRole::Owner).await;
        let admin = member(db, tenant, "a-admin@example.com", MembershipRole::Admin).await;
        let viewer = member(db, tenant, "b-viewer@example.com", MembershipRole::Viewer).await;
        let outsider = member(db, other, "d-outsider@example.com", MembershipRole::Owner).await;

        let all = list_users(db, tenant, UserFilter::default(), page(10, 0))
            .await
            .unwrap();
        let emails: Vec<_> = all.items.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(
            emails,
            vec![
                "a-admin@example.com",
                "b-viewer@example.com",
                "c-owner@example.com"
            ],
            "by email, this tenant's only"
        );
        assert_eq!((all.total, all.has_more), (3, false));
        let first = list_users(db, tenant, UserFilter::default(), page(2, 0))
            .await
            .unwrap();
        assert_eq!(
            (first.items.len(), first.total, first.has_more),
            (2, 3, true)
        );
        let second = list_users(db, tenant, UserFilter::default(), page(2, 2))
            .await
            .unwrap();
        assert_eq!(second.items[0].id, owner.user_id);
        let viewers = list_users(
            db,
            tenant,
            UserFilter::default().with_role(MembershipRole::Viewer),
            page(10, 0),
        )
        .await
        .unwrap();
        assert_eq!(
            viewers.items.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![viewer.user_id]
        );
        assert_eq!(viewers.items[0].role, MembershipRole::Viewer);
        let suspended = list_users(
            db,
            tenant,
            UserFilter::default().with_status(UserStatus::Suspended),
            page(10, 0),
        )
        .await
        .unwrap();
        assert_eq!(suspended.total, 0);
        for bad in [page(0, 0), page(101, 0)] {
            assert!(matches!(
                list_users(db, tenant, UserFilter::default(), bad).await,
                Err(MembershipError::InvalidPage)
            ));
        }

        let (detail, capabilities) = get_user_detail(db, tenant, admin.user_id).await.unwrap();
        assert_eq!(
            (detail.email.as_str(), detail.role),
            ("a-admin@example.com", MembershipRole::Admin)
        );
        assert!(capabilities.can_manage_keys && capabilities.can_manage_users);
        assert!(!capabilities.can_change_roles);
        let (_, viewer_can) = get_user_detail(db, tenant, viewer.user_id).await.unwrap();
        assert!(!viewer_can.can_run_workers && viewer_can.can_view_runs);
        assert!(matches!(
            get_user_detail(db, tenant, outsider.user_id).await,
            Err(MembershipError::NotAMember)
        ));
        assert!(matches!(
            get_user_detail(db, tenant, UserId::new()).await,
            Err(MembershipError::NotAMember)
        ));
    }
}

#[tokio::test]
async fn users_are_created_normalised_once_per_email_and_sign_in() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let created = create_user(db, "  Fay@Example.COM ", Some("  Fay  "), now())
            .await
            .unwrap();
        assert_eq!(
            (created.email.as_str(), created.name.as_deref()),
            ("fay@example.com", Some("Fay"))
        );
        assert_eq!(
            (created.status, created.last_login_at, created.created_at),
            (UserStatus::Active, None, now())
        );
        let taken = create_user(db, "FAY@example.com", None, now())
            .await
            .unwrap_err();
        assert!(matches!(taken, UserError::EmailTaken), "{taken:?}");
        assert_eq!((taken.code(), taken.http_status()), ("email_taken", 409));
        let invalid = create_user(db, "fay.example.com", None, now())
            .await
            .unwrap_err();
        assert!(matches!(
            invalid,
            UserError::InvalidEmail(EmailError::MissingAt)
        ));
        assert_eq!(invalid.http_status(), 422);
        let long_name = "n".repeat(256);
        assert!(matches!(
            create_user(db, "gus@example.com", Some(&long_name), now()).await,
            Err(UserError::InvalidName(TextError::TooLong { max: 255, .. }))
        ));
        assert!(matches!(
            create_user(db, "gus@example.com", Some(" "), now()).await,
            Err(UserError::InvalidName(TextError::Empty { .. }))
        ));
        assert!(
            get_user_write_driver(db)
                .fetch_user_by_email("gus@example.com")
                .await
                .unwrap()
                .is_none(),
            "refused users are not created"
        );

        let later = now() + chrono::TimeDelta::hours(2);
        let signed_in = record_login(db, created.id, later).await.unwrap();
        assert_eq!(signed_in.id, created.id);
        assert_eq!(signed_in.last_login_at, Some(later));
        let again = now() + chrono::TimeDelta::hours(3);
        assert_eq!(
            record_login(db, created.id, again)
                .await
                .unwrap()
                .last_login_at,
            Some(again)
        );
        let missing = record_login(db, UserId::new(), later).await.unwrap_err();
        assert!(matches!(missing, UserError::NotFound));
        assert_eq!(missing.http_status(), 404);
    }
}

async fn tenant_other(db: Db<'_>) -> TenantId {
    tenant(db).await
}
