//! The API-key engine on each backend: issue, verify, revoke, rotate, and every refusal.
//!
//! Over 600 lines on purpose: one test binary for the whole key engine (link time on 2 cores),
//! every scenario sharing the fixtures at the top.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_drivers::audit::AuditFilter;
use account_drivers::get_tenant_driver;
use account_drivers::tenants::NewTenant;
use account_drivers::{OffsetPage, StatementCounter};
use account_engines::ErrorCode;
use account_engines::api_keys::{
    ApiKeyError, ApiKeyPepper, IssueKeyRequest, IssuedKey, Issuer, IssuingKey, KeyActor, KeyAudit,
    get_api_key, issue_api_key, list_api_keys, revoke_api_key, rotate_api_key, verify_api_key,
};
use account_engines::types::*;
use account_engines::{Db, Page};
use account_testkit::{backends, fresh_db};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn pepper() -> ApiKeyPepper {
    ApiKeyPepper::from_bytes(b"test-pepper-test-pepper-test-pepper!").unwrap()
}

const ADMIN: KeyActor = KeyActor {
    user_id: None,
    role: MembershipRole::Admin,
    issuing_key: None,
    audit: KeyAudit::NONE,
};

const OWNER: KeyActor = KeyActor {
    user_id: None,
    role: MembershipRole::Owner,
    issuing_key: None,
    audit: KeyAudit::NONE,
};

/// An API key acting on keys: the spine gives it the admin ceiling and its own permissions.
fn key_actor(permissions: &[&str]) -> KeyActor {
    KeyActor {
        user_id: None,
        role: MembershipRole::Admin,
        issuing_key: Some(IssuingKey {
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            ..IssuingKey::default()
        }),
        audit: KeyAudit::NONE,
    }
}

async fn new_tenant(db: Db<'_>, slug: &str) -> TenantId {
    get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id: TenantId::new(),
                name: slug.into(),
                slug: slug.into(),
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
        .unwrap()
        .id
}

fn request(tenant: TenantId, role: MembershipRole) -> IssueKeyRequest {
    IssueKeyRequest {
        tenant_id: tenant,
        issuer: Issuer {
            user_id: None,
            role,
            issuing_key: None,
            audit: KeyAudit::NONE,
        },
        name: "ci".into(),
        permissions: vec![],
        allowed_workers: None,
        rate_limit_rpm: Some(60),
        max_concurrent_runs: Some(2),
        expires_at: None,
        metadata: None,
    }
}

async fn issue(db: Db<'_>, tenant: TenantId) -> IssuedKey {
    issue_api_key(db, &pepper(), request(tenant, MembershipRole::Admin), now())
        .await
        .unwrap()
}

async fn verify(db: Db<'_>, key: &str, at: DateTime<Utc>) -> Result<TenantId, ApiKeyError> {
    verify_api_key(db, &pepper(), key, None, None, at)
        .await
        .map(|p| p.tenant_id)
}

#[tokio::test]
async fn an_issued_key_verifies_and_only_its_settings_are_audited() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-issue").await;
        let mut req = request(tenant, MembershipRole::Owner);
        req.name = "  deploy bot ".into();
        req.permissions = vec!["run:*".into(), "read:usage".into()];
        req.allowed_workers = Some(vec!["business-builder".into()]);
        let issued = issue_api_key(db, &pepper(), req, now()).await.unwrap();
        let plaintext = issued.plaintext.expose().to_owned();
        assert_eq!(issued.key.name, "deploy bot");
        assert_eq!(issued.key.key_prefix, &plaintext[..16]);
        assert_eq!(issued.key.permissions, vec!["run:*", "read:usage"]);
        assert_eq!(issued.key.status, ApiKeyStatus::Active);
        assert!(!format!("{issued:?}").contains(&plaintext), "Debug redacts");

        let principal = verify_api_key(
            db,
            &pepper(),
            &plaintext,
            Some("run:business-builder"),
            Some("business-builder"),
            now(),
        )
        .await
        .unwrap();
        assert_eq!(principal.tenant_id, tenant);
        assert_eq!(principal.key_id, issued.key.id);
        assert_eq!(principal.rate_limit_rpm, Some(60));
        assert_eq!(principal.max_concurrent_runs, Some(2));

        let denied = verify_api_key(db, &pepper(), &plaintext, Some("read:runs"), None, now())
            .await
            .unwrap_err();
        assert!(
            matches!(&denied, ApiKeyError::PermissionDenied { required } if required == "read:runs")
        );
        assert_eq!(denied.http_status(), 403);
        let not_allowed =
            verify_api_key(db, &pepper(), &plaintext, Some("run:x"), Some("x"), now())
                .await
                .unwrap_err();
        assert!(matches!(not_allowed, ApiKeyError::WorkerNotAllowed { .. }));
        let other_pepper = ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap();
        assert!(matches!(
            verify_api_key(db, &other_pepper, &plaintext, None, None, now()).await,
            Err(ApiKeyError::InvalidKey)
        ));

        let log = get_tenant_driver(db)
            .fetch_audit_log_after(tenant, &AuditFilter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(log.items.len(), 1);
        let entry = &log.items[0];
        assert_eq!(entry.action, "api_key.created");
        assert_eq!(entry.resource_id, Some(issued.key.id.to_string()));
        let recorded = serde_json::to_string(&entry.new_value).unwrap();
        assert!(recorded.contains("deploy bot"));
        assert!(!recorded.contains(&plaintext[16..]), "no secret in the log");

        let Page { items, total, .. } = list_api_keys(
            db,
            tenant,
            false,
            OffsetPage {
                limit: 10,
                offset: 0,
            },
            now(),
        )
        .await
        .unwrap();
        assert_eq!((items.len(), total), (1, 1));
    }
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-last-used").await;
        let issued = issue(db, tenant).await;
        let key = issued.plaintext.expose();
        let last_used = || async {
            get_api_key(db, tenant, issued.key.id, now())
                .await
                .unwrap()
                .last_used_at
        };
        assert_eq!(last_used().await, None);
        verify(db, key, now()).await.unwrap();
        assert_eq!(last_used().await, Some(now()));
        verify(db, key, now() + TimeDelta::seconds(30))
            .await
            .unwrap();
        assert_eq!(last_used().await, Some(now()), "no write within the minute");
        let later = now() + TimeDelta::seconds(61);
        verify(db, key, later).await.unwrap();
        assert_eq!(last_used().await, Some(later));
    }
}

#[tokio::test]
async fn a_malformed_key_is_refused_without_touching_the_database() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let counter = StatementCounter::new();
        let db = Db::for_pool(test_db.conn()).counting(&counter);
        for bad in ["", "aos_abc", "acc_live_short", "Bearer acc_live_x"] {
            let error = verify_api_key(db, &pepper(), bad, None, None, now())
                .await
                .unwrap_err();
            assert!(matches!(error, ApiKeyError::Malformed), "{bad:?}");
            assert_eq!(error.http_status(), 401);
        }
        // A well-formed key with a wrong checksum: still no statement.
        let tenant = new_tenant(Db::for_pool(test_db.conn()), "keys-malformed").await;
        let issued = issue(Db::for_pool(test_db.conn()), tenant).await;
        let mut tampered = issued.plaintext.expose().to_owned();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            verify(db, &tampered, now()).await,
            Err(ApiKeyError::Malformed)
        ));
        assert_eq!(counter.count(), 0, "no statement for malformed keys");
        // A well-formed key nobody issued costs exactly one lookup.
        let unknown = account_engines::api_keys::PlaintextApiKey::generate().unwrap();
        assert!(matches!(
            verify(db, unknown.expose(), now()).await,
            Err(ApiKeyError::InvalidKey)
        ));
        assert_eq!(counter.take(), 1);
    }
}

#[tokio::test]
async fn only_owners_and_admins_issue_keys_within_their_role() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-roles").await;
        let viewer = issue_api_key(
            db,
            &pepper(),
            request(tenant, MembershipRole::Viewer),
            now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(viewer, ApiKeyError::Forbidden));
        assert_eq!(viewer.http_status(), 403);
        let mut member = request(tenant, MembershipRole::Member);
        member.permissions = vec!["keys:manage".into()];
        assert!(matches!(
            issue_api_key(db, &pepper(), member, now()).await,
            Err(ApiKeyError::Forbidden)
        ));
        let mut unknown = request(tenant, MembershipRole::Admin);
        unknown.permissions = vec!["admin:*".into()];
        let error = issue_api_key(db, &pepper(), unknown, now())
            .await
            .unwrap_err();
        assert!(matches!(error, ApiKeyError::UnknownPermission { .. }));
        assert_eq!(error.http_status(), 422);
        let mut past = request(tenant, MembershipRole::Admin);
        past.expires_at = Some(now() - TimeDelta::seconds(1));
        assert!(matches!(
            issue_api_key(db, &pepper(), past, now()).await,
            Err(ApiKeyError::ExpiryInPast)
        ));
        assert!(matches!(
            issue_api_key(
                db,
                &pepper(),
                request(TenantId::new(), MembershipRole::Admin),
                now()
            )
            .await,
            Err(ApiKeyError::TenantNotFound)
        ));
        // An admin manages keys but may not delegate that to a key: wider than an admin.
        let mut delegated = request(tenant, MembershipRole::Admin);
        delegated.permissions = vec!["run:*".into(), "keys:manage".into()];
        let too_wide = issue_api_key(db, &pepper(), delegated, now())
            .await
            .unwrap_err();
        assert!(
            matches!(
                &too_wide,
                ApiKeyError::PermissionTooWide { permission, role: MembershipRole::Admin }
                    if permission == "keys:manage"
            ),
            "{too_wide:?}"
        );
        assert_eq!(
            (too_wide.code(), too_wide.http_status()),
            ("permission_too_wide", 403)
        );
        assert_eq!(
            too_wide.to_string(),
            "the admin role may not grant keys:manage; remove it, or ask an owner to do this"
        );
        let mut manager = request(tenant, MembershipRole::Owner);
        manager.permissions = vec!["keys:manage".into()];
        issue_api_key(db, &pepper(), manager, now()).await.unwrap();
        let keys = list_api_keys(
            db,
            tenant,
            true,
            OffsetPage {
                limit: 10,
                offset: 0,
            },
            now(),
        )
        .await
        .unwrap();
        assert_eq!(keys.total, 1, "nothing was stored for the refused requests");
    }
}

#[tokio::test]
async fn the_plan_quota_counts_active_unexpired_keys() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-quota").await;
        let limit = account_engines::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_api_keys;
        let mut keys = Vec::new();
        for _ in 0..limit {
            keys.push(issue(db, tenant).await);
        }
        let refused = issue_api_key(db, &pepper(), request(tenant, MembershipRole::Admin), now())
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                ApiKeyError::QuotaExceeded {
                    limit: 5,
                    current: 5
                }
            ),
            "{refused:?}"
        );
        assert_eq!(refused.code(), "api_key_quota_exceeded");
        assert_eq!(refused.http_status(), 409);
        revoke_api_key(db, tenant, keys[0].key.id, ADMIN, "unused", now())
            .await
            .unwrap();
        issue(db, tenant).await;
        // Another tenant's quota is its own.
        let other = new_tenant(db, "keys-quota-other").await;
        issue(db, other).await;
    }
}

#[tokio::test]
async fn revocation_is_scoped_idempotent_and_audited() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-revoke").await;
        let other = new_tenant(db, "keys-revoke-other").await;
        let issued = issue(db, tenant).await;
        let id = issued.key.id;
        assert!(matches!(
            revoke_api_key(db, other, id, ADMIN, "not yours", now()).await,
            Err(ApiKeyError::NotFound)
        ));
        let member = KeyActor {
            user_id: None,
            role: MembershipRole::Member,
            issuing_key: None,
            audit: KeyAudit::NONE,
        };
        assert!(matches!(
            revoke_api_key(db, tenant, id, member, "x", now()).await,
            Err(ApiKeyError::Forbidden)
        ));
        assert!(matches!(
            revoke_api_key(db, tenant, id, ADMIN, "  ", now()).await,
            Err(ApiKeyError::InvalidReason)
        ));
        verify(db, issued.plaintext.expose(), now()).await.unwrap();

        let revoked = revoke_api_key(db, tenant, id, ADMIN, "leaked in CI logs", now())
            .await
            .unwrap();
        assert!(!revoked.already_revoked);
        assert_eq!(revoked.key.status, ApiKeyStatus::Revoked);
        assert_eq!(
            revoked.key.revoked_reason.as_deref(),
            Some("leaked in CI logs")
        );
        let error = verify(db, issued.plaintext.expose(), now())
            .await
            .unwrap_err();
        assert!(matches!(error, ApiKeyError::Revoked));
        assert_eq!(error.http_status(), 401);

        let later = now() + TimeDelta::hours(1);
        let again = revoke_api_key(db, tenant, id, ADMIN, "second reason", later)
            .await
            .unwrap();
        assert!(again.already_revoked);
        assert_eq!(
            again.key.revoked_reason.as_deref(),
            Some("leaked in CI logs")
        );
        assert_eq!(again.key.revoked_at, Some(now()));
        assert!(matches!(
            revoke_api_key(db, tenant, ApiKeyId::new(), ADMIN, "x", now()).await,
            Err(ApiKeyError::NotFound)
        ));

        let log = get_tenant_driver(db)
            .fetch_audit_log_after(tenant, &AuditFilter::default(), None, 10)
            .await
            .unwrap();
        let revocations: Vec<_> = log
            .items
            .iter()
            .filter(|e| e.action == "api_key.revoked")
            .collect();
        assert_eq!(revocations.len(), 1, "the idempotent repeat is not audited");
        assert_eq!(revocations[0].reason.as_deref(), Some("leaked in CI logs"));
        let listed = list_api_keys(
            db,
            tenant,
            false,
            OffsetPage {
                limit: 10,
                offset: 0,
            },
            now(),
        )
        .await
        .unwrap();
        assert_eq!(listed.total, 0, "revoked keys are listed only on request");
    }
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-expiry").await;
        let mut req = request(tenant, MembershipRole::Admin);
        let expiry = now() + TimeDelta::hours(1);
        req.expires_at = Some(expiry);
        let issued = issue_api_key(db, &pepper(), req, now()).await.unwrap();
        let key = issued.plaintext.expose();
        verify(db, key, expiry - TimeDelta::seconds(1))
            .await
            .unwrap();
        let error = verify(db, key, expiry).await.unwrap_err();
        assert!(matches!(error, ApiKeyError::Expired));
        assert_eq!(error.code(), "api_key_expired");
    }
}

#[tokio::test]
async fn a_suspended_tenant_reads_with_its_keys_but_cannot_issue_them() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-suspended").await;
        let issued = issue(db, tenant).await;
        get_tenant_driver(db)
            .update_tenant_status(
                tenant,
                TenantStatus::Active,
                TenantStatus::Suspended,
                Some("unpaid"),
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        // Suspended tenants keep reading (§3.3): the key still verifies, and each use case
        // checks its own capability against the tenant's status.
        let verified_tenant = verify(db, issued.plaintext.expose(), now()).await.unwrap();
        assert_eq!(verified_tenant, tenant);
        assert!(matches!(
            issue_api_key(db, &pepper(), request(tenant, MembershipRole::Owner), now()).await,
            Err(ApiKeyError::TenantInactive {
                status: TenantStatus::Suspended
            })
        ));
        assert!(matches!(
            rotate_api_key(
                db,
                &pepper(),
                tenant,
                issued.key.id,
                ADMIN,
                TimeDelta::hours(1),
                now()
            )
            .await,
            Err(ApiKeyError::TenantInactive { .. })
        ));
        // Revocation only takes access away, so it still works.
        revoke_api_key(db, tenant, issued.key.id, ADMIN, "offboarding", now())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_terminated_tenants_keys_no_longer_verify() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-terminated").await;
        let issued = issue(db, tenant).await;
        get_tenant_driver(db)
            .update_tenant_status(
                tenant,
                TenantStatus::Active,
                TenantStatus::Terminated,
                Some("closed"),
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        let error = verify(db, issued.plaintext.expose(), now())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ApiKeyError::TenantInactive {
                status: TenantStatus::Terminated
            }
        ));
        assert_eq!(error.http_status(), 403);
    }
}

#[tokio::test]
async fn rotation_keeps_both_keys_working_during_the_grace_only() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-rotate").await;
        let mut req = request(tenant, MembershipRole::Admin);
        req.permissions = vec!["run:a".into()];
        req.allowed_workers = Some(vec!["a".into()]);
        let old = issue_api_key(db, &pepper(), req, now()).await.unwrap();
        // Fill the quota: rotation must still work.
        for _ in 1..account_engines::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_api_keys
        {
            issue(db, tenant).await;
        }
        let grace = TimeDelta::hours(1);
        assert!(matches!(
            rotate_api_key(
                db,
                &pepper(),
                tenant,
                old.key.id,
                ADMIN,
                TimeDelta::days(8),
                now()
            )
            .await,
            Err(ApiKeyError::InvalidGrace)
        ));
        let rotated = rotate_api_key(db, &pepper(), tenant, old.key.id, ADMIN, grace, now())
            .await
            .unwrap();
        let new = &rotated.issued;
        assert_eq!(new.key.rotated_from_id, Some(old.key.id));
        assert_eq!(new.key.name, old.key.name);
        assert_eq!(new.key.permissions, vec!["run:a"]);
        assert_eq!(new.key.allowed_workers, Some(vec!["a".into()]));
        assert_eq!(new.key.rate_limit_rpm, old.key.rate_limit_rpm);
        assert_eq!(new.key.expires_at, None);
        assert_eq!(rotated.previous.expires_at, Some(now() + grace));
        assert_ne!(new.plaintext.expose(), old.plaintext.expose());

        let before_end = now() + grace - TimeDelta::seconds(1);
        assert_eq!(
            verify(db, old.plaintext.expose(), before_end)
                .await
                .unwrap(),
            tenant
        );
        verify(db, new.plaintext.expose(), before_end)
            .await
            .unwrap();
        assert!(matches!(
            verify(db, old.plaintext.expose(), now() + grace).await,
            Err(ApiKeyError::Expired)
        ));
        verify(db, new.plaintext.expose(), now() + grace)
            .await
            .unwrap();

        // A key is rotated once: again during its grace is refused and writes nothing.
        let error = rotate_api_key(db, &pepper(), tenant, old.key.id, ADMIN, grace, now())
            .await
            .unwrap_err();
        assert!(matches!(error, ApiKeyError::AlreadyRotated), "{error:?}");
        assert_eq!(
            (error.code(), error.http_status()),
            ("api_key_already_rotated", 409)
        );
        assert_eq!(
            get_api_key(db, tenant, old.key.id, now())
                .await
                .unwrap()
                .successor_id,
            Some(new.key.id)
        );
        // A revoked key cannot be rotated; nor a key of another tenant.
        revoke_api_key(db, tenant, new.key.id, ADMIN, "done", now())
            .await
            .unwrap();
        let error = rotate_api_key(db, &pepper(), tenant, new.key.id, ADMIN, grace, now())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ApiKeyError::NotRotatable { state: "revoked" }
        ));
        assert_eq!(error.http_status(), 409);
        let other = new_tenant(db, "keys-rotate-other").await;
        assert!(matches!(
            rotate_api_key(db, &pepper(), other, old.key.id, ADMIN, grace, now()).await,
            Err(ApiKeyError::NotFound)
        ));
        let log = get_tenant_driver(db)
            .fetch_audit_log_after(tenant, &AuditFilter::default(), None, 20)
            .await
            .unwrap();
        assert!(log.items.iter().any(
            |e| e.action == "api_key.rotated" && e.resource_id == Some(old.key.id.to_string())
        ));
    }
}

#[tokio::test]
async fn a_zero_grace_rotation_retires_the_old_key_at_once() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-rotate-now").await;
        let old = issue(db, tenant).await;
        let rotated = rotate_api_key(
            db,
            &pepper(),
            tenant,
            old.key.id,
            ADMIN,
            TimeDelta::zero(),
            now(),
        )
        .await
        .unwrap();
        assert!(matches!(
            verify(db, old.plaintext.expose(), now()).await,
            Err(ApiKeyError::Expired)
        ));
        verify(db, rotated.issued.plaintext.expose(), now())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_key_issuing_keys_grants_only_what_it_holds() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-by-key").await;
        let issuer = key_actor(&["keys:manage", "read:*"]);
        let mut wider = request(tenant, MembershipRole::Admin);
        wider.issuer = issuer.clone();
        wider.permissions = vec!["read:runs".into(), "run:*".into()];
        let error = issue_api_key(db, &pepper(), wider, now())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ApiKeyError::PermissionNotHeld { permission } if permission == "run:*"),
            "{error:?}"
        );
        assert_eq!(
            (error.code(), error.http_status()),
            ("permission_not_held", 403)
        );
        // Nor can it pass on key management, which only owners grant.
        let mut manage = request(tenant, MembershipRole::Admin);
        manage.issuer = issuer.clone();
        manage.permissions = vec!["keys:manage".into()];
        assert!(matches!(
            issue_api_key(db, &pepper(), manage, now()).await,
            Err(ApiKeyError::PermissionTooWide { .. })
        ));
        // The defaults narrow to what it holds; a covered permission is fine.
        let mut defaults = request(tenant, MembershipRole::Admin);
        defaults.issuer = issuer.clone();
        let narrowed = issue_api_key(db, &pepper(), defaults, now()).await.unwrap();
        assert_eq!(narrowed.key.permissions, vec!["read:*"]);
        let mut covered = request(tenant, MembershipRole::Admin);
        covered.issuer = issuer;
        covered.permissions = vec!["read:usage".into()];
        issue_api_key(db, &pepper(), covered, now()).await.unwrap();
    }
}

#[tokio::test]
async fn rotation_rechecks_the_rotating_actors_authority() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-rotate-authority").await;
        let mut managing = request(tenant, MembershipRole::Owner);
        managing.permissions = vec!["keys:manage".into(), "read:*".into()];
        let owners_key = issue_api_key(db, &pepper(), managing, now()).await.unwrap();
        let grace = TimeDelta::hours(1);
        let error = rotate_api_key(
            db,
            &pepper(),
            tenant,
            owners_key.key.id,
            ADMIN,
            grace,
            now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                &error,
                ApiKeyError::PermissionTooWide { permission, role: MembershipRole::Admin }
                    if permission == "keys:manage"
            ),
            "an admin cannot mint a fresh secret of an owner's key-managing key: {error:?}"
        );
        assert_eq!(error.http_status(), 403);
        // Nothing was minted and the old key's life is untouched.
        assert_eq!(
            get_api_key(db, tenant, owners_key.key.id, now())
                .await
                .unwrap()
                .expires_at,
            None
        );
        assert_eq!(
            list_api_keys(
                db,
                tenant,
                true,
                OffsetPage {
                    limit: 10,
                    offset: 0
                },
                now()
            )
            .await
            .unwrap()
            .total,
            1
        );

        // A key rotating a key must hold what that key holds.
        let mut runner = request(tenant, MembershipRole::Admin);
        runner.permissions = vec!["run:*".into()];
        let runner = issue_api_key(db, &pepper(), runner, now()).await.unwrap();
        assert!(matches!(
            rotate_api_key(
                db,
                &pepper(),
                tenant,
                runner.key.id,
                key_actor(&["keys:manage", "read:*"]),
                grace,
                now()
            )
            .await,
            Err(ApiKeyError::PermissionNotHeld { permission }) if permission == "run:*"
        ));
        rotate_api_key(
            db,
            &pepper(),
            tenant,
            runner.key.id,
            key_actor(&["keys:manage", "run:*"]),
            grace,
            now(),
        )
        .await
        .unwrap();
        let rotated = rotate_api_key(
            db,
            &pepper(),
            tenant,
            owners_key.key.id,
            OWNER,
            grace,
            now(),
        )
        .await
        .unwrap();
        assert_eq!(
            rotated.issued.key.permissions,
            vec!["keys:manage", "read:*"]
        );
    }
}

#[tokio::test]
async fn a_frozen_key_is_refused_at_verification_and_cannot_be_rotated() {
    for backend in backends().unwrap() {
        let test_db = fresh_db(&backend).await.unwrap();
        let db = Db::for_pool(test_db.conn());
        let tenant = new_tenant(db, "keys-frozen").await;
        let other = new_tenant(db, "keys-frozen-other").await;
        let issued = issue(db, tenant).await;
        let key = issued.plaintext.expose();
        verify(db, key, now()).await.unwrap();
        let driver = get_tenant_driver(db);
        assert!(
            driver
                .update_api_key_frozen(other, issued.key.id, "ops", "not yours", now())
                .await
                .unwrap()
                .is_none(),
            "another tenant cannot freeze the key"
        );
        verify(db, key, now()).await.unwrap();
        let frozen = driver
            .update_api_key_frozen(tenant, issued.key.id, "ops", "suspected leak", now())
            .await
            .unwrap()
            .unwrap();
        assert!(frozen.is_frozen);

        let later = now() + TimeDelta::minutes(2);
        let error = verify(db, key, later).await.unwrap_err();
        assert!(matches!(error, ApiKeyError::Frozen), "{error:?}");
        assert_eq!((error.code(), error.http_status()), ("api_key_frozen", 401));
        assert_eq!(
            error.to_string(),
            "the API key is frozen; ask the tenant's administrators or support to unfreeze it"
        );
        // Freeze is checked even when the permission asked for is held.
        assert!(matches!(
            verify_api_key(db, &pepper(), key, Some("run:x"), Some("x"), later).await,
            Err(ApiKeyError::Frozen)
        ));
        // A refused key records no use.
        assert_eq!(
            get_api_key(db, tenant, issued.key.id, now())
                .await
                .unwrap()
                .last_used_at,
            Some(now())
        );
        let rotate = rotate_api_key(
            db,
            &pepper(),
            tenant,
            issued.key.id,
            ADMIN,
            TimeDelta::hours(1),
            now() + TimeDelta::minutes(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(
            rotate,
            ApiKeyError::NotRotatable { state: "frozen" }
        ));
    }
}
