//! API-key use cases: verify (which builds a principal), issue, list, update metadata, revoke,
//! rotate, and verify for a host's service ([`VerifyPresentedKey`]). The engine writes the
//! audit rows of key changes inside the same transaction, with the actor and request metadata
//! the spine hands it ([`KeyAudit`]).
//!
//! Who manages keys: owners and admins (by their membership role), and *owner keys*, API keys
//! holding `keys:manage`, which act with the owner's ceiling bounded by what they hold
//! themselves. So an owner key issues `keys:manage` keys and rotates or revokes any key of
//! its tenant, the bootstrap key included; the engine refuses only removing the last key
//! manager while no owner can sign in (`last_key_manager`). A *personal* owner key is also
//! bounded by its user's role as it stands now: an admin's manages keys but grants no owner
//! key, and a member's or viewer's manages nothing.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::{Actor, Principal, RequestMeta};
use crate::use_case::{Caller, Context, Sealed, UseCase};
use account_engines::api_keys::{
    self, IssueKeyRequest, IssuingKey, KeyActor, KeyAudit, KeyWithTenant, Permission, permissions,
};
use account_engines::memberships::Acting;
use account_engines::roles::rank;
use account_engines::types::{ApiKeyId, MembershipRole, TenantId};
use account_engines::{OffsetPage, Page};
use chrono::TimeDelta;
use std::sync::Arc;

pub use account_engines::api_keys::{
    APIKeySnapshot, ApiKeyError, ApiKeyPepper, IssuedKey, PlaintextApiKey, RevokedKey, RotatedKey,
};

/// Issues a key for the principal's tenant; the plaintext is in the result, once. What the
/// new key may do is bounded by the issuer (a key issues keys no wider than itself).
#[derive(Clone, Debug, Default)]
pub struct IssueKey {
    /// Label.
    pub name: String,
    /// Permissions; empty means `run:*`, `read:*` capped to the issuer's role.
    pub permissions: Vec<String>,
    /// Workers it may run; `None` means all.
    pub allowed_workers: Option<Vec<String>>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Concurrent runs.
    pub max_concurrent_runs: Option<i32>,
    /// Expiry.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A JSON object about the key (at most 4 KiB), returned by verification.
    pub metadata: Option<serde_json::Value>,
}

/// What the engine's audit rows record: the acting key (if a key acts) and the request.
pub(crate) fn key_audit(api_key_id: Option<ApiKeyId>, request: &RequestMeta) -> KeyAudit {
    let request = request.bounded();
    KeyAudit {
        api_key_id,
        request_id: request.request_id,
        ip_address: request.ip_address,
        user_agent: request.user_agent,
    }
}

/// The actor the engine checks. `member` is a personal key's user as they stand now (the
/// spine resolved them, see `execute`): their role caps the key's.
fn key_actor(principal: &Principal, member: Option<Acting>) -> KeyActor {
    let mut actor = match &principal.actor {
        Actor::User { user_id, role } => KeyActor {
            user_id: Some(*user_id),
            role: *role,
            issuing_key: None,
            audit: key_audit(None, &principal.request),
        },
        // A key holding `keys:manage` is an owner key: it acts with the owner's ceiling, and
        // issues keys no wider than itself (permissions, workers, limits). Any other key acts
        // with the admin's (none reaches key management without `keys:manage` today).
        Actor::ApiKey {
            key_id,
            permissions,
            allowed_workers,
            max_concurrent_runs,
            rate_limit_rpm,
            ..
        } => KeyActor {
            user_id: None,
            role: if permissions::granted(permissions, &Permission::KeysManage) {
                MembershipRole::Owner
            } else {
                MembershipRole::Admin
            },
            issuing_key: Some(IssuingKey {
                permissions: permissions.clone(),
                allowed_workers: allowed_workers.clone(),
                max_concurrent_runs: *max_concurrent_runs,
                rate_limit_rpm: *rate_limit_rpm,
            }),
            audit: key_audit(Some(*key_id), &principal.request),
        },
    };
    if let Some(member) = member
        && rank(member.role) < rank(actor.role)
    {
        actor.role = member.role;
    }
    actor
}

impl Sealed for IssueKey {}
impl UseCase for IssueKey {
    type Output = IssuedKey;
    const OPERATION: Operation = Operation::ApiKeysIssue;

    async fn run(&self, cx: &mut Context<'_>) -> Result<IssuedKey, SpineError> {
        let principal = cx.principal()?;
        let request = IssueKeyRequest {
            tenant_id: principal.tenant_id,
            issuer: key_actor(principal, cx.member),
            name: self.name.clone(),
            permissions: self.permissions.clone(),
            allowed_workers: self.allowed_workers.clone(),
            rate_limit_rpm: self.rate_limit_rpm,
            max_concurrent_runs: self.max_concurrent_runs,
            expires_at: self.expires_at,
            metadata: self.metadata.clone(),
        };
        let issued = api_keys::issue_api_key(cx.db, cx.pepper()?, request, cx.now).await?;
        cx.publish(DomainEvent::ApiKeyIssued {
            tenant_id: principal.tenant_id,
            key_id: issued.key.id,
        });
        Ok(issued)
    }
}

/// The tenant's keys.
#[derive(Clone, Copy, Debug)]
pub struct ListApiKeys {
    /// Revoked keys too.
    pub include_revoked: bool,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListApiKeys {}
impl UseCase for ListApiKeys {
    type Output = Page<APIKeySnapshot>;
    const OPERATION: Operation = Operation::ApiKeysList;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<APIKeySnapshot>, SpineError> {
        let tenant = cx.tenant()?;
        let (revoked, page) = (self.include_revoked, self.page);
        Ok(api_keys::list_api_keys(cx.db, tenant, revoked, page, cx.now).await?)
    }
}

/// Replaces a key's metadata (`None` clears it); audited as `api_key.updated` with the old
/// and new metadata. It shows in verification at once in this process.
#[derive(Clone, Debug)]
pub struct UpdateApiKeyMetadata {
    /// The key.
    pub key_id: ApiKeyId,
    /// The new metadata: a JSON object of at most 4 KiB, or `None` to clear it.
    pub metadata: Option<serde_json::Value>,
}

impl Sealed for UpdateApiKeyMetadata {}
impl UseCase for UpdateApiKeyMetadata {
    type Output = APIKeySnapshot;
    const OPERATION: Operation = Operation::ApiKeysUpdate;

    async fn run(&self, cx: &mut Context<'_>) -> Result<APIKeySnapshot, SpineError> {
        let principal = cx.principal()?;
        let tenant_id = principal.tenant_id;
        let key = api_keys::update_api_key_metadata(
            cx.db,
            tenant_id,
            self.key_id,
            key_actor(principal, cx.member),
            self.metadata.clone(),
            cx.now,
        )
        .await?;
        // Cached verifications carry the old metadata.
        cx.forget_key(tenant_id, self.key_id);
        Ok(key)
    }
}

/// Revokes a key of the tenant (idempotent); it stops verifying in this process at once.
#[derive(Clone, Debug)]
pub struct RevokeApiKey {
    /// The key.
    pub key_id: ApiKeyId,
    /// Why, for the audit row.
    pub reason: String,
}

impl Sealed for RevokeApiKey {}
impl UseCase for RevokeApiKey {
    type Output = RevokedKey;
    const OPERATION: Operation = Operation::ApiKeysRevoke;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RevokedKey, SpineError> {
        let principal = cx.principal()?;
        let tenant_id = principal.tenant_id;
        let revoked = api_keys::revoke_api_key(
            cx.db,
            tenant_id,
            self.key_id,
            key_actor(principal, cx.member),
            &self.reason,
            cx.now,
        )
        .await?;
        cx.forget_key(tenant_id, self.key_id);
        if !revoked.already_revoked {
            let key_id = self.key_id;
            cx.publish(DomainEvent::ApiKeyRevoked { tenant_id, key_id });
        }
        Ok(revoked)
    }
}

/// Rotates a key: a new key now, the old one working until the grace period ends. Publishes
/// [`DomainEvent::ApiKeyRotated`] (not `ApiKeyIssued`) after commit.
#[derive(Clone, Copy, Debug)]
pub struct RotateApiKey {
    /// The key to replace.
    pub key_id: ApiKeyId,
    /// How long the old key keeps working.
    pub grace: TimeDelta,
}

impl Sealed for RotateApiKey {}
impl UseCase for RotateApiKey {
    type Output = RotatedKey;
    const OPERATION: Operation = Operation::ApiKeysRotate;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RotatedKey, SpineError> {
        let principal = cx.principal()?;
        let tenant_id = principal.tenant_id;
        let rotated = api_keys::rotate_api_key(
            cx.db,
            cx.pepper()?,
            tenant_id,
            self.key_id,
            key_actor(principal, cx.member),
            self.grace,
            cx.now,
        )
        .await?;
        // The old key's row now expires at the end of the grace period.
        cx.forget_key(tenant_id, rotated.previous.id);
        cx.publish(DomainEvent::ApiKeyRotated {
            tenant_id,
            previous_key_id: rotated.previous.id,
            new_key_id: rotated.issued.key.id,
            previous_expires_at: rotated.previous.expires_at,
        });
        Ok(rotated)
    }
}

/// Checks a key presented to one of the host's other services, for a caller holding
/// `keys:verify` (a service credential; `keys:manage` covers it) or an owner. Never an error
/// for the presented key's faults: the answer says valid, or invalid with the reason's code.
///
/// Only keys of the caller's own tenant verify: another tenant's key is answered
/// `invalid_api_key`, exactly like a key that does not exist, so a service cannot tell
/// another tenant's keys from made-up ones. Reads only: the verified key's last use is not
/// recorded and its request allowance is not consumed (it was presented to the host's
/// service, not to this API). Served from the verify cache like [`Spine::authenticate_api_key`].
#[derive(Clone)]
pub struct VerifyPresentedKey {
    /// The key as presented to the service.
    pub presented: String,
}

impl std::fmt::Debug for VerifyPresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyPresentedKey { presented: <redacted> }")
    }
}

/// A verified key, as a host's service sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedKey {
    /// The key's tenant (always the caller's).
    pub tenant_id: TenantId,
    /// The key.
    pub key_id: ApiKeyId,
    /// Its permission strings.
    pub permissions: Vec<String>,
    /// Workers it may run; `None` means all.
    pub allowed_workers: Option<Vec<String>>,
    /// The tenant's JSON object about the key.
    pub metadata: Option<serde_json::Value>,
    /// When it stops working (for a rotated key: the end of its grace period).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its requests-per-minute limit; `None` means none.
    pub rate_limit_rpm: Option<i32>,
}

/// The answer of [`VerifyPresentedKey`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyVerification {
    /// The key works now.
    Valid(VerifiedKey),
    /// It does not; `code` is the [`ApiKeyError`] code: `malformed_api_key`,
    /// `invalid_api_key` (unknown, or another tenant's), `api_key_revoked`, `api_key_expired`,
    /// `api_key_frozen` or `tenant_inactive`.
    Invalid {
        /// Why, as a stable code.
        code: &'static str,
    },
}

impl Sealed for VerifyPresentedKey {}
impl UseCase for VerifyPresentedKey {
    type Output = KeyVerification;
    const OPERATION: Operation = Operation::ApiKeysVerifyPresented;

    async fn run(&self, cx: &mut Context<'_>) -> Result<KeyVerification, SpineError> {
        let tenant = cx.tenant()?;
        let invalid = |error: &ApiKeyError| KeyVerification::Invalid {
            code: account_engines::ErrorCode::code(error),
        };
        let lookup = match api_keys::prepare_verification(cx.pepper()?, &self.presented) {
            Ok(lookup) => lookup,
            Err(error) => return Ok(invalid(&error)),
        };
        let found = match cx.spine.find_key_cached(cx.db, &lookup).await {
            Ok(found) if found.key.tenant_id == tenant => found,
            Ok(_) => return Ok(invalid(&ApiKeyError::InvalidKey)),
            Err(ApiKeyError::Storage(error)) => return Err(ApiKeyError::Storage(error).into()),
            Err(error) => return Ok(invalid(&error)),
        };
        match api_keys::check_stored_key(&lookup, &found, None, None, cx.now) {
            Ok(verified) => Ok(KeyVerification::Valid(VerifiedKey {
                tenant_id: verified.tenant_id,
                key_id: verified.key_id,
                permissions: verified.permissions,
                allowed_workers: verified.allowed_workers,
                metadata: found.key.metadata.clone(),
                expires_at: found.key.expires_at,
                rate_limit_rpm: verified.rate_limit_rpm,
            })),
            Err(ApiKeyError::Storage(error)) => Err(ApiKeyError::Storage(error).into()),
            Err(error) => Ok(invalid(&error)),
        }
    }
}

impl Spine {
    /// The stored key a lookup names, from the verify cache or (one statement) from `db`,
    /// which then fills the cache.
    async fn find_key_cached(
        &self,
        db: account_engines::Db<'_>,
        lookup: &api_keys::KeyLookup,
    ) -> Result<Arc<KeyWithTenant>, ApiKeyError> {
        if let Some(found) = self.verify_cache.get(lookup.digest()) {
            return Ok(found);
        }
        let epoch = self.verify_cache.epoch();
        let found = Arc::new(api_keys::find_key_for_verification(db, lookup).await?);
        self.verify_cache
            .insert(lookup.digest(), Arc::clone(&found), epoch);
        Ok(found)
    }

    /// Verifies a presented key and returns the principal it acts as. Malformed keys are
    /// refused before any database access; a key found in the verify cache costs no
    /// statement, any other one statement (see [`crate::VerifyCacheSettings`]). The engine
    /// decides on the stored row every time, against the clock. Nothing is written: last use
    /// is collected in memory and written by [`Spine::flush_key_usage`].
    pub async fn authenticate_api_key(
        &self,
        presented: &str,
        request: RequestMeta,
    ) -> Result<Principal, SpineError> {
        let operation = Operation::ApiKeysVerify;
        let caller = Caller::KeyPresenter(&request);
        let verified = self
            .observe(operation, caller, async {
                let lookup = api_keys::prepare_verification(self.pepper()?, presented)?;
                let found = self.find_key_cached(self.pool_db(), &lookup).await?;
                let now = self.clock.now();
                let verified = api_keys::check_stored_key(&lookup, &found, None, None, now)?;
                self.verify_cache
                    .record_use(verified.tenant_id, verified.key_id, now);
                tracing::Span::current()
                    .record("tenant_id", tracing::field::display(verified.tenant_id));
                Ok(verified)
            })
            .await?;
        Ok(Principal {
            tenant_id: verified.tenant_id,
            actor: Actor::ApiKey {
                key_id: verified.key_id,
                permissions: verified.permissions,
                allowed_workers: verified.allowed_workers,
                max_concurrent_runs: verified.max_concurrent_runs,
                rate_limit_rpm: verified.rate_limit_rpm,
                user_id: verified.user_id,
            },
            request,
        })
    }

    /// Executes [`IssueKey`].
    pub async fn issue_api_key(
        &self,
        principal: &Principal,
        request: IssueKey,
    ) -> Result<IssuedKey, SpineError> {
        self.execute(principal, request).await
    }

    /// Executes [`ListApiKeys`].
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        include_revoked: bool,
        page: OffsetPage,
    ) -> Result<Page<APIKeySnapshot>, SpineError> {
        let list = ListApiKeys {
            include_revoked,
            page,
        };
        self.execute(principal, list).await
    }

    /// Executes [`UpdateApiKeyMetadata`].
    pub async fn update_api_key_metadata(
        &self,
        principal: &Principal,
        key_id: ApiKeyId,
        metadata: Option<serde_json::Value>,
    ) -> Result<APIKeySnapshot, SpineError> {
        self.execute(principal, UpdateApiKeyMetadata { key_id, metadata })
            .await
    }

    /// Executes [`VerifyPresentedKey`]: whether `presented` is a working key of the
    /// principal's tenant, and what it may do.
    pub async fn verify_presented_key(
        &self,
        principal: &Principal,
        presented: &str,
    ) -> Result<KeyVerification, SpineError> {
        let presented = presented.to_owned();
        self.execute(principal, VerifyPresentedKey { presented })
            .await
    }

    /// Executes [`RevokeApiKey`].
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        key_id: ApiKeyId,
        reason: &str,
    ) -> Result<RevokedKey, SpineError> {
        let reason = reason.to_owned();
        self.execute(principal, RevokeApiKey { key_id, reason })
            .await
    }

    /// Executes [`RotateApiKey`].
    pub async fn rotate_api_key(
        &self,
        principal: &Principal,
        key_id: ApiKeyId,
        grace: TimeDelta,
    ) -> Result<RotatedKey, SpineError> {
        self.execute(principal, RotateApiKey { key_id, grace })
            .await
    }
}
