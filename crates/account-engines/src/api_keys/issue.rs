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
    pub(super) metadata: Option<serde_json::Value>,
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
    let metadata = request
        .metadata
        .as_ref()
        .map(validate_metadata)
        .transpose()?;
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
        metadata,
    })
}

/// Metadata as stored: a JSON object of at most [`MAX_METADATA_BYTES`] serialized, without
/// the NUL character (which PostgreSQL cannot store and SQLite would), else
/// [`ApiKeyError::InvalidMetadata`].
pub fn validate_metadata(metadata: &serde_json::Value) -> Result<serde_json::Value, ApiKeyError> {
    if !metadata.is_object() {
        return Err(ApiKeyError::InvalidMetadata {
            problem: "must be a JSON object",
        });
    }
    let size = serde_json::to_vec(metadata).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_METADATA_BYTES {
        return Err(ApiKeyError::InvalidMetadata {
            problem: "must be at most 4096 bytes serialized",
        });
    }
    if crate::json::reject_nul("metadata", metadata).is_err() {
        return Err(ApiKeyError::InvalidMetadata {
            problem: "must not contain the NUL character (U+0000)",
        });
    }
    Ok(metadata.clone())
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

/// The status a key has at `now`, as listings show it: `revoked`, `expired` once its expiry
/// has passed (the stored row still says `active`: nothing rewrites it), else `active`. A
/// rotated key in its grace period stays `active` until then; its `successor_id` and
/// `expires_at` say it is going.
pub fn effective_status(key: &APIKeySnapshot, now: DateTime<Utc>) -> ApiKeyStatus {
    if key.status == ApiKeyStatus::Revoked {
        ApiKeyStatus::Revoked
    } else if key.status == ApiKeyStatus::Expired || key.expires_at.is_some_and(|at| at <= now) {
        ApiKeyStatus::Expired
    } else {
        ApiKeyStatus::Active
    }
}

/// The key with its status computed at `now` ([`effective_status`]).
pub(super) fn with_effective_status(mut key: APIKeySnapshot, now: DateTime<Utc>) -> APIKeySnapshot {
    key.status = effective_status(&key, now);
    key
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

/// A tenant locked for a new key: its key quota and its keys not revoked before the new one.
pub(super) struct KeyQuota {
    pub(super) limit: i32,
    unrevoked: u64,
}

impl KeyQuota {
    /// The keys that count against the quota (active and unexpired at `now`), leaving out
    /// `replaced` of them (a rotation's old key, which goes away); `None`, without counting,
    /// when the keys not revoked (an upper bound of them) already fit under the quota.
    pub(super) async fn counted_keys(
        &self,
        db: Db<'_>,
        tenant: TenantId,
        replaced: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, ApiKeyError> {
        let limit = u64::try_from(self.limit).unwrap_or(0);
        if self.unrevoked.saturating_sub(replaced) < limit {
            return Ok(None);
        }
        let active = get_tenant_driver(db)
            .count_active_api_keys(tenant, now)
            .await?;
        Ok(Some(active))
    }
}

/// Locks the tenant row and counts the new key in the tenant's key total, in one statement
/// (the quota decision that follows is atomic in the caller's transaction, and any refusal
/// after it rolls the count back with the rest), then checks that its status allows new keys.
pub(super) async fn lock_tenant_for_new_key(
    db: Db<'_>,
    tenant: TenantId,
) -> Result<KeyQuota, ApiKeyError> {
    let locked = get_tenant_driver(db)
        .lock_tenant_for_new_api_key(tenant)
        .await?
        .ok_or(ApiKeyError::TenantNotFound)?;
    if !capabilities(locked.tenant.status).allows_new_api_keys {
        return Err(ApiKeyError::TenantInactive {
            status: locked.tenant.status,
        });
    }
    Ok(KeyQuota {
        limit: locked.tenant.quotas.max_api_keys,
        unrevoked: locked.unrevoked_keys,
    })
}

/// The new key's row: its id, tenant, user and the key it replaces (rotation).
pub(super) struct NewKeyRow {
    pub(super) id: ApiKeyId,
    pub(super) tenant: TenantId,
    pub(super) user_id: Option<UserId>,
    pub(super) rotated_from_id: Option<ApiKeyId>,
}

/// Generates a key and stores its digest.
pub(super) async fn insert_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    row: NewKeyRow,
    settings: KeySettings,
    now: DateTime<Utc>,
) -> Result<IssuedKey, ApiKeyError> {
    let NewKeyRow {
        id,
        tenant,
        user_id,
        rotated_from_id,
    } = row;
    let plaintext = PlaintextApiKey::generate()?;
    let key = get_tenant_driver(db)
        .insert_api_key(
            NewApiKey {
                id,
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
                metadata: settings.metadata,
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
        "metadata": key.metadata,
    })
}

/// Issues a key: validates the request, then, under the tenant row lock, checks the tenant's
/// status and key quota, inserts the key and audits `api_key.created`. The quota counts the
/// active, unexpired keys only when the tenant's keys not revoked (kept on its row) reach it.
///
/// The lock, count and insert are atomic only when `db` is a transaction (the spine's), and
/// an error must roll it back (the lock already counted the new key in the tenant's total).
pub async fn issue_api_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    request: IssueKeyRequest,
    now: DateTime<Utc>,
) -> Result<IssuedKey, ApiKeyError> {
    let settings = validate_issue(&request, now)?;
    let tenant = request.tenant_id;
    let quota = lock_tenant_for_new_key(db, tenant).await?;
    if let Some(current) = quota.counted_keys(db, tenant, 0, now).await?
        && current >= u64::try_from(quota.limit).unwrap_or(0)
    {
        let limit = quota.limit;
        return Err(ApiKeyError::QuotaExceeded { limit, current });
    }
    let row = NewKeyRow {
        id: ApiKeyId::new(),
        tenant,
        user_id: request.issuer.user_id,
        rotated_from_id: None,
    };
    let issued = insert_key(db, pepper, row, settings, now).await?;
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

/// The tenant's keys, newest first, each with its status computed at `now`
/// ([`effective_status`]: an expired key is listed `expired`, never `active`); revoked ones
/// only when asked. Any member may list (the list holds no secret); the spine checks
/// membership.
pub async fn list_api_keys(
    db: Db<'_>,
    tenant: TenantId,
    include_revoked: bool,
    page: OffsetPage,
    now: DateTime<Utc>,
) -> Result<Page<APIKeySnapshot>, ApiKeyError> {
    let page = PageRequest::new(page)?.into_page();
    let mut listed = get_tenant_driver(db)
        .fetch_api_keys(tenant, include_revoked, page)
        .await?;
    for key in &mut listed.items {
        key.status = effective_status(key, now);
    }
    Ok(listed)
}

/// One of the tenant's keys, with its status computed at `now` ([`effective_status`]).
pub async fn get_api_key(
    db: Db<'_>,
    tenant: TenantId,
    key_id: ApiKeyId,
    now: DateTime<Utc>,
) -> Result<APIKeySnapshot, ApiKeyError> {
    let key = get_tenant_driver(db)
        .fetch_api_key_by_id(tenant, key_id)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    Ok(with_effective_status(key, now))
}
