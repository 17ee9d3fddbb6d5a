//! Key management that cannot lock a tenant out (issue 19): owner keys manage every key, the
//! bootstrap key included; a key is rotated exactly once under any race; the last key able
//! to manage keys is not removed while no owner can sign in, under any race; listings compute
//! the status; keys carry metadata; a service credential verifies keys of its own tenant.
//! Every test runs on SQLite and PostgreSQL.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_engines::Db;
use account_spine::api_keys::{IssueKey, IssuedKey, KeyVerification};
use account_spine::types::{ApiKeyStatus, MembershipRole, TenantId, UserId};
use account_spine::{
    Actor, ErrorCode, OffsetPage, OperatorPrincipal, Principal, RequestMeta, Spine, SpineError,
};
use account_testkit::backends;
use chrono::TimeDelta;
use serde_json::json;
use support::{Env, env, start};

const PAGE: OffsetPage = OffsetPage {
    limit: 50,
    offset: 0,
};

/// Racing callers per race.
const RACERS: usize = 12;

struct Tenant {
    id: TenantId,
    owner_user: UserId,
    /// The bootstrap key (the owner's key, holding `keys:manage`).
    bootstrap: IssuedKey,
}

async fn bootstrap(spine: &Spine, name: &str) -> Tenant {
    let operator = OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    };
    let email = format!("owner@{}.example.com", name.to_lowercase());
    let (created, key) = spine.bootstrap(&operator, &email, name).await.unwrap();
    Tenant {
        id: created.tenant.id,
        owner_user: created.owner.user_id,
        bootstrap: key,
    }
}

fn as_user(tenant: TenantId, user_id: UserId, role: MembershipRole) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User { user_id, role },
        request: RequestMeta::default(),
    }
}

async fn principal_of(spine: &Spine, key: &IssuedKey) -> Principal {
    spine
        .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap()
}

async fn issue(spine: &Spine, issuer: &Principal, permissions: &[&str]) -> IssuedKey {
    spine
        .issue_api_key(
            issuer,
            IssueKey {
                name: "k".into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap()
}

fn code<T: std::fmt::Debug>(result: Result<T, SpineError>) -> &'static str {
    result.unwrap_err().code()
}

/// Links an identity to `user`: what OpenID Connect sign-in will do on acceptance.
async fn link_identity(env: &Env, user: UserId) {
    let conn = env.entities().await;
    account_engines::identities::link_identity(
        Db::for_pool(&conn),
        "https://idp.example.com",
        &format!("sub-{user}"),
        user,
        start(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn owner_keys_issue_manager_keys_and_rotate_and_revoke_the_bootstrap_key() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, name) = (&env.spine, env.backend);
        let t = bootstrap(spine, "Acme").await;
        let owner_key = principal_of(spine, &t.bootstrap).await;

        // An owner key issues `keys:manage` and `keys:verify` (was `permission_too_wide`).
        let manager = issue(spine, &owner_key, &["keys:manage", "read:*"]).await;
        assert_eq!(manager.key.permissions, ["keys:manage", "read:*"], "{name}");
        issue(spine, &owner_key, &["keys:verify"]).await;
        // Still nothing it lacks itself: the manager key holds no billing.
        let manager_key = principal_of(spine, &manager).await;
        let refused = spine
            .issue_api_key(
                &manager_key,
                IssueKey {
                    name: "wider".into(),
                    permissions: vec!["billing:read".into()],
                    ..IssueKey::default()
                },
            )
            .await;
        assert_eq!(code(refused), "permission_not_held", "{name}");

        // The owner key rotates the bootstrap key itself (was `permission_too_wide`); the
        // answer shows the old key's grace expiry and its successor.
        let rotated = spine
            .rotate_api_key(&owner_key, t.bootstrap.key.id, TimeDelta::hours(1))
            .await
            .unwrap();
        let successor = rotated.issued.key.id;
        assert_eq!(rotated.previous.successor_id, Some(successor), "{name}");
        assert_eq!(
            rotated.previous.expires_at,
            Some(start() + TimeDelta::hours(1)),
            "{name}"
        );
        assert_eq!(rotated.issued.key.rotated_from_id, Some(t.bootstrap.key.id));

        // Another owner key revokes the old bootstrap key and its successor; the tenant still
        // manages keys with it.
        for key in [t.bootstrap.key.id, successor] {
            let revoked = spine
                .revoke_api_key(&manager_key, key, "leaked")
                .await
                .unwrap();
            assert_eq!(revoked.key.status, ApiKeyStatus::Revoked, "{name}");
        }
        issue(spine, &manager_key, &["read:*"]).await;

        // Admins keep their limits: no `keys:manage` or `keys:verify` to grant or rotate.
        let admin = as_user(t.id, t.owner_user, MembershipRole::Admin);
        for permission in ["keys:manage", "keys:verify"] {
            let refused = spine
                .issue_api_key(
                    &admin,
                    IssueKey {
                        name: "admin".into(),
                        permissions: vec![permission.into()],
                        ..IssueKey::default()
                    },
                )
                .await;
            assert_eq!(code(refused), "permission_too_wide", "{name} {permission}");
        }
        let refused = spine
            .rotate_api_key(&admin, manager.key.id, TimeDelta::zero())
            .await;
        assert_eq!(code(refused), "permission_too_wide", "{name}");
    }
}

#[tokio::test]
async fn a_rotated_key_is_not_rotated_again() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, name) = (&env.spine, env.backend);
        let t = bootstrap(spine, "Acme").await;
        let owner = as_user(t.id, t.owner_user, MembershipRole::Owner);
        let key = issue(spine, &owner, &["read:*"]).await;
        spine
            .rotate_api_key(&owner, key.key.id, TimeDelta::hours(1))
            .await
            .unwrap();
        let again = spine
            .rotate_api_key(&owner, key.key.id, TimeDelta::hours(1))
            .await;
        let error = again.unwrap_err();
        assert_eq!(error.code(), "api_key_already_rotated", "{name}");
        assert_eq!(error.http_status(), 409, "{name}");
        let keys = spine.list_api_keys(&owner, true, PAGE).await.unwrap();
        let successors = keys
            .items
            .iter()
            .filter(|k| k.rotated_from_id == Some(key.key.id))
            .count();
        assert_eq!(successors, 1, "{name}");
    }
}

#[tokio::test]
async fn racing_rotations_of_one_key_produce_exactly_one_successor() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        let t = bootstrap(&env.spine, "Acme").await;
        let owner = as_user(t.id, t.owner_user, MembershipRole::Owner);
        let key = issue(&env.spine, &owner, &["run:*"]).await.key.id;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut tasks = Vec::new();
        for _ in 0..RACERS {
            let (spine, owner, barrier) = (env.spine.clone(), owner.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                spine
                    .rotate_api_key(&owner, key, TimeDelta::minutes(5))
                    .await
                    .map(|rotated| rotated.issued.key.id)
            }));
        }
        let mut won = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(successor) => won.push(successor),
                Err(error) => assert_eq!(error.code(), "api_key_already_rotated", "{name}"),
            }
        }
        assert_eq!(won.len(), 1, "{name}: {won:?}");
        let keys = env.spine.list_api_keys(&owner, true, PAGE).await.unwrap();
        let successors: Vec<_> = keys
            .items
            .iter()
            .filter(|k| k.rotated_from_id == Some(key))
            .map(|k| k.id)
            .collect();
        assert_eq!(successors, won, "{name}: one successor row, the winner's");
        let old = keys.items.iter().find(|k| k.id == key).unwrap();
        assert_eq!(old.successor_id, Some(won[0]), "{name}");
    }
}

#[tokio::test]
async fn the_last_key_manager_stays_while_no_owner_can_sign_in() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, name) = (&env.spine, env.backend);
        let t = bootstrap(spine, "Acme").await;
        let owner = as_user(t.id, t.owner_user, MembershipRole::Owner);
        let bootstrap_id = t.bootstrap.key.id;

        // The bootstrap key is the only key manager and the owner has no identity link.
        let error = spine
            .revoke_api_key(&owner, bootstrap_id, "leaked")
            .await
            .unwrap_err();
        assert_eq!(
            (error.code(), error.http_status()),
            ("last_key_manager", 409),
            "{name}"
        );
        let keys = spine.list_api_keys(&owner, true, PAGE).await.unwrap();
        assert_eq!(keys.items[0].status, ApiKeyStatus::Active, "{name}");
        // Rotating it away is fine: the successor manages keys.
        let rotated = spine
            .rotate_api_key(&owner, bootstrap_id, TimeDelta::zero())
            .await
            .unwrap();
        let successor = rotated.issued.key.id;
        // The old key in its (empty) grace is no manager any more: revoking it is fine, the
        // successor is not.
        spine
            .revoke_api_key(&owner, bootstrap_id, "rotated")
            .await
            .unwrap();
        let refused = spine.revoke_api_key(&owner, successor, "leaked").await;
        assert_eq!(code(refused), "last_key_manager", "{name}");
        // Keys that manage nothing are revoked freely.
        let reader = issue(spine, &owner, &["read:*"]).await;
        spine
            .revoke_api_key(&owner, reader.key.id, "unused")
            .await
            .unwrap();

        // Once an owner can sign in, the last key manager may go.
        link_identity(&env, t.owner_user).await;
        spine
            .revoke_api_key(&owner, successor, "leaked")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn racing_revocations_of_the_last_two_key_managers_leave_one() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        for round in 0..4 {
            let t = bootstrap(&env.spine, &format!("Acme{round}")).await;
            let owner = as_user(t.id, t.owner_user, MembershipRole::Owner);
            let second = issue(&env.spine, &owner, &["keys:manage"]).await.key.id;
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
            let mut tasks = Vec::new();
            for key in [t.bootstrap.key.id, second] {
                let (spine, owner, barrier) = (env.spine.clone(), owner.clone(), barrier.clone());
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    spine.revoke_api_key(&owner, key, "race").await
                }));
            }
            let mut codes = Vec::new();
            for task in tasks {
                codes.push(match task.await.unwrap() {
                    Ok(_) => "revoked",
                    Err(error) => error.code(),
                });
            }
            codes.sort_unstable();
            assert_eq!(
                codes,
                ["last_key_manager", "revoked"],
                "{name} round {round}"
            );
            let keys = env.spine.list_api_keys(&owner, false, PAGE).await.unwrap();
            let managers = keys
                .items
                .iter()
                .filter(|k| k.permissions.iter().any(|p| p == "keys:manage"))
                .count();
            assert_eq!(managers, 1, "{name} round {round}");
        }
    }
}

#[tokio::test]
async fn listings_compute_expired_and_show_rotation_in_grace() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, name) = (&env.spine, env.backend);
        let t = bootstrap(spine, "Acme").await;
        let owner = as_user(t.id, t.owner_user, MembershipRole::Owner);
        let short = spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "short".into(),
                    expires_at: Some(start() + TimeDelta::hours(1)),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let rotating = issue(spine, &owner, &["read:*"]).await;
        let rotated = spine
            .rotate_api_key(&owner, rotating.key.id, TimeDelta::hours(3))
            .await
            .unwrap();

        env.clock.advance(TimeDelta::hours(2));
        let keys = spine.list_api_keys(&owner, false, PAGE).await.unwrap();
        let status = |id| keys.items.iter().find(|k| k.id == id).unwrap();
        assert_eq!(status(short.key.id).status, ApiKeyStatus::Expired, "{name}");
        // In its grace the rotated key works and says so: active, with its successor and end.
        let old = status(rotating.key.id);
        assert_eq!(old.status, ApiKeyStatus::Active, "{name}");
        assert_eq!(old.successor_id, Some(rotated.issued.key.id), "{name}");
        assert_eq!(
            old.expires_at,
            Some(start() + TimeDelta::hours(3)),
            "{name}"
        );

        env.clock.advance(TimeDelta::hours(2));
        let keys = spine.list_api_keys(&owner, false, PAGE).await.unwrap();
        let old = keys.items.iter().find(|k| k.id == rotating.key.id).unwrap();
        assert_eq!(old.status, ApiKeyStatus::Expired, "{name}");
    }
}

#[tokio::test]
async fn metadata_is_an_object_of_at_most_4_kib_set_at_issue_and_by_update() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, name) = (&env.spine, env.backend);
        let t = bootstrap(spine, "Acme").await;
        let owner = as_user(t.id, t.owner_user, MembershipRole::Owner);
        let issued = spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "tagged".into(),
                    metadata: Some(json!({"team": "billing", "tier": 2})),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            issued.key.metadata,
            Some(json!({"team": "billing", "tier": 2}))
        );

        let too_big = json!({"blob": "x".repeat(4100)});
        for bad in [
            json!([1, 2]),
            json!("text"),
            json!(7),
            too_big,
            json!({"a": "\0"}),
        ] {
            let error = spine
                .issue_api_key(
                    &owner,
                    IssueKey {
                        name: "bad".into(),
                        metadata: Some(bad.clone()),
                        ..IssueKey::default()
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(
                (error.code(), error.http_status(), error.field()),
                ("invalid_metadata", 422, Some("metadata")),
                "{name} {bad}"
            );
            let refused = spine
                .update_api_key_metadata(&owner, issued.key.id, Some(bad))
                .await;
            assert_eq!(code(refused), "invalid_metadata", "{name}");
        }
        // Exactly 4096 bytes serialized is accepted.
        let edge = json!({"b": "x".repeat(4096 - r#"{"b":""}"#.len())});
        assert_eq!(serde_json::to_vec(&edge).unwrap().len(), 4096);
        spine
            .update_api_key_metadata(&owner, issued.key.id, Some(edge))
            .await
            .unwrap();

        let updated = spine
            .update_api_key_metadata(&owner, issued.key.id, Some(json!({"team": "ops"})))
            .await
            .unwrap();
        assert_eq!(updated.metadata, Some(json!({"team": "ops"})), "{name}");
        let conn = env.second().await;
        let audited = support::audit_actions(&conn).await;
        assert_eq!(
            audited.get("api_key.updated"),
            Some(&2),
            "{name}: {audited:?}"
        );
        let cleared = spine
            .update_api_key_metadata(&owner, issued.key.id, None)
            .await
            .unwrap();
        assert_eq!(cleared.metadata, None, "{name}");
        // Rotation carries it on.
        spine
            .update_api_key_metadata(&owner, issued.key.id, Some(json!({"k": 1})))
            .await
            .unwrap();
        let rotated = spine
            .rotate_api_key(&owner, issued.key.id, TimeDelta::zero())
            .await
            .unwrap();
        assert_eq!(rotated.issued.key.metadata, Some(json!({"k": 1})), "{name}");
    }
}

#[tokio::test]
async fn a_service_credential_verifies_keys_of_its_own_tenant_only() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, name) = (&env.spine, env.backend);
        let t = bootstrap(spine, "Acme").await;
        let other = bootstrap(spine, "Other").await;
        let owner = as_user(t.id, t.owner_user, MembershipRole::Owner);
        let service = principal_of(spine, &issue(spine, &owner, &["keys:verify"]).await).await;
        let presented = spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "customer".into(),
                    permissions: vec!["run:*".into()],
                    rate_limit_rpm: Some(60),
                    metadata: Some(json!({"customer": "c-42"})),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();

        let verdict = spine
            .verify_presented_key(&service, presented.plaintext.expose())
            .await
            .unwrap();
        let KeyVerification::Valid(valid) = verdict else {
            panic!("{name}: {verdict:?}");
        };
        assert_eq!(valid.tenant_id, t.id, "{name}");
        assert_eq!(valid.key_id, presented.key.id, "{name}");
        assert_eq!(valid.permissions, ["run:*"], "{name}");
        assert_eq!(valid.metadata, Some(json!({"customer": "c-42"})), "{name}");
        assert_eq!(valid.rate_limit_rpm, Some(60), "{name}");

        let invalid = |code| KeyVerification::Invalid { code };
        let verify = |key: String| {
            let service = service.clone();
            async move { spine.verify_presented_key(&service, &key).await.unwrap() }
        };
        // Another tenant's key answers exactly like a key that does not exist.
        let foreign = other.bootstrap.plaintext.expose().to_owned();
        assert_eq!(verify(foreign).await, invalid("invalid_api_key"), "{name}");
        assert_eq!(
            verify("acc_live_nope".into()).await,
            invalid("malformed_api_key"),
            "{name}"
        );
        spine
            .revoke_api_key(&owner, presented.key.id, "leaked")
            .await
            .unwrap();
        let revoked = presented.plaintext.expose().to_owned();
        assert_eq!(verify(revoked).await, invalid("api_key_revoked"), "{name}");
        let expiring = spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "short".into(),
                    expires_at: Some(start() + TimeDelta::minutes(1)),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        env.clock.advance(TimeDelta::minutes(2));
        let expired = expiring.plaintext.expose().to_owned();
        assert_eq!(verify(expired).await, invalid("api_key_expired"), "{name}");

        // Only `keys:verify` (or `keys:manage`) verifies; `keys:verify` manages nothing.
        let runner = principal_of(spine, &issue(spine, &owner, &["run:*", "read:*"]).await).await;
        let refused = spine.verify_presented_key(&runner, "acc_live_x").await;
        assert_eq!(code(refused), "forbidden", "{name}");
        let refused = spine.list_api_keys(&service, false, PAGE).await;
        assert_eq!(code(refused), "forbidden", "{name}");
    }
}
