//! Changing existing keys: revoke, rotate and update metadata, and the one decision that keeps
//! a tenant able to manage its keys ([`ensure_key_management_survives`]).

use super::issue::{
    KeySettings, NewKeyRow, audit_entry, insert_key, lock_tenant_for_new_key, unusable,
    validate_reason, with_effective_status,
};
use super::*;

/// Whether `key` is a credential that manages keys and will keep doing so: it holds
/// `keys:manage` and is active, unfrozen, unexpired at `now` and not replaced by rotation.
pub fn is_lasting_key_manager(key: &APIKeySnapshot, now: DateTime<Utc>) -> bool {
    unusable(key, now).is_none()
        && key.successor_id.is_none()
        && permissions::granted(&key.permissions, &Permission::KeysManage)
}

/// The lock-out guard, the one place it is decided: taking `removing` away (revoking it, or
/// rotating it away) is refused with [`ApiKeyError::LastKeyManager`] when it is the tenant's
/// last lasting key manager ([`is_lasting_key_manager`]) and no owner can sign in (an Owner
/// membership of an active user with an identity link, [`crate::identities`]).
///
/// Call it inside the transaction that removes the key, after the tenant row is locked and
/// (for a rotation) after the successor is written: two racing removals of the last two
/// manager keys then run one after the other, and the second sees the first.
pub async fn ensure_key_management_survives(
    db: Db<'_>,
    tenant: TenantId,
    removing: &APIKeySnapshot,
    now: DateTime<Utc>,
) -> Result<(), ApiKeyError> {
    if !is_lasting_key_manager(removing, now) {
        return Ok(());
    }
    let others = get_tenant_driver(db)
        .fetch_lasting_api_keys(tenant, now)
        .await?
        .iter()
        .any(|key| key.id != removing.id && is_lasting_key_manager(key, now));
    if others || crate::identities::tenant_has_owner_who_can_sign_in(db, tenant).await? {
        return Ok(());
    }
    Err(ApiKeyError::LastKeyManager)
}

/// Whether `key`, just revoked along with something else (a member's removal), was a lasting
/// key manager until then: its status aside, what [`is_lasting_key_manager`] asks.
pub fn was_lasting_key_manager(key: &APIKeySnapshot, now: DateTime<Utc>) -> bool {
    key.successor_id.is_none()
        && key.expires_at.is_none_or(|at| at > now)
        && permissions::granted(&key.permissions, &Permission::KeysManage)
}

/// Whether the tenant can still manage keys: a lasting key manager remains, or an owner can
/// sign in. Asked after a change that took keys away with it, in its transaction.
pub async fn key_management_remains(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<bool, ApiKeyError> {
    let remains = get_tenant_driver(db)
        .fetch_lasting_api_keys(tenant, now)
        .await?
        .iter()
        .any(|key| is_lasting_key_manager(key, now));
    Ok(remains || crate::identities::tenant_has_owner_who_can_sign_in(db, tenant).await?)
}

/// Locks the tenant row (whatever its status: revocation only takes access away), so that
/// the lock-out guard's count is atomic with the change.
async fn lock_tenant(db: Db<'_>, tenant: TenantId) -> Result<(), ApiKeyError> {
    if get_tenant_driver(db).lock_tenant(tenant).await? {
        Ok(())
    } else {
        Err(ApiKeyError::NotFound)
    }
}

/// Revokes one of the tenant's keys and audits `api_key.revoked` with the reason.
///
/// Idempotent: a key already revoked comes back with `already_revoked: true`, unchanged (its
/// first reason and time stay) and without a second audit entry. A key of another tenant is
/// [`ApiKeyError::NotFound`]. Revocation works whatever the tenant's status: it only ever
/// takes access away. It never takes away the last way to manage keys
/// ([`ensure_key_management_survives`], under the tenant row lock).
pub async fn revoke_api_key(
    db: Db<'_>,
    tenant: TenantId,
    key_id: ApiKeyId,
    actor: KeyActor,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<RevokedKey, ApiKeyError> {
    if !permissions::can_manage_keys(actor.role) {
        return Err(ApiKeyError::Forbidden);
    }
    let reason = validate_reason(reason)?;
    lock_tenant(db, tenant).await?;
    let driver = get_tenant_driver(db);
    let key = driver
        .fetch_api_key_by_id(tenant, key_id)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    if key.status == ApiKeyStatus::Revoked {
        return Ok(RevokedKey {
            key: with_effective_status(key, now),
            already_revoked: true,
        });
    }
    ensure_key_management_survives(db, tenant, &key, now).await?;
    // Under the tenant lock nothing else revokes it, so the conditional update matches.
    let key = driver
        .update_api_key_revoked(tenant, key_id, &reason, now)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    audit::record(
        db,
        audit_entry(
            tenant,
            &actor,
            "api_key.revoked",
            key.id,
            Some(reason.clone()),
            json!({"key_prefix": key.key_prefix, "reason": reason}),
        ),
        now,
    )
    .await?;
    Ok(RevokedKey {
        key,
        already_revoked: false,
    })
}

/// Why `key` cannot be rotated at `now`, if it cannot: revoked, expired or frozen
/// ([`ApiKeyError::NotRotatable`]), or rotated already ([`ApiKeyError::AlreadyRotated`]).
fn rotation_refusal(key: &APIKeySnapshot, now: DateTime<Utc>) -> Option<ApiKeyError> {
    if let Some(refusal) = unusable(key, now) {
        let state = match refusal {
            ApiKeyError::Revoked => "revoked",
            ApiKeyError::Frozen => "frozen",
            _ => "expired",
        };
        return Some(ApiKeyError::NotRotatable { state });
    }
    key.successor_id.map(|_| ApiKeyError::AlreadyRotated)
}

/// Replaces one of the tenant's keys with a new one of the same name, permissions, workers,
/// limits, owner, metadata and expiry (`rotated_from_id` set), and shortens the old key's life
/// to `now + grace` (0 to 7 days) so that both work until then. Audits `api_key.rotated`.
///
/// Exactly once: a key is rotated only while it is active, unexpired, unfrozen and without a
/// successor, and the decision is one conditional update that records the successor
/// (`successor_id`) only if that still holds. Of racing rotations one wins; the others get
/// [`ApiKeyError::AlreadyRotated`] and write nothing (the successor row follows the update
/// in the same transaction). Revoked, expired and frozen keys are
/// [`ApiKeyError::NotRotatable`].
///
/// Quota: rotation is not blocked by a full quota, because the old key goes away; it is
/// refused only if the keys left after the grace would not fit, i.e. when the active keys
/// other than the old one already fill the quota.
///
/// The new key keeps the old one's expiry: rotation changes the secret, not the lifetime.
///
/// Rotation mints a key, so the rotating actor must be able to grant every permission the old
/// key holds ([`KeyActor::may_grant`]): an admin cannot rotate an owner's `keys:manage` key
/// into a fresh secret it then holds ([`ApiKeyError::PermissionTooWide`]), nor an owner key
/// a key holding what it lacks ([`ApiKeyError::PermissionNotHeld`]). Stored permissions that
/// no longer parse grant nothing and are copied as they are. The successor carries the old
/// key's permissions, so rotation never takes away the last key manager; the guard
/// ([`ensure_key_management_survives`]) is evaluated all the same, after the successor exists.
pub async fn rotate_api_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    tenant: TenantId,
    key_id: ApiKeyId,
    actor: KeyActor,
    grace: TimeDelta,
    now: DateTime<Utc>,
) -> Result<RotatedKey, ApiKeyError> {
    if !permissions::can_manage_keys(actor.role) {
        return Err(ApiKeyError::Forbidden);
    }
    if grace < TimeDelta::zero() || grace > TimeDelta::days(MAX_GRACE_DAYS) {
        return Err(ApiKeyError::InvalidGrace);
    }
    let quota = lock_tenant_for_new_key(db, tenant).await?;
    let driver = get_tenant_driver(db);
    let old = driver
        .fetch_api_key_by_id(tenant, key_id)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    if let Some(refusal) = rotation_refusal(&old, now) {
        return Err(refusal);
    }
    for permission in old
        .permissions
        .iter()
        .filter_map(|text| Permission::parse(text).ok())
    {
        actor.may_grant(&permission)?;
    }
    // The old key is active and unexpired, so it is among the counted keys.
    if let Some(current) = quota.counted_keys(db, tenant, 1, now).await?
        && current.saturating_sub(1) >= u64::try_from(quota.limit).unwrap_or(0)
    {
        let limit = quota.limit;
        return Err(ApiKeyError::QuotaExceeded { limit, current });
    }
    let successor = ApiKeyId::new();
    let Some(previous) = driver
        .update_api_key_rotated(tenant, old.id, successor, now + grace, now)
        .await?
    else {
        // Another rotation (or a freeze) got there first; nothing was written.
        let current = driver.fetch_api_key_by_id(tenant, key_id).await?;
        return Err(current
            .and_then(|key| rotation_refusal(&key, now))
            .unwrap_or(ApiKeyError::AlreadyRotated));
    };
    let settings = KeySettings {
        name: old.name.clone(),
        permissions: old.permissions.clone(),
        allowed_workers: old.allowed_workers.clone(),
        rate_limit_rpm: old.rate_limit_rpm,
        max_concurrent_runs: old.max_concurrent_runs,
        expires_at: old.expires_at,
        metadata: old.metadata.clone(),
    };
    let row = NewKeyRow {
        id: successor,
        tenant,
        user_id: old.user_id,
        rotated_from_id: Some(old.id),
    };
    let issued = insert_key(db, pepper, row, settings, now).await?;
    ensure_key_management_survives(db, tenant, &old, now).await?;
    audit::record(
        db,
        audit_entry(
            tenant,
            &actor,
            "api_key.rotated",
            previous.id,
            None,
            json!({
                "new_key_id": issued.key.id.to_string(),
                "new_key_prefix": issued.key.key_prefix,
                "previous_expires_at": previous.expires_at,
                "grace_seconds": grace.num_seconds(),
            }),
        ),
        now,
    )
    .await?;
    Ok(RotatedKey {
        issued,
        previous: with_effective_status(previous, now),
    })
}

/// Replaces the metadata of one of the tenant's keys (`None` clears it) and audits
/// `api_key.updated` with the old and new metadata. Any key but a revoked one may be updated
/// (an expired key's metadata still describes it in listings). A key of another tenant is
/// [`ApiKeyError::NotFound`].
pub async fn update_api_key_metadata(
    db: Db<'_>,
    tenant: TenantId,
    key_id: ApiKeyId,
    actor: KeyActor,
    metadata: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<APIKeySnapshot, ApiKeyError> {
    if !permissions::can_manage_keys(actor.role) {
        return Err(ApiKeyError::Forbidden);
    }
    let metadata = metadata.as_ref().map(validate_metadata).transpose()?;
    let driver = get_tenant_driver(db);
    let before = driver
        .fetch_api_key_by_id(tenant, key_id)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    if before.status == ApiKeyStatus::Revoked {
        return Err(ApiKeyError::Revoked);
    }
    let key = driver
        .update_api_key_metadata(tenant, key_id, metadata)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    let mut entry = audit_entry(
        tenant,
        &actor,
        "api_key.updated",
        key.id,
        None,
        json!({"metadata": key.metadata}),
    );
    entry.old_value = Some(json!({"metadata": before.metadata}));
    audit::record(db, entry, now).await?;
    Ok(with_effective_status(key, now))
}
