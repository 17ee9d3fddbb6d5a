//! Membership rules through the engine, on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::tenants::NewTenant;
use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_tenant_driver, get_user_write_driver};
use account_engines::memberships::{
    Acting, MembershipError, change_role, remove_member, transfer_ownership,
};
use account_engines::types::*;
use account_engines::{Db, ErrorCode};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn tenant(db: Db<'_>) -> TenantId {
    let id = TenantId::new();
    get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id,
                name: "T".into(),
                slug: format!("t-{}", id.as_uuid().simple()),
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

        let error = change_role(
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
        let error = change_role(
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
        let changed = change_role(
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
            change_role(db, tenant, owner, stranger, MembershipRole::Admin, now()).await,
            Err(MembershipError::NotAMember)
        ));

        // The last owner can neither leave nor be removed; an admin cannot remove an owner.
        assert!(matches!(
            remove_member(db, tenant, owner, owner.user_id).await,
            Err(MembershipError::LastOwner)
        ));
        assert!(matches!(
            remove_member(db, tenant, admin, owner.user_id).await,
            Err(MembershipError::OwnerRemovalNeedsOwner)
        ));
        let error = remove_member(db, tenant, viewer, admin.user_id)
            .await
            .unwrap_err();
        assert!(matches!(error, MembershipError::CannotManageUsers(_)));
        assert!((400..500).contains(&error.http_status()));
        remove_member(db, tenant, admin, viewer.user_id)
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
        let error = change_role(
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
            matches!(error, MembershipError::LastOwner),
            "a stale owner principal cannot demote the last owner: {error}"
        );
        assert!(matches!(
            transfer_ownership(db, tenant, new_owner, new_owner.user_id, now()).await,
            Err(MembershipError::TransferToSelf)
        ));
    }
}
