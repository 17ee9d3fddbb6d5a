//! Personal API keys (issued for a user) act on the user's behalf in account use cases,
//! bounded by the key's permissions and the user's current role, re-read at use; machine keys
//! (issued for no user) are refused account use cases with a typed 403. Removing a member
//! revokes their personal keys of that tenant with the membership.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::invitations::Invitee;
use account_spine::memberships::UserFilter;
use account_spine::types::{MembershipRole, UserId};
use account_spine::{
    Actor, DatabaseConfig, ErrorCode, OffsetPage, OperatorPrincipal, Principal, RequestMeta, Spine,
    SpineError,
};
use account_testkit::{backends, fresh_db};

fn as_user(
    tenant: account_spine::types::TenantId,
    user_id: UserId,
    role: MembershipRole,
) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User { user_id, role },
        request: RequestMeta::default(),
    }
}

async fn key_for(spine: &Spine, issuer: &Principal, permissions: &[&str]) -> Principal {
    let issued = spine
        .issue_api_key(
            issuer,
            IssueKey {
                name: "k".into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    spine
        .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap()
}

const PAGE: OffsetPage = OffsetPage {
    limit: 20,
    offset: 0,
};

#[tokio::test]
async fn personal_keys_follow_their_users_current_role_and_machine_keys_are_refused() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap()
            .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (created, bootstrap_key) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        let tenant = created.tenant.id;
        let owner = as_user(tenant, created.owner.user_id, MembershipRole::Owner);

        // The bootstrap key is the owner's personal key.
        let bootstrap = spine
            .authenticate_api_key(bootstrap_key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        assert!(
            matches!(bootstrap.actor, Actor::ApiKey { user_id: Some(u), .. } if u == created.owner.user_id),
            "{name}"
        );

        // An admin joins and gets a personal key with `users:manage`.
        let issued = spine
            .invite_user(&owner, "admin@example.com", MembershipRole::Admin)
            .await
            .unwrap();
        let joined = spine
            .accept_invitation(
                tenant,
                issued.invitation.id,
                issued.token.expose(),
                Invitee {
                    external_user_id: None,
                    name: None,
                },
                RequestMeta::default(),
            )
            .await
            .unwrap();
        let admin = as_user(tenant, joined.user_id, MembershipRole::Admin);
        let admin_key = key_for(&spine, &admin, &["users:manage", "read:*"]).await;
        spine
            .invite_user(&admin_key, "a@example.com", MembershipRole::Member)
            .await
            .unwrap();
        assert_eq!(
            spine
                .list_users(&admin_key, UserFilter::default(), PAGE)
                .await
                .unwrap()
                .total,
            2,
            "{name}: users:manage covers users:read"
        );

        // A key without the permission is refused even though the user could.
        let narrow = key_for(&spine, &admin, &["read:*"]).await;
        let refused = spine
            .invite_user(&narrow, "b@example.com", MembershipRole::Member)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );
        // `read:*` does not read billing, even on an admin's key.
        let refused = spine.billing_summary(&narrow).await.unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );

        // Demoted: the same key loses the power at once.
        spine
            .change_role(&owner, joined.user_id, MembershipRole::Viewer)
            .await
            .unwrap();
        let refused = spine
            .invite_user(&admin_key, "c@example.com", MembershipRole::Member)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{name}: {refused:?}"
        );
        assert_eq!(refused.http_status(), 403);
        // Viewers may still list users.
        assert!(
            spine
                .list_users(&admin_key, UserFilter::default(), PAGE)
                .await
                .is_ok()
        );

        // Removed: nothing at all.
        spine.remove_user(&owner, joined.user_id).await.unwrap();
        let refused = spine
            .list_users(&admin_key, UserFilter::default(), PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{name}: {refused:?}"
        );

        // A key issued by a key is a machine key: typed 403 on every account use case.
        let machine = key_for(&spine, &bootstrap, &["read:*"]).await;
        assert!(matches!(machine.actor, Actor::ApiKey { user_id: None, .. }));
        let refused = spine.get_profile(&machine).await.unwrap_err();
        assert!(
            matches!(refused, SpineError::MachineKey { .. }),
            "{refused:?}"
        );
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("machine_key_not_allowed", 403)
        );
        let refused = spine
            .list_users(&machine, UserFilter::default(), PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::MachineKey { .. }),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn members_cannot_mint_keys_wider_than_their_role() {
    for backend in backends().unwrap() {
        let db = fresh_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap()
            .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (created, _) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        let admin = as_user(
            created.tenant.id,
            created.owner.user_id,
            MembershipRole::Admin,
        );
        for wide in ["keys:manage"] {
            let refused = spine
                .issue_api_key(
                    &admin,
                    IssueKey {
                        name: "k".into(),
                        permissions: vec![wide.to_owned()],
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(refused.http_status(), 403, "{wide}: {refused:?}");
        }
        // An admin may grant billing and user management.
        key_for(&spine, &admin, &["billing:read", "users:manage"]).await;
    }
}

/// Rows of `table` matching `filter` (SQL both backends read alike).
async fn count(db: &sea_orm::DatabaseConnection, table: &str, filter: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn removing_a_member_revokes_their_personal_keys_at_once() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap()
            .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (created, bootstrap_key) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        let tenant = created.tenant.id;
        let owner = as_user(tenant, created.owner.user_id, MembershipRole::Owner);
        let issued = spine
            .invite_user(&owner, "leaver@example.com", MembershipRole::Admin)
            .await
            .unwrap();
        let joined = spine
            .accept_invitation(
                tenant,
                issued.invitation.id,
                issued.token.expose(),
                Invitee {
                    external_user_id: None,
                    name: None,
                },
                RequestMeta::default(),
            )
            .await
            .unwrap();
        let leaver = as_user(tenant, joined.user_id, MembershipRole::Admin);
        let personal = spine
            .issue_api_key(
                &leaver,
                IssueKey {
                    name: "laptop".into(),
                    permissions: vec!["run:*".into(), "read:*".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // Verified twice: the second answer comes from the verify cache.
        for _ in 0..2 {
            spine
                .authenticate_api_key(personal.plaintext.expose(), RequestMeta::default())
                .await
                .unwrap();
        }
        let conn = db.second_connection().await.unwrap();
        let leaver_default = "email = 'leaver@example.com' AND default_tenant_id IS NOT NULL";
        assert_eq!(
            count(&conn, "users", leaver_default).await,
            1,
            "{name}: joined tenant becomes the default"
        );

        spine.remove_user(&owner, joined.user_id).await.unwrap();

        let refused = spine
            .authenticate_api_key(personal.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("api_key_revoked", 401),
            "{name}: the removed member's key stops at once, cache or not"
        );
        // The owner's key is untouched.
        spine
            .authenticate_api_key(bootstrap_key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        assert_eq!(
            count(&conn, "users", leaver_default).await,
            0,
            "{name}: default cleared"
        );
        assert_eq!(
            count(
                &conn,
                "users",
                "email = 'owner@example.com' AND default_tenant_id IS NOT NULL"
            )
            .await,
            1
        );
        let audited = format!(
            "action = 'membership.removed' AND CAST(old_value AS TEXT) LIKE '%{}%'",
            personal.key.id
        );
        assert_eq!(
            count(&conn, "audit_log", &audited).await,
            1,
            "{name}: the removal's audit row lists the revoked key"
        );
    }
}
