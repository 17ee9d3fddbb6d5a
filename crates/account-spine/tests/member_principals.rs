//! A host names the member who acts, never their power: the spine reads the role from the
//! membership before every use case (cached like keys, dropped when the role changes), and a
//! user who is no member of the tenant meets a tenant that is not there.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::invitations::Invitee;
use account_spine::runs::{AdmitRun, RunFilter};
use account_spine::types::{MembershipRole, TenantId, UserId};
use account_spine::{
    Actor, DatabaseConfig, ErrorCode, OffsetPage, OperatorPrincipal, Principal, RequestMeta, Spine,
};
use account_testkit::{backends, fresh_db};

fn claiming(tenant: TenantId, user_id: UserId, role: MembershipRole) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User { user_id, role },
        request: RequestMeta::default(),
    }
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
        token_estimate: 0,
    }
}

const PAGE: OffsetPage = OffsetPage {
    limit: 10,
    offset: 0,
};

/// A spine on a fresh database of `backend` (keep the database alive as long as the spine).
async fn spine_on(backend: &account_testkit::Backend) -> (account_testkit::TestDb, Spine) {
    let db = fresh_db(backend).await.unwrap();
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
    (db, spine)
}

/// A spine with a bootstrapped tenant: its id, its owner, and a member who joined through an
/// invitation.
async fn tenant(spine: &Spine) -> (TenantId, UserId, UserId) {
    let operator = OperatorPrincipal {
        operator_id: "test".into(),
        request: RequestMeta::default(),
    };
    let (created, _) = spine
        .bootstrap(&operator, "owner@example.com", "Acme")
        .await
        .unwrap();
    let tenant = created.tenant.id;
    let owner = spine
        .user_principal(tenant, created.owner.user_id, RequestMeta::default())
        .await
        .unwrap();
    let invited = spine
        .invite_user(&owner, "bea@example.com", MembershipRole::Member)
        .await
        .unwrap();
    let bea = spine
        .accept_invitation(
            tenant,
            invited.invitation.id,
            invited.token.expose(),
            Invitee::default(),
            RequestMeta::default(),
        )
        .await
        .unwrap();
    (tenant, created.owner.user_id, bea.user_id)
}

#[tokio::test]
async fn a_made_up_user_claiming_owner_meets_a_tenant_that_is_not_there() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let (_db, spine) = spine_on(&backend).await;
        let (tenant, owner, _) = tenant(&spine).await;
        let stranger = claiming(tenant, UserId::new(), MembershipRole::Owner);

        let listed = spine
            .list_runs(&stranger, &RunFilter::default(), PAGE)
            .await
            .unwrap_err();
        let admitted = spine.admit_run(&stranger, admit()).await.unwrap_err();
        for refused in [&listed, &admitted] {
            assert_eq!(
                (refused.code(), refused.http_status()),
                ("tenant_not_found", 404),
                "{name}: {refused:?}"
            );
        }
        // Nothing was admitted.
        let real = spine
            .user_principal(tenant, owner, RequestMeta::default())
            .await
            .unwrap();
        let runs = spine
            .list_runs(&real, &RunFilter::default(), PAGE)
            .await
            .unwrap();
        assert_eq!(runs.total, 0, "{name}");
        // The same through the principal a host obtains from the spine.
        let refused = spine
            .user_principal(tenant, UserId::new(), RequestMeta::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "tenant_not_found", "{name}");
    }
}

#[tokio::test]
async fn a_claimed_role_grants_nothing_and_a_demotion_takes_effect_at_once() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let (_db, spine) = spine_on(&backend).await;
        let (tenant, owner, bea) = tenant(&spine).await;
        let owner = spine
            .user_principal(tenant, owner, RequestMeta::default())
            .await
            .unwrap();

        // Bea is a member who claims to own the tenant: inviting needs an admin.
        let claimed = claiming(tenant, bea, MembershipRole::Owner);
        let refused = spine
            .invite_user(&claimed, "cy@example.com", MembershipRole::Member)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("forbidden", 403),
            "{name}"
        );
        // What the spine hands out carries the membership's role.
        let obtained = spine
            .user_principal(tenant, bea, RequestMeta::default())
            .await
            .unwrap();
        assert!(
            matches!(
                obtained.actor,
                Actor::User {
                    role: MembershipRole::Member,
                    ..
                }
            ),
            "{name}: {obtained:?}"
        );

        // Promoted, she invites; her role is cached from here on...
        spine
            .change_role(&owner, bea, MembershipRole::Admin)
            .await
            .unwrap();
        spine
            .invite_user(&claimed, "cy@example.com", MembershipRole::Member)
            .await
            .unwrap();
        // ...and a demotion drops it when it commits: the next request is refused.
        spine
            .change_role(&owner, bea, MembershipRole::Viewer)
            .await
            .unwrap();
        let refused = spine
            .invite_user(&claimed, "dee@example.com", MembershipRole::Member)
            .await
            .unwrap_err();
        assert_eq!(refused.http_status(), 403, "{name}: {refused:?}");
        // Removed, she is no member: the tenant is not there for her.
        spine.remove_user(&owner, bea).await.unwrap();
        let refused = spine
            .list_runs(&claimed, &RunFilter::default(), PAGE)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "tenant_not_found", "{name}");
    }
}

#[tokio::test]
async fn removing_a_member_never_revokes_the_last_key_manager_with_them() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let (_db, spine) = spine_on(&backend).await;
        let (tenant, owner, bea) = tenant(&spine).await;
        let owner = spine
            .user_principal(tenant, owner, RequestMeta::default())
            .await
            .unwrap();
        // Bea becomes an owner and holds the tenant's only key manager: her personal key, once
        // the bootstrap key is revoked with it.
        spine
            .change_role(&owner, bea, MembershipRole::Owner)
            .await
            .unwrap();
        let bea_owner = spine
            .user_principal(tenant, bea, RequestMeta::default())
            .await
            .unwrap();
        let manager = spine
            .issue_api_key(
                &bea_owner,
                IssueKey {
                    name: "bea's manager".into(),
                    permissions: vec!["keys:manage".into()],
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let by_manager = spine
            .authenticate_api_key(manager.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        let keys = spine.list_api_keys(&by_manager, false, PAGE).await.unwrap();
        let bootstrap = keys
            .items
            .iter()
            .find(|k| k.name == "bootstrap")
            .unwrap()
            .id;
        spine
            .revoke_api_key(&by_manager, bootstrap, "leaked")
            .await
            .unwrap();

        // Removing her would revoke it with her, and no owner can sign in: refused, nothing
        // changed.
        let refused = spine.remove_user(&owner, bea).await.unwrap_err();
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("last_key_manager", 409),
            "{name}: {refused:?}"
        );
        assert!(
            spine
                .authenticate_api_key(manager.plaintext.expose(), RequestMeta::default())
                .await
                .is_ok(),
            "{name}: her key still works"
        );
        // With another manager key, she can go.
        spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "owner's manager".into(),
                    permissions: vec!["keys:manage".into()],
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        spine.remove_user(&owner, bea).await.unwrap();
    }
}

#[tokio::test]
async fn a_demoted_owners_manager_key_loses_the_owner_powers_at_once() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let (_db, spine) = spine_on(&backend).await;
        let (tenant, owner, bea) = tenant(&spine).await;
        let owner = spine
            .user_principal(tenant, owner, RequestMeta::default())
            .await
            .unwrap();
        spine
            .change_role(&owner, bea, MembershipRole::Owner)
            .await
            .unwrap();
        let bea_owner = spine
            .user_principal(tenant, bea, RequestMeta::default())
            .await
            .unwrap();
        let manager = spine
            .issue_api_key(
                &bea_owner,
                IssueKey {
                    name: "bea's manager".into(),
                    permissions: vec!["keys:manage".into()],
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let by_manager = spine
            .authenticate_api_key(manager.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        let owner_key = || IssueKey {
            name: "another manager".into(),
            permissions: vec!["keys:manage".into()],
            ..IssueKey::default()
        };
        // As an owner's, her key mints owner keys.
        let minted = spine.issue_api_key(&by_manager, owner_key()).await.unwrap();

        // An admin may manage keys but grant no owner key: her key is capped the same way.
        spine
            .change_role(&owner, bea, MembershipRole::Admin)
            .await
            .unwrap();
        let refused = spine
            .issue_api_key(&by_manager, owner_key())
            .await
            .unwrap_err();
        assert_eq!(refused.http_status(), 403, "{name}: {refused:?}");
        // It still manages keys as an admin does: it revokes the key it minted.
        spine
            .revoke_api_key(&by_manager, minted.key.id, "no longer needed")
            .await
            .unwrap();

        // A member manages no keys: refused before anything runs, and audited as a refusal.
        spine
            .change_role(&owner, bea, MembershipRole::Member)
            .await
            .unwrap();
        let refused = spine
            .list_api_keys(&by_manager, false, PAGE)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), refused.http_status()),
            ("forbidden", 403),
            "{name}: {refused:?}"
        );
        let keys = spine.list_api_keys(&owner, false, PAGE).await.unwrap();
        let bootstrap = keys.items.iter().find(|k| k.name == "bootstrap").unwrap();
        let refused = spine
            .revoke_api_key(&by_manager, bootstrap.id, "taking over")
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "forbidden", "{name}: {refused:?}");
        assert!(
            spine
                .list_api_keys(&owner, false, PAGE)
                .await
                .unwrap()
                .items
                .iter()
                .any(|k| k.id == bootstrap.id && k.revoked_at.is_none()),
            "{name}: the bootstrap key still works"
        );
    }
}

#[tokio::test]
async fn a_demoted_admins_webhook_key_loses_webhooks_at_once() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let (_db, spine) = spine_on(&backend).await;
        let (tenant, owner, bea) = tenant(&spine).await;
        let owner = spine
            .user_principal(tenant, owner, RequestMeta::default())
            .await
            .unwrap();
        spine
            .change_role(&owner, bea, MembershipRole::Admin)
            .await
            .unwrap();
        let bea_admin = spine
            .user_principal(tenant, bea, RequestMeta::default())
            .await
            .unwrap();
        let issued = spine
            .issue_api_key(
                &bea_admin,
                IssueKey {
                    name: "bea's webhooks".into(),
                    permissions: vec!["webhooks:manage".into()],
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let by_key = spine
            .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        assert!(
            spine.list_webhook_endpoints(&by_key).await.is_ok(),
            "{name}"
        );

        spine
            .change_role(&owner, bea, MembershipRole::Member)
            .await
            .unwrap();
        let refused = spine.list_webhook_endpoints(&by_key).await.unwrap_err();
        assert_eq!(refused.http_status(), 403, "{name}: {refused:?}");
    }
}
