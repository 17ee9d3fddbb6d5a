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

mod error;
mod issue;
mod manage;
pub mod permissions;
pub mod secret;
#[cfg(test)]
mod tests;
mod verify;

pub use error::*;
pub use issue::*;
pub use manage::*;
pub use verify::*;

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
/// Largest key metadata, in bytes of its JSON serialization.
pub const MAX_METADATA_BYTES: usize = 4096;
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
    /// A JSON object the tenant attaches to the key (at most [`MAX_METADATA_BYTES`]).
    pub metadata: Option<serde_json::Value>,
}

/// A newly issued key: its stored form and the plaintext, shown this once.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedKey {
    /// The key as stored and listed.
    pub key: APIKeySnapshot,
    /// The secret; hand it to the caller and drop it.
    pub plaintext: PlaintextApiKey,
}

/// The outcome of a revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevokedKey {
    /// The key, revoked.
    pub key: APIKeySnapshot,
    /// Whether it was revoked before this call (then nothing changed and nothing was audited).
    pub already_revoked: bool,
}

/// The outcome of a rotation.
#[derive(Debug)]
#[non_exhaustive]
pub struct RotatedKey {
    /// The new key (same name, permissions, workers, limits and expiry; `rotated_from_id` set).
    pub issued: IssuedKey,
    /// The old key, now expiring at the end of the grace period (or sooner, if it already did),
    /// with `successor_id` set to the new key.
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
