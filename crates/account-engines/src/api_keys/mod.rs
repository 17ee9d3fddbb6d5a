//! API keys: issue, list, revoke, rotate and verify.
//!
//! The plaintext key exists only in the [`IssuedKey`] handed back once; storage keeps its
//! keyed digest ([`secret`]) and a 16-character display prefix. Verification checks the key's
//! shape and checksum before any database access, then finds the key by digest (unique index)
//! and checks, in order: status, expiry, freeze, the tenant's lifecycle, the permission asked
//! for and the worker.
//!
//! Fixes over the original (§5.2, §5.3, §7): new keys need a tenant whose status allows them;
//! the key quota is checked under the tenant row lock in the caller's transaction; keys never
//! carry more than the issuer's role allows (nor, for a key issuing keys, more than that key
//! holds), and a rotation re-checks that the rotating actor could grant every permission of the
//! key it copies; revocation is tenant-scoped and idempotent;
//! frozen keys are refused; last use is written at most once a minute per key.
//!
//! Every function takes the caller's [`Db`]; the write use cases (issue, rotate, revoke) must
//! run in one transaction for their checks to be atomic with their writes.

pub mod permissions;
pub mod secret;

pub use account_drivers::api_keys::APIKeySnapshot;
pub use permissions::Permission;
pub use secret::{
    ApiKeyPepper, PepperTooShort, PlaintextApiKey, PresentedApiKey, digest, parse_presented_key,
};

use crate::PageRequest;
use crate::audit::{self, AuditEntry};
use crate::lifecycle::capabilities;
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
use account_drivers::api_keys::NewApiKey;
pub use account_drivers::api_keys::{KeyUsage, KeyWithTenant};
use account_drivers::get_tenant_driver;
use account_drivers::types::{
    ActorType, ApiKeyId, ApiKeyName, ApiKeyStatus, MembershipRole, TenantId, TenantStatus, UserId,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

/// Longest revocation reason, in characters (the column holds 255).
pub const MAX_REASON_CHARS: usize = 255;
/// Accepted per-key requests per minute.
pub const RATE_LIMIT_RPM: (i32, i32) = (1, 1000);
/// Accepted per-key concurrent runs.
pub const MAX_CONCURRENT_RUNS: (i32, i32) = (1, 100);
/// Most workers one key may be restricted to.
pub const MAX_ALLOWED_WORKERS: usize = 100;
/// Longest grace period of a rotation, in days.
pub const MAX_GRACE_DAYS: i64 = 7;
/// Verification writes `last_used_at` at most once per key per this interval.
pub const LAST_USED_GRANULARITY: std::time::Duration = std::time::Duration::from_secs(60);

/// Who manages keys: a member of the tenant (the spine resolved the role), an API key
/// (`audit.api_key_id` set, audited as `api_key`), or the platform (neither, audited as
/// `system`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyActor {
    /// The acting user.
    pub user_id: Option<UserId>,
    /// Their role in the tenant (for an API key: the ceiling the spine gives keys).
    pub role: MembershipRole,
    /// When the actor is an API key, what it holds: the keys it issues get nothing it lacks
    /// ([`ApiKeyError::PermissionNotHeld`], [`ApiKeyError::WiderThanIssuer`]). `None` for
    /// people and the platform.
    pub issuing_key: Option<IssuingKey>,
    /// What the audit row records about the actor and its request (the spine fills it).
    pub audit: KeyAudit,
}

/// The acting key and request metadata that the audit rows of key changes carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyAudit {
    /// The acting API key, when a key acts.
    pub api_key_id: Option<ApiKeyId>,
    /// Request correlation id.
    pub request_id: Option<String>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client agent.
    pub user_agent: Option<String>,
}

impl KeyAudit {
    /// No acting key and no request metadata (the platform, tests).
    pub const NONE: Self = Self {
        api_key_id: None,
        request_id: None,
        ip_address: None,
        user_agent: None,
    };
}

/// The limits of an API key that issues keys. A key it issues is never wider: its workers are
/// a subset of these, its limits no higher, and what it leaves out it inherits from here
/// (so a restricted key cannot mint an unrestricted one by omitting the restriction).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssuingKey {
    /// Its permission strings.
    pub permissions: Vec<String>,
    /// Workers it may run; `None` means all.
    pub allowed_workers: Option<Vec<String>>,
    /// Its concurrent-run limit; `None` means the tenant's only.
    pub max_concurrent_runs: Option<i32>,
    /// Its request rate limit per minute; `None` means none.
    pub rate_limit_rpm: Option<i32>,
}

impl IssuingKey {
    /// `asked` within this key's workers: inherited when omitted, refused when it names a
    /// worker this key may not run.
    fn bound_workers(
        &self,
        asked: Option<Vec<String>>,
    ) -> Result<Option<Vec<String>>, ApiKeyError> {
        match (&self.allowed_workers, asked) {
            (None, asked) => Ok(asked),
            (Some(held), None) => Ok(Some(held.clone())),
            (Some(held), Some(asked)) if asked.iter().all(|w| held.contains(w)) => Ok(Some(asked)),
            (Some(_), Some(_)) => Err(ApiKeyError::WiderThanIssuer {
                field: "allowed_workers",
            }),
        }
    }
}

/// `asked` at most `held`: inherited when omitted, refused when higher.
fn bound_limit(
    field: &'static str,
    held: Option<i32>,
    asked: Option<i32>,
) -> Result<Option<i32>, ApiKeyError> {
    match (held, asked) {
        (None, asked) => Ok(asked),
        (Some(held), None) => Ok(Some(held)),
        (Some(held), Some(asked)) if asked <= held => Ok(Some(asked)),
        (Some(_), Some(_)) => Err(ApiKeyError::WiderThanIssuer { field }),
    }
}

impl KeyActor {
    /// Whether this actor may put `permission` on a key: within its role's caps and, for a
    /// key, covered by a permission it holds.
    pub fn may_grant(&self, permission: &Permission) -> Result<(), ApiKeyError> {
        if !permissions::role_may_grant(self.role, permission) {
            return Err(ApiKeyError::PermissionTooWide {
                permission: permission.as_string(),
                role: self.role,
            });
        }
        if let Some(issuer) = &self.issuing_key
            && !permissions::granted(&issuer.permissions, permission)
        {
            return Err(ApiKeyError::PermissionNotHeld {
                permission: permission.as_string(),
            });
        }
        Ok(())
    }
}

/// Who issues a key (the same as any [`KeyActor`]).
pub type Issuer = KeyActor;

/// A request to issue a key.
#[derive(Clone, Debug)]
pub struct IssueKeyRequest {
    /// The tenant the key will act for.
    pub tenant_id: TenantId,
    /// Who asks; must be an owner or admin.
    pub issuer: Issuer,
    /// Label, 1 to 100 characters after trimming.
    pub name: String,
    /// Permissions ([`permissions`] grammar); empty means `run:*`, `read:*` capped to the
    /// issuer's role.
    pub permissions: Vec<String>,
    /// Workers the key may run; `None` means all. When given: 1 to 100 worker ids.
    pub allowed_workers: Option<Vec<String>>,
    /// Requests per minute, 1 to 1000.
    pub rate_limit_rpm: Option<i32>,
    /// Concurrent runs started with the key, 1 to 100.
    pub max_concurrent_runs: Option<i32>,
    /// Expiry; must be in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A newly issued key: its stored form and the plaintext, shown this once.
#[derive(Debug)]
pub struct IssuedKey {
    /// The key as stored and listed.
    pub key: APIKeySnapshot,
    /// The secret; hand it to the caller and drop it.
    pub plaintext: PlaintextApiKey,
}

/// The outcome of a revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedKey {
    /// The key, revoked.
    pub key: APIKeySnapshot,
    /// Whether it was revoked before this call (then nothing changed and nothing was audited).
    pub already_revoked: bool,
}

/// The outcome of a rotation.
#[derive(Debug)]
pub struct RotatedKey {
    /// The new key (same name, permissions, workers, limits and expiry; `rotated_from_id` set).
    pub issued: IssuedKey,
    /// The old key, now expiring at the end of the grace period (or sooner, if it already did).
    pub previous: APIKeySnapshot,
}

/// What a verified key may do: the principal a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPrincipal {
    /// The tenant the key acts for.
    pub tenant_id: TenantId,
    /// The key.
    pub key_id: ApiKeyId,
    /// Its permissions, as stored.
    pub permissions: Vec<String>,
    /// Workers it may run; `None` means all.
    pub allowed_workers: Option<Vec<String>>,
    /// Its requests-per-minute limit.
    pub rate_limit_rpm: Option<i32>,
    /// Its concurrent-run limit.
    pub max_concurrent_runs: Option<i32>,
    /// The user the key was issued for (a personal key acts on their behalf, within their
    /// current role); `None` for a machine key.
    pub user_id: Option<UserId>,
}

impl VerifiedPrincipal {
    /// Whether the key holds `required` ([`Permission::covers`]).
    pub fn has_permission(&self, required: &Permission) -> bool {
        permissions::granted(&self.permissions, required)
    }

    /// Whether the key may run `worker`.
    pub fn may_use_worker(&self, worker: &str) -> bool {
        self.allowed_workers
            .as_ref()
            .is_none_or(|list| list.iter().any(|w| w == worker))
    }
}

/// Why an API-key operation was refused. Messages say what to change and never contain a key
/// or a digest.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The presented string is not a key of ours (shape or checksum); nothing was looked up.
    #[error("the API key is malformed; send the whole key as issued (acc_live_…)")]
    Malformed,
    /// No key has this digest.
    #[error("the API key is not valid; check that it was copied whole, or issue a new one")]
    InvalidKey,
    /// No key with this id in the tenant.
    #[error("API key not found in this tenant")]
    NotFound,
    /// The key was revoked.
    #[error("the API key has been revoked; issue a new one")]
    Revoked,
    /// The key is past its expiry.
    #[error("the API key has expired; issue or rotate a key")]
    Expired,
    /// The key is frozen (kill switch).
    #[error("the API key is frozen; ask the tenant's administrators or support to unfreeze it")]
    Frozen,
    /// The key cannot be rotated in its current state.
    #[error("the API key cannot be rotated because it is {state}; issue a new key instead")]
    NotRotatable {
        /// `revoked`, `expired` or `frozen`.
        state: &'static str,
    },
    /// The tenant's lifecycle status refuses this.
    #[error("the tenant is {status}; API keys work and can be issued only for active tenants")]
    TenantInactive {
        /// Its status.
        status: TenantStatus,
    },
    /// No such tenant.
    #[error("tenant not found")]
    TenantNotFound,
    /// The actor's role may not manage keys.
    #[error("only owners and admins may manage API keys")]
    Forbidden,
    /// A requested (or, on rotation, copied) permission is above the actor's role.
    #[error("the {role} role may not grant {permission}; remove it, or ask an owner to do this")]
    PermissionTooWide {
        /// The permission.
        permission: String,
        /// The actor's role.
        role: MembershipRole,
    },
    /// An API key asked to grant a permission it does not hold itself.
    #[error(
        "an API key may grant only permissions it holds, and this one lacks {permission}; remove it or use a key or member that has it"
    )]
    PermissionNotHeld {
        /// The permission.
        permission: String,
    },
    /// An API key asked to issue a key with more workers or higher limits than its own.
    #[error(
        "an API key may issue keys no wider than itself, and this {field} goes beyond the issuing key's; narrow it, or omit it to inherit the issuing key's"
    )]
    WiderThanIssuer {
        /// The setting: `allowed_workers`, `max_concurrent_runs` or `rate_limit_rpm`.
        field: &'static str,
    },
    /// A requested permission is not in the vocabulary.
    #[error(
        "unknown permission {permission:?}; use run:*, run:<worker>, read:*, read:runs, read:usage or keys:manage"
    )]
    UnknownPermission {
        /// The permission as given (at most 100 characters).
        permission: String,
    },
    /// Too many permissions.
    #[error("a key may hold at most {max} permissions")]
    InvalidPermissionCount {
        /// The maximum.
        max: usize,
    },
    /// The name is empty, too long or has control characters.
    #[error(
        "name must be 1 to {} characters, without control characters",
        ApiKeyName::MAX
    )]
    InvalidName,
    /// A limit is out of range.
    #[error("{field} must be between {min} and {max}")]
    InvalidLimit {
        /// The field.
        field: &'static str,
        /// Smallest accepted.
        min: i32,
        /// Largest accepted.
        max: i32,
    },
    /// The allowed-workers list is empty, too long, or names an invalid worker id.
    #[error(
        "allowed_workers must list 1 to {MAX_ALLOWED_WORKERS} worker ids of a-z, 0-9, `-` or `_` (omit it to allow every worker)"
    )]
    InvalidAllowedWorkers,
    /// The expiry is not in the future.
    #[error("expires_at must be in the future")]
    ExpiryInPast,
    /// The revocation reason is empty or too long.
    #[error("reason must be 1 to {MAX_REASON_CHARS} characters")]
    InvalidReason,
    /// The rotation grace period is out of range.
    #[error("the grace period must be between 0 seconds and {MAX_GRACE_DAYS} days")]
    InvalidGrace,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to {}", crate::MAX_PAGE_LIMIT)]
    InvalidPage,
    /// The plan's key quota is used up.
    #[error("api_keys quota exceeded: {current}/{limit}; revoke an unused key or change plan")]
    QuotaExceeded {
        /// The plan's limit.
        limit: i32,
        /// Active keys now.
        current: u64,
    },
    /// The key lacks the permission the operation needs.
    #[error("the API key lacks the {required} permission; use a key that has it")]
    PermissionDenied {
        /// The permission needed.
        required: String,
    },
    /// The key may not run this worker.
    #[error("the API key may not run worker {worker}; use a key allowed to, or widen its list")]
    WorkerNotAllowed {
        /// The worker asked for.
        worker: String,
    },
    /// The operating system's random source failed; no key was made.
    #[error("no randomness available to generate a key; retry")]
    RandomnessUnavailable,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for ApiKeyError {
    fn from(error: DriverError) -> Self {
        // Every conflict here, `uq_api_keys_key_digest` included (a 256-bit collision or a
        // bug), is a storage fault: the caller did nothing wrong.
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for ApiKeyError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for ApiKeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed_api_key",
            Self::InvalidKey => "invalid_api_key",
            Self::NotFound => "api_key_not_found",
            Self::Revoked => "api_key_revoked",
            Self::Expired => "api_key_expired",
            Self::Frozen => "api_key_frozen",
            Self::NotRotatable { .. } => "api_key_not_rotatable",
            Self::TenantInactive { .. } => "tenant_inactive",
            Self::TenantNotFound => "tenant_not_found",
            Self::Forbidden => "forbidden",
            Self::PermissionTooWide { .. } => "permission_too_wide",
            Self::PermissionNotHeld { .. } => "permission_not_held",
            Self::WiderThanIssuer { .. } => "wider_than_issuing_key",
            Self::UnknownPermission { .. } => "unknown_permission",
            Self::InvalidPermissionCount { .. } => "invalid_permission_count",
            Self::InvalidName => "invalid_name",
            Self::InvalidLimit { .. } => "invalid_limit",
            Self::InvalidAllowedWorkers => "invalid_allowed_workers",
            Self::ExpiryInPast => "expiry_in_past",
            Self::InvalidReason => "invalid_reason",
            Self::InvalidGrace => "invalid_grace",
            Self::InvalidPage => "invalid_page",
            Self::QuotaExceeded { .. } => "api_key_quota_exceeded",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::WorkerNotAllowed { .. } => "worker_not_allowed",
            Self::RandomnessUnavailable => "randomness_unavailable",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            // Credentials that do not authenticate.
            Self::Malformed | Self::InvalidKey | Self::Revoked | Self::Expired | Self::Frozen => {
                401
            }
            Self::TenantInactive { .. }
            | Self::Forbidden
            | Self::PermissionTooWide { .. }
            | Self::PermissionNotHeld { .. }
            | Self::WiderThanIssuer { .. }
            | Self::PermissionDenied { .. }
            | Self::WorkerNotAllowed { .. } => 403,
            Self::NotFound | Self::TenantNotFound => 404,
            // Waiting does not help (so not 429): a key must be revoked or the plan changed.
            Self::QuotaExceeded { .. } | Self::NotRotatable { .. } => 409,
            Self::UnknownPermission { .. }
            | Self::InvalidPermissionCount { .. }
            | Self::InvalidName
            | Self::InvalidLimit { .. }
            | Self::InvalidAllowedWorkers
            | Self::ExpiryInPast
            | Self::InvalidReason
            | Self::InvalidGrace
            | Self::InvalidPage => 422,
            Self::RandomnessUnavailable => 503,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::PermissionTooWide { .. }
            | Self::PermissionNotHeld { .. }
            | Self::UnknownPermission { .. }
            | Self::InvalidPermissionCount { .. } => Some("permissions"),
            Self::WiderThanIssuer { field } | Self::InvalidLimit { field, .. } => Some(field),
            Self::InvalidName => Some("name"),
            Self::InvalidAllowedWorkers => Some("allowed_workers"),
            Self::ExpiryInPast => Some("expires_at"),
            Self::InvalidReason => Some("reason"),
            Self::InvalidGrace => Some("grace_seconds"),
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// A validated issue request, ready to store.
struct KeySettings {
    name: String,
    permissions: Vec<String>,
    allowed_workers: Option<Vec<String>>,
    rate_limit_rpm: Option<i32>,
    max_concurrent_runs: Option<i32>,
    expires_at: Option<DateTime<Utc>>,
}

fn validate_issue(
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
fn validate_workers(workers: &[String]) -> Result<Vec<String>, ApiKeyError> {
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

fn validate_limit(
    field: &'static str,
    value: Option<i32>,
    (min, max): (i32, i32),
) -> Result<Option<i32>, ApiKeyError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ApiKeyError::InvalidLimit { field, min, max }),
        other => Ok(other),
    }
}

fn validate_reason(reason: &str) -> Result<String, ApiKeyError> {
    let reason = reason.trim();
    let chars = reason.chars().count();
    if chars == 0 || chars > MAX_REASON_CHARS {
        return Err(ApiKeyError::InvalidReason);
    }
    Ok(reason.to_owned())
}

/// Why a stored key is not usable at `now`, in verification order: status, expiry, freeze.
fn unusable(key: &APIKeySnapshot, now: DateTime<Utc>) -> Option<ApiKeyError> {
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
async fn lock_tenant_for_new_key(db: Db<'_>, tenant: TenantId) -> Result<i32, ApiKeyError> {
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
async fn insert_key(
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

fn audit_entry(
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
fn key_settings_json(key: &APIKeySnapshot) -> serde_json::Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn request(role: MembershipRole) -> IssueKeyRequest {
        IssueKeyRequest {
            tenant_id: TenantId::new(),
            issuer: Issuer {
                user_id: None,
                role,
                issuing_key: None,
                audit: KeyAudit::NONE,
            },
            name: "  ci  ".into(),
            permissions: vec![],
            allowed_workers: None,
            rate_limit_rpm: None,
            max_concurrent_runs: None,
            expires_at: None,
        }
    }

    #[test]
    fn issue_requests_are_validated_before_storage() {
        let ok = validate_issue(&request(MembershipRole::Admin), now()).unwrap();
        assert_eq!(ok.name, "ci");
        assert_eq!(ok.permissions, vec!["run:*", "read:*"]);
        for role in [MembershipRole::Member, MembershipRole::Viewer] {
            assert!(matches!(
                validate_issue(&request(role), now()),
                Err(ApiKeyError::Forbidden)
            ));
        }
        let check = |edit: fn(&mut IssueKeyRequest)| {
            let mut r = request(MembershipRole::Owner);
            edit(&mut r);
            validate_issue(&r, now()).err()
        };
        assert!(matches!(
            check(|r| r.name = "   ".into()),
            Some(ApiKeyError::InvalidName)
        ));
        assert!(matches!(
            check(|r| r.name = "a".repeat(101)),
            Some(ApiKeyError::InvalidName)
        ));
        assert!(
            check(|r| r.name = "é".repeat(100)).is_none(),
            "characters, not bytes"
        );
        assert!(matches!(
            check(|r| r.name = "a\nb".into()),
            Some(ApiKeyError::InvalidName)
        ));
        assert!(matches!(
            check(|r| r.rate_limit_rpm = Some(0)),
            Some(ApiKeyError::InvalidLimit {
                field: "rate_limit_rpm",
                min: 1,
                max: 1000
            })
        ));
        assert!(check(|r| r.rate_limit_rpm = Some(1000)).is_none());
        assert!(matches!(
            check(|r| r.rate_limit_rpm = Some(1001)),
            Some(ApiKeyError::InvalidLimit { .. })
        ));
        assert!(matches!(
            check(|r| r.max_concurrent_runs = Some(101)),
            Some(ApiKeyError::InvalidLimit {
                field: "max_concurrent_runs",
                ..
            })
        ));
        assert!(check(|r| r.max_concurrent_runs = Some(1)).is_none());
        assert!(matches!(
            check(|r| r.expires_at = Some(now())),
            Some(ApiKeyError::ExpiryInPast)
        ));
        assert!(check(|r| r.expires_at = Some(now() + TimeDelta::seconds(1))).is_none());
        assert!(matches!(
            check(|r| r.allowed_workers = Some(vec![])),
            Some(ApiKeyError::InvalidAllowedWorkers)
        ));
        assert!(matches!(
            check(|r| r.allowed_workers = Some(vec!["Bad Worker".into()])),
            Some(ApiKeyError::InvalidAllowedWorkers)
        ));
        assert!(matches!(
            check(|r| r.permissions = vec!["keys:*".into()]),
            Some(ApiKeyError::UnknownPermission { .. })
        ));
        let mut r = request(MembershipRole::Owner);
        r.allowed_workers = Some(vec!["a".into(), "b".into(), "a".into()]);
        r.permissions = vec!["keys:manage".into()];
        let ok = validate_issue(&r, now()).unwrap();
        assert_eq!(ok.allowed_workers, Some(vec!["a".into(), "b".into()]));
        assert_eq!(ok.permissions, vec!["keys:manage"]);
        // A key issuing keys grants only what it holds; its defaults narrow to that.
        let mut by_key = request(MembershipRole::Admin);
        by_key.issuer.issuing_key = Some(IssuingKey {
            permissions: vec!["read:*".into(), "keys:manage".into()],
            ..IssuingKey::default()
        });
        assert_eq!(
            validate_issue(&by_key, now()).unwrap().permissions,
            vec!["read:*"]
        );
        by_key.permissions = vec!["read:runs".into(), "run:x".into()];
        assert!(matches!(
            validate_issue(&by_key, now()),
            Err(ApiKeyError::PermissionNotHeld { permission }) if permission == "run:x"
        ));
    }

    #[test]
    fn a_key_issues_keys_no_wider_than_itself() {
        let mut by_key = request(MembershipRole::Admin);
        by_key.permissions = vec!["run:*".into()];
        by_key.issuer.issuing_key = Some(IssuingKey {
            permissions: vec!["run:*".into(), "keys:manage".into()],
            allowed_workers: Some(vec!["builder".into(), "critic".into()]),
            max_concurrent_runs: Some(3),
            rate_limit_rpm: Some(60),
        });
        // What the request leaves out, the new key inherits.
        let inherited = validate_issue(&by_key, now()).unwrap();
        assert_eq!(
            inherited.allowed_workers,
            Some(vec!["builder".into(), "critic".into()])
        );
        assert_eq!(inherited.max_concurrent_runs, Some(3));
        assert_eq!(inherited.rate_limit_rpm, Some(60));
        // Narrower is fine.
        by_key.allowed_workers = Some(vec!["critic".into()]);
        by_key.max_concurrent_runs = Some(1);
        by_key.rate_limit_rpm = Some(60);
        let narrower = validate_issue(&by_key, now()).unwrap();
        assert_eq!(narrower.allowed_workers, Some(vec!["critic".into()]));
        assert_eq!(narrower.max_concurrent_runs, Some(1));
        // Wider is refused, naming the setting.
        let wider = |change: fn(&mut IssueKeyRequest)| {
            let mut r = by_key.clone();
            change(&mut r);
            match validate_issue(&r, now()) {
                Err(ApiKeyError::WiderThanIssuer { field }) => field,
                Err(other) => panic!("expected wider_than_issuing_key, got {other:?}"),
                Ok(_) => panic!("a wider key was accepted"),
            }
        };
        assert_eq!(
            wider(|r| r.allowed_workers = Some(vec!["critic".into(), "deployer".into()])),
            "allowed_workers"
        );
        assert_eq!(
            wider(|r| r.max_concurrent_runs = Some(4)),
            "max_concurrent_runs"
        );
        assert_eq!(wider(|r| r.rate_limit_rpm = Some(61)), "rate_limit_rpm");
        // People are bounded by their role only.
        let mut by_person = by_key.clone();
        by_person.issuer.issuing_key = None;
        by_person.allowed_workers = None;
        by_person.max_concurrent_runs = None;
        assert_eq!(
            validate_issue(&by_person, now()).unwrap().allowed_workers,
            None
        );
    }

    #[test]
    fn reasons_and_pages_are_bounded() {
        assert_eq!(validate_reason("  leaked ").unwrap(), "leaked");
        assert!(matches!(
            validate_reason(" "),
            Err(ApiKeyError::InvalidReason)
        ));
        assert!(validate_reason(&"r".repeat(255)).is_ok());
        assert!(matches!(
            validate_reason(&"r".repeat(256)),
            Err(ApiKeyError::InvalidReason)
        ));
    }

    #[test]
    fn caller_errors_are_4xx_with_stable_codes() {
        let errors = [
            ApiKeyError::Malformed,
            ApiKeyError::InvalidKey,
            ApiKeyError::NotFound,
            ApiKeyError::Revoked,
            ApiKeyError::Expired,
            ApiKeyError::Frozen,
            ApiKeyError::NotRotatable { state: "revoked" },
            ApiKeyError::TenantInactive {
                status: TenantStatus::Suspended,
            },
            ApiKeyError::TenantNotFound,
            ApiKeyError::Forbidden,
            ApiKeyError::PermissionTooWide {
                permission: "keys:manage".into(),
                role: MembershipRole::Member,
            },
            ApiKeyError::PermissionNotHeld {
                permission: "run:*".into(),
            },
            ApiKeyError::UnknownPermission {
                permission: "x".into(),
            },
            ApiKeyError::InvalidPermissionCount { max: 50 },
            ApiKeyError::InvalidName,
            ApiKeyError::InvalidLimit {
                field: "rate_limit_rpm",
                min: 1,
                max: 1000,
            },
            ApiKeyError::InvalidAllowedWorkers,
            ApiKeyError::ExpiryInPast,
            ApiKeyError::InvalidReason,
            ApiKeyError::InvalidGrace,
            ApiKeyError::InvalidPage,
            ApiKeyError::QuotaExceeded {
                limit: 5,
                current: 5,
            },
            ApiKeyError::PermissionDenied {
                required: "run:x".into(),
            },
            ApiKeyError::WorkerNotAllowed { worker: "x".into() },
        ];
        let mut codes = std::collections::HashSet::new();
        for error in &errors {
            assert!((400..500).contains(&error.http_status()), "{error:?}");
            let code = error.code();
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            assert!(codes.insert(code), "duplicate code {code}");
            assert!(!error.to_string().is_empty());
        }
        assert_eq!(ApiKeyError::Malformed.http_status(), 401);
        assert_eq!(ApiKeyError::Forbidden.http_status(), 403);
        assert_eq!(
            ApiKeyError::QuotaExceeded {
                limit: 5,
                current: 5
            }
            .to_string(),
            "api_keys quota exceeded: 5/5; revoke an unused key or change plan"
        );
        let storage = ApiKeyError::from(DriverError::NotFound { entity: "row" });
        assert_eq!(storage.http_status(), 500);
        assert_eq!(ApiKeyError::RandomnessUnavailable.http_status(), 503);
    }

    fn stored(
        status: ApiKeyStatus,
        expires_at: Option<DateTime<Utc>>,
        frozen: bool,
    ) -> APIKeySnapshot {
        APIKeySnapshot {
            id: ApiKeyId::new(),
            tenant_id: TenantId::new(),
            user_id: None,
            name: "k".into(),
            key_prefix: "acc_live_AAAAAAA".into(),
            status,
            permissions: vec!["run:*".into()],
            allowed_workers: Some(vec!["a".into()]),
            rate_limit_rpm: None,
            max_concurrent_runs: None,
            expires_at,
            revoked_at: None,
            revoked_reason: None,
            is_frozen: frozen,
            last_used_at: None,
            rotated_from_id: None,
            created_at: now(),
        }
    }

    #[test]
    fn usability_is_status_then_expiry_then_freeze() {
        use ApiKeyStatus::*;
        assert!(unusable(&stored(Active, None, false), now()).is_none());
        assert!(
            unusable(
                &stored(Active, Some(now() + TimeDelta::seconds(1)), false),
                now()
            )
            .is_none()
        );
        assert!(matches!(
            unusable(&stored(Active, Some(now()), false), now()),
            Some(ApiKeyError::Expired)
        ));
        assert!(matches!(
            unusable(&stored(Expired, None, false), now()),
            Some(ApiKeyError::Expired)
        ));
        assert!(matches!(
            unusable(&stored(Revoked, Some(now()), true), now()),
            Some(ApiKeyError::Revoked)
        ));
        assert!(matches!(
            unusable(&stored(Active, Some(now()), true), now()),
            Some(ApiKeyError::Expired)
        ));
        assert!(matches!(
            unusable(&stored(Active, None, true), now()),
            Some(ApiKeyError::Frozen)
        ));
    }

    #[test]
    fn principals_check_permissions_and_workers() {
        let principal = VerifiedPrincipal {
            tenant_id: TenantId::new(),
            key_id: ApiKeyId::new(),
            permissions: vec!["run:*".into(), "read:runs".into()],
            allowed_workers: Some(vec!["a".into()]),
            rate_limit_rpm: None,
            max_concurrent_runs: None,
            user_id: None,
        };
        assert!(principal.has_permission(&Permission::RunWorker("a".into())));
        assert!(!principal.has_permission(&Permission::ReadUsage));
        assert!(principal.may_use_worker("a"));
        assert!(!principal.may_use_worker("b"));
        let all = VerifiedPrincipal {
            allowed_workers: None,
            ..principal
        };
        assert!(all.may_use_worker("b"));
    }
}
