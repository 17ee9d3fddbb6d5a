//! Verifying a presented key: shape and checksum first, then the stored key's status, expiry
//! and freeze, the tenant's lifecycle, the permission asked for and the worker; and the
//! batched last-use writes.

use super::*;

/// A presented key that passed the shape and checksum checks, with its keyed digest: what
/// verification looks up (by the spine's cache or the database). `Debug` shows neither the
/// key nor the digest.
#[derive(Clone)]
pub struct KeyLookup {
    digest: String,
    prefix: String,
}

impl KeyLookup {
    /// The keyed digest (the cache key and the database lookup key; never the plaintext).
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

impl std::fmt::Debug for KeyLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyLookup({}…<redacted>)", self.prefix)
    }
}

/// Verification's first step, without any database access: checks the key's shape and
/// checksum ([`ApiKeyError::Malformed`] otherwise) and computes its keyed digest.
pub fn prepare_verification(
    pepper: &ApiKeyPepper,
    presented: &str,
) -> Result<KeyLookup, ApiKeyError> {
    let presented = parse_presented_key(presented)?;
    Ok(KeyLookup {
        digest: digest(pepper, presented.expose()),
        prefix: presented.prefix().to_owned(),
    })
}

/// Verification's lookup: the key with this digest and its tenant's status, in one statement
/// ([`ApiKeyError::InvalidKey`] when there is none). The row is what [`check_stored_key`]
/// decides on, so a caller may keep it (briefly) and decide again later.
pub async fn find_key_for_verification(
    db: Db<'_>,
    lookup: &KeyLookup,
) -> Result<KeyWithTenant, ApiKeyError> {
    get_tenant_driver(db)
        .fetch_api_key_by_digest(&lookup.digest)
        .await?
        .ok_or(ApiKeyError::InvalidKey)
}

/// Verification's decision on a stored key, pure: prefix, status, expiry at `now`, freeze,
/// tenant status, `required_permission` (fail closed: a required permission outside the
/// vocabulary is never granted), then `worker` against the key's allowed workers.
pub fn check_stored_key(
    lookup: &KeyLookup,
    found: &KeyWithTenant,
    required_permission: Option<&str>,
    worker: Option<&str>,
    now: DateTime<Utc>,
) -> Result<VerifiedPrincipal, ApiKeyError> {
    // The unique-index equality lookup is the match: `KeyWithTenant` carries no digest, so
    // the stored one cannot be compared again here. As defence in depth the row must carry the
    // presented key's prefix; `digests_match` is ready for the stored digest if the driver
    // ever returns it.
    if !secret::digests_match(&found.key.key_prefix, &lookup.prefix) {
        return Err(ApiKeyError::InvalidKey);
    }
    let key = &found.key;
    if let Some(refusal) = unusable(key, now) {
        return Err(refusal);
    }
    // A suspended tenant still reads (§3.3); each use case then checks its own capability
    // against the tenant's current status, so writes stay refused.
    if !crate::lifecycle::capabilities(found.tenant_status).allows_reads {
        return Err(ApiKeyError::TenantInactive {
            status: found.tenant_status,
        });
    }
    if let Some(required) = required_permission {
        let ok = Permission::parse(required)
            .is_ok_and(|required| permissions::granted(&key.permissions, &required));
        if !ok {
            return Err(ApiKeyError::PermissionDenied {
                required: required.chars().take(100).collect(),
            });
        }
    }
    let principal = VerifiedPrincipal {
        tenant_id: key.tenant_id,
        key_id: key.id,
        permissions: key.permissions.clone(),
        allowed_workers: key.allowed_workers.clone(),
        rate_limit_rpm: key.rate_limit_rpm,
        max_concurrent_runs: key.max_concurrent_runs,
        user_id: key.user_id,
    };
    if let Some(worker) = worker
        && !principal.may_use_worker(worker)
    {
        return Err(ApiKeyError::WorkerNotAllowed {
            worker: worker.chars().take(100).collect(),
        });
    }
    Ok(principal)
}

/// Verifies a presented key and returns the principal it authenticates, recording its last
/// use directly (at most once a minute): [`prepare_verification`], [`find_key_for_verification`]
/// and [`check_stored_key`] in one call, for callers without a cache. The spine composes the
/// steps itself, around its cache, and batches last use instead of writing it per request.
pub async fn verify_api_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    presented: &str,
    required_permission: Option<&str>,
    worker: Option<&str>,
    now: DateTime<Utc>,
) -> Result<VerifiedPrincipal, ApiKeyError> {
    let lookup = prepare_verification(pepper, presented)?;
    let found = find_key_for_verification(db, &lookup).await?;
    let principal = check_stored_key(&lookup, &found, required_permission, worker, now)?;
    get_tenant_driver(db)
        .touch_api_key_last_used(
            principal.tenant_id,
            principal.key_id,
            now,
            LAST_USED_GRANULARITY,
        )
        .await?;
    Ok(principal)
}

/// Records the uses a caller collected in memory (last use and request count per key), in
/// one statement per [`account_drivers::api_keys::MAX_USAGE_BATCH`] keys; each row is matched
/// by tenant and key id, and `last_used_at` only moves forward. Returns the rows updated.
pub async fn record_key_usage(db: Db<'_>, usage: &[KeyUsage]) -> Result<u64, ApiKeyError> {
    let driver = get_tenant_driver(db);
    let mut updated = 0;
    for batch in usage.chunks(account_drivers::api_keys::MAX_USAGE_BATCH) {
        updated += driver.update_api_keys_usage(batch).await?;
    }
    Ok(updated)
}
