//! Why an API-key operation was refused: [`ApiKeyError`], its codes and statuses.

use super::*;

/// Why an API-key operation was refused. Messages say what to change and never contain a key
/// or a digest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The key was rotated already: it has a successor (this call wrote nothing).
    #[error(
        "the API key was already rotated; rotate its successor instead, or revoke the successor first"
    )]
    AlreadyRotated,
    /// Revoking or rotating away this key would leave the tenant without any credential able
    /// to manage keys while no owner can sign in.
    #[error(
        "this is the tenant's last key holding keys:manage and no owner can sign in; issue another keys:manage key first (or link an owner's identity), then retry"
    )]
    LastKeyManager,
    /// The metadata is not a JSON object, is over the size limit or holds a NUL character.
    #[error("metadata {problem}")]
    InvalidMetadata {
        /// What is wrong with it.
        problem: &'static str,
    },
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
        "unknown permission {permission:?}; use run:*, run:<worker>, read:*, read:runs, read:usage, keys:manage, keys:verify, users:read, users:manage, profile:write, support:read, support:write or billing:read"
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
            Self::AlreadyRotated => "api_key_already_rotated",
            Self::LastKeyManager => "last_key_manager",
            Self::InvalidMetadata { .. } => "invalid_metadata",
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
            Self::QuotaExceeded { .. }
            | Self::NotRotatable { .. }
            | Self::AlreadyRotated
            | Self::LastKeyManager => 409,
            Self::UnknownPermission { .. }
            | Self::InvalidPermissionCount { .. }
            | Self::InvalidName
            | Self::InvalidLimit { .. }
            | Self::InvalidAllowedWorkers
            | Self::ExpiryInPast
            | Self::InvalidReason
            | Self::InvalidGrace
            | Self::InvalidMetadata { .. }
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
            Self::InvalidMetadata { .. } => Some("metadata"),
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}
