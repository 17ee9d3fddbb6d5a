//! Issuing, listing, revoking and rotating keys, with the checks each write makes under the
//! tenant row lock.

use super::*;

/// A validated issue request, ready to store.
pub(super) struct KeySettings {
    pub(super) name: String,
    pub(super) permissions: Vec<String>,
    pub(super) allowed_workers: Option<Vec<String>>,
    pub(super) rate_limit_rpm: Option<i32>,
    pub(super) max_concurrent_runs: Option<i32>,
    pub(super) expires_at: Option<DateTime<Utc>>,
}

pub(super) fn validate_issue(
    request: &IssueKeyRequest,
    now: DateTime<Utc>,
) -> Result<KeySettings, ApiKeyError> {
    if !permissions::can_manage_keys(request.issuer.role) {
        return Err(ApiKeyError::Forbidden);
    }
    let name = parse_name(&request.name)?.into();
    let mut resolved = permissions::resolve(request.issuer.role, &request.permissions)?;
    if request.permissions.is_empty() {
        // The defaults, narrowed to what the issuer may grant.
        resolved.retain(|permission| request.issuer.may_grant(permission).is_ok());
    } else {
        for permission in &resolved {
            request.issuer.may_grant(permission)?;
        }
    }
    let permissions = resolved.iter().map(Permission::as_string).collect();
    let allowed_workers = request
        .allowed_workers
        .as_deref()
        .map(validate_workers)
        .transpose()?;
    let rate_limit_rpm = validate_limit("rate_limit_rpm", request.rate_limit_rpm, RATE_LIMIT_RPM)?;
    let max_concurrent_runs = validate_limit(
        "max_concurrent_runs",
        request.max_concurrent_runs,
        MAX_CONCURRENT_RUNS,
    )?;
    if request.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiKeyError::ExpiryInPast);
    }
    let (allowed_workers, rate_limit_rpm, max_concurrent_runs) = match &request.issuer.issuing_key {
        None => (allowed_workers, rate_limit_rpm, max_concurrent_runs),
        Some(issuer) => (
            issuer.bound_workers(allowed_workers)?,
            bound_limit("rate_limit_rpm", issuer.rate_limit_rpm, rate_limit_rpm)?,
            bound_limit(
                "max_concurrent_runs",
                issuer.max_concurrent_runs,
                max_concurrent_runs,
            )?,
        ),
    };
    Ok(KeySettings {
        name,
        permissions,
        allowed_workers,
        rate_limit_rpm,
        max_concurrent_runs,
        expires_at: request.expires_at,
    })
}

/// The key's name, parsed once for every key kind (tenant and operator keys): the trimmed
/// [`ApiKeyName`], or [`ApiKeyError::InvalidName`].
pub(crate) fn parse_name(name: &str) -> Result<ApiKeyName, ApiKeyError> {
    ApiKeyName::parse(name).map_err(|_| ApiKeyError::InvalidName)
}

/// Worker ids, deduplicated in order; an empty list is refused (omit the field for "all").
pub(super) fn validate_workers(workers: &[String]) -> Result<Vec<String>, ApiKeyError> {
    if workers.is_empty() || workers.len() > MAX_ALLOWED_WORKERS {
        return Err(ApiKeyError::InvalidAllowedWorkers);
    }
    let mut list: Vec<String> = Vec::with_capacity(workers.len());
    for worker in workers {
        if !permissions::is_worker_id(worker) {
            return Err(ApiKeyError::InvalidAllowedWorkers);
        }
        if !list.contains(worker) {
            list.push(worker.clone());
        }
    }
    Ok(list)
}

pub(super) fn validate_limit(
    field: &'static str,
    value: Option<i32>,
    (min, max): (i32, i32),
) -> Result<Option<i32>, ApiKeyError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ApiKeyError::InvalidLimit { field, min, max }),
        other => Ok(other),
    }
}

pub(super) fn validate_reason(reason: &str) -> Result<String, ApiKeyError> {
    let reason = reason.trim();
    let chars = reason.chars().count();
    if chars == 0 || chars > MAX_REASON_CHARS {
        return Err(ApiKeyError::InvalidReason);
    }
    Ok(reason.to_owned())
}

/// Why a stored key is not usable at `now`, in verification order: status, expiry, freeze.
pub(super) fn unusable(key: &APIKeySnapshot, now: DateTime<Utc>) -> Option<ApiKeyError> {
    if key.status == ApiKeyStatus::Revoked {
        return Some(ApiKeyError::Revoked);
    }
    if key.status == ApiKeyStatus::Expired || key.expires_at.is_some_and(|at| at <= now) {
        return Some(ApiKeyError::Expired);
    }
    if key.is_frozen {
        return Some(ApiKeyError::Frozen);
    }
    None
}

/// Locks the tenant row (the quota decision that follows is atomic in the caller's
/// transaction), then checks that its status allows new keys. Returns its key quota.
pub(super) async fn lock_tenant_for_new_key(
    db: Db<'_>,
    tenant: TenantId,
) -> Result<i32, ApiKeyError> {
    let driver = get_tenant_driver(db);
    if !driver.lock_tenant(tenant).await? {
        return Err(ApiKeyError::TenantNotFound);
    }
    let snapshot = driver
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(ApiKeyError::TenantNotFound)?;
    if !capabilities(snapshot.status).allows_new_api_keys {
        return Err(ApiKeyError::TenantInactive {
            status: snapshot.status,
        });
    }
    Ok(snapshot.quotas.max_api_keys)
}

/// Generates a key and stores its digest.
pub(super) async fn insert_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    tenant: TenantId,
    user_id: Option<UserId>,
    settings: KeySettings,
    rotated_from_id: Option<ApiKeyId>,
    now: DateTime<Utc>,
) -> Result<IssuedKey, ApiKeyError> {
    let plaintext = PlaintextApiKey::generate()?;
    let key = get_tenant_driver(db)
        .insert_api_key(
            NewApiKey {
                id: ApiKeyId::new(),
                tenant_id: tenant,
                user_id,
                name: settings.name,
                key_prefix: plaintext.prefix().to_owned(),
                key_digest: digest(pepper, plaintext.expose()),
                permissions: settings.permissions,
                allowed_workers: settings.allowed_workers,
                rate_limit_rpm: settings.rate_limit_rpm,
                max_concurrent_runs: settings.max_concurrent_runs,
                expires_at: settings.expires_at,
                rotated_from_id,
            },
            now,
        )
        .await?;
    Ok(IssuedKey { key, plaintext })
}

pub(super) fn audit_entry(
    tenant: TenantId,
    actor: &KeyActor,
    action: &str,
    key: ApiKeyId,
    reason: Option<String>,
    new_value: serde_json::Value,
) -> AuditEntry {
    let actor_type = if actor.audit.api_key_id.is_some() {
        ActorType::ApiKey
    } else if actor.user_id.is_some() {
        ActorType::User
    } else {
        ActorType::System
    };
    AuditEntry {
        tenant_id: Some(tenant),
        actor_type,
        user_id: actor.user_id,
        api_key_id: actor.audit.api_key_id,
        action: action.to_owned(),
        resource_type: "api_key".to_owned(),
        resource_id: Some(key.to_string()),
        reason,
        old_value: None,
        new_value: Some(new_value),
        ip_address: actor.audit.ip_address.clone(),
        user_agent: actor.audit.user_agent.clone(),
        request_id: actor.audit.request_id.clone(),
    }
}

/// What the audit log says about a key: settings only, never the secret or its digest.
pub(super) fn key_settings_json(key: &APIKeySnapshot) -> serde_json::Value {
    json!({
        "name": key.name,
        "key_prefix": key.key_prefix,
        "permissions": key.permissions,
        "allowed_workers": key.allowed_workers,
        "rate_limit_rpm": key.rate_limit_rpm,
        "max_concurrent_runs": key.max_concurrent_runs,
        "expires_at": key.expires_at,
        "rotated_from_id": key.rotated_from_id,
    })
}

/// Issues a key: validates the request, then, under the tenant row lock, checks the tenant's
/// status and key quota, inserts the key and audits `api_key.created`.
///
/// The lock, count and insert are atomic only when `db` is a transaction (the spine's).
pub async fn issue_api_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    request: IssueKeyRequest,
    now: DateTime<Utc>,
) -> Result<IssuedKey, ApiKeyError> {
    let settings = validate_issue(&request, now)?;
    let tenant = request.tenant_id;
    let limit = lock_tenant_for_new_key(db, tenant).await?;
    let current = get_tenant_driver(db)
        .count_active_api_keys(tenant, now)
        .await?;
    if current >= u64::try_from(limit).unwrap_or(0) {
        return Err(ApiKeyError::QuotaExceeded { limit, current });
    }
    let issued = insert_key(
        db,
        pepper,
        tenant,
        request.issuer.user_id,
        settings,
        None,
        now,
    )
    .await?;
    audit::record(
        db,
        audit_entry(
            tenant,
            &request.issuer,
            "api_key.created",
            issued.key.id,
            None,
            key_settings_json(&issued.key),
        ),
        now,
    )
    .await?;
    Ok(issued)
}

/// The tenant's keys, newest first; revoked ones only when asked. Any member may list (the
/// list holds no secret); the spine checks membership.
pub async fn list_api_keys(
    db: Db<'_>,
    tenant: TenantId,
    include_revoked: bool,
    page: OffsetPage,
) -> Result<Page<APIKeySnapshot>, ApiKeyError> {
    let page = PageRequest::new(page)?.into_page();
    Ok(get_tenant_driver(db)
        .fetch_api_keys(tenant, include_revoked, page)
        .await?)
}

/// One of the tenant's keys.
pub async fn get_api_key(
    db: Db<'_>,
    tenant: TenantId,
    key_id: ApiKeyId,
) -> Result<APIKeySnapshot, ApiKeyError> {
    get_tenant_driver(db)
        .fetch_api_key_by_id(tenant, key_id)
        .await?
        .ok_or(ApiKeyError::NotFound)
}

/// Revokes one of the tenant's keys and audits `api_key.revoked` with the reason.
///
/// Idempotent: a key already revoked comes back with `already_revoked: true`, unchanged (its
/// first reason and time stay) and without a second audit entry. A key of another tenant is
/// [`ApiKeyError::NotFound`]. Revocation works whatever the tenant's status: it only ever
/// takes access away.
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
    let driver = get_tenant_driver(db);
    if let Some(key) = driver
        .update_api_key_revoked(tenant, key_id, &reason, now)
        .await?
    {
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
        return Ok(RevokedKey {
            key,
            already_revoked: false,
        });
    }
    // Nothing changed: the key is missing, another tenant's, or already revoked.
    match driver.fetch_api_key_by_id(tenant, key_id).await? {
        Some(key) if key.status == ApiKeyStatus::Revoked => Ok(RevokedKey {
            key,
            already_revoked: true,
        }),
        _ => Err(ApiKeyError::NotFound),
    }
}

/// Replaces one of the tenant's keys with a new one of the same name, permissions, workers,
/// limits, owner and expiry (`rotated_from_id` set), and shortens the old key's life to
/// `now + grace` (0 to 7 days) so that both work until then. Audits `api_key.rotated`.
///
/// Quota: rotation is not blocked by a full quota, because the old key goes away; it is
/// refused only if the keys left after the grace would not fit, i.e. when the active keys
/// other than the old one already fill the quota. So a key can be rotated at quota, but
/// rotating the same key again during its grace counts like issuing.
///
/// The new key keeps the old one's expiry: rotation changes the secret, not the lifetime.
/// Revoked, expired and frozen keys cannot be rotated ([`ApiKeyError::NotRotatable`]).
///
/// Rotation mints a key, so the rotating actor must be able to grant every permission the old
/// key holds ([`KeyActor::may_grant`]): an admin cannot rotate an owner's `keys:manage` key
/// into a fresh secret it then holds ([`ApiKeyError::PermissionTooWide`]). Stored permissions
/// that no longer parse grant nothing and are copied as they are.
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
    let limit = lock_tenant_for_new_key(db, tenant).await?;
    let driver = get_tenant_driver(db);
    let old = driver
        .fetch_api_key_by_id(tenant, key_id)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    if let Some(refusal) = unusable(&old, now) {
        let state = match refusal {
            ApiKeyError::Revoked => "revoked",
            ApiKeyError::Frozen => "frozen",
            _ => "expired",
        };
        return Err(ApiKeyError::NotRotatable { state });
    }
    for permission in old
        .permissions
        .iter()
        .filter_map(|text| Permission::parse(text).ok())
    {
        actor.may_grant(&permission)?;
    }
    // The old key is active and unexpired, so it is among the counted keys.
    let current = driver.count_active_api_keys(tenant, now).await?;
    if current.saturating_sub(1) >= u64::try_from(limit).unwrap_or(0) {
        return Err(ApiKeyError::QuotaExceeded { limit, current });
    }
    let settings = KeySettings {
        name: old.name.clone(),
        permissions: old.permissions.clone(),
        allowed_workers: old.allowed_workers.clone(),
        rate_limit_rpm: old.rate_limit_rpm,
        max_concurrent_runs: old.max_concurrent_runs,
        expires_at: old.expires_at,
    };
    let issued = insert_key(db, pepper, tenant, old.user_id, settings, Some(old.id), now).await?;
    let grace_end = now + grace;
    // `None`: the old key already expires before the grace ends; it keeps its expiry.
    let previous = driver
        .update_api_key_expiry(tenant, old.id, grace_end, now)
        .await?
        .unwrap_or(old);
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
    Ok(RotatedKey { issued, previous })
}
