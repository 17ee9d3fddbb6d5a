//! API-key use cases: verify (which builds a principal), issue, list, revoke, rotate. The
//! engine writes the audit rows of key changes inside the same transaction, with the actor
//! and request metadata the spine hands it ([`KeyAudit`]).

use crate::operations::Operation;
use crate::principal::{Actor, Principal, RequestMeta};
use crate::use_case::Subject;
use crate::{DomainEvent, Spine, SpineError};
use account_engines::api_keys::{
    self, IssueKeyRequest, IssuedKey, IssuingKey, KeyActor, KeyAudit, RevokedKey, RotatedKey,
};
use account_engines::types::ApiKeyId;
use account_engines::{OffsetPage, Page};
use chrono::TimeDelta;
use std::sync::Arc;

pub use account_engines::api_keys::{APIKeySnapshot, ApiKeyError, ApiKeyPepper, PlaintextApiKey};

/// What a new key may do; tenant and issuer come from the principal.
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

fn key_actor(principal: &Principal) -> KeyActor {
    match &principal.actor {
        Actor::User { user_id, role } => KeyActor {
            user_id: Some(*user_id),
            role: *role,
            issuing_key: None,
            audit: key_audit(None, &principal.request),
        },
        // A key holding `keys:manage` acts with the admin role's ceiling, and issues keys no
        // wider than itself (permissions, workers, limits).
        Actor::ApiKey {
            key_id,
            permissions,
            allowed_workers,
            max_concurrent_runs,
            rate_limit_rpm,
            ..
        } => KeyActor {
            user_id: None,
            role: account_engines::types::MembershipRole::Admin,
            issuing_key: Some(IssuingKey {
                permissions: permissions.clone(),
                allowed_workers: allowed_workers.clone(),
                max_concurrent_runs: *max_concurrent_runs,
                rate_limit_rpm: *rate_limit_rpm,
            }),
            audit: key_audit(Some(*key_id), &principal.request),
        },
    }
}

impl Spine {
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
        let subject = Subject::KeyPresenter(&request);
        let verified = self
            .observe(operation, subject, async {
                let lookup = api_keys::prepare_verification(self.pepper()?, presented)?;
                let found = match self.verify_cache.get(lookup.digest()) {
                    Some(found) => found,
                    None => {
                        let epoch = self.verify_cache.epoch();
                        let found = read!(self, |db| {
                            Ok(api_keys::find_key_for_verification(db, &lookup).await?)
                        })?;
                        let found = Arc::new(found);
                        self.verify_cache
                            .insert(lookup.digest(), Arc::clone(&found), epoch);
                        found
                    }
                };
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

    /// Issues a key for the principal's tenant; the plaintext is in the result, once.
    pub async fn issue_api_key(
        &self,
        principal: &Principal,
        request: IssueKey,
    ) -> Result<IssuedKey, SpineError> {
        let operation = Operation::ApiKeysIssue;
        self.observe(operation, Subject::Principal(principal), async {
            let pepper = self.pepper()?;
            let now = self.clock.now();
            let issued = write_use_case!(self, principal, operation, |db| {
                let request = IssueKeyRequest {
                    tenant_id: principal.tenant_id,
                    issuer: key_actor(principal),
                    name: request.name.clone(),
                    permissions: request.permissions.clone(),
                    allowed_workers: request.allowed_workers.clone(),
                    rate_limit_rpm: request.rate_limit_rpm,
                    max_concurrent_runs: request.max_concurrent_runs,
                    expires_at: request.expires_at,
                };
                Ok(api_keys::issue_api_key(db, pepper, request, now).await?)
            })?;
            self.events.publish(&DomainEvent::ApiKeyIssued {
                tenant_id: principal.tenant_id,
                key_id: issued.key.id,
            });
            Ok(issued)
        })
        .await
    }

    /// The tenant's keys.
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        include_revoked: bool,
        page: OffsetPage,
    ) -> Result<Page<APIKeySnapshot>, SpineError> {
        let operation = Operation::ApiKeysList;
        self.observe(operation, Subject::Principal(principal), async {
            read_use_case!(self, principal, operation, |db| {
                Ok(api_keys::list_api_keys(db, principal.tenant_id, include_revoked, page).await?)
            })
        })
        .await
    }

    /// Revokes a key of the tenant (idempotent).
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        key_id: ApiKeyId,
        reason: &str,
    ) -> Result<RevokedKey, SpineError> {
        let operation = Operation::ApiKeysRevoke;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            let revoked = write_use_case!(self, principal, operation, |db| {
                Ok(api_keys::revoke_api_key(
                    db,
                    principal.tenant_id,
                    key_id,
                    key_actor(principal),
                    reason,
                    now,
                )
                .await?)
            })?;
            self.verify_cache
                .invalidate_key(principal.tenant_id, key_id);
            if !revoked.already_revoked {
                self.events.publish(&DomainEvent::ApiKeyRevoked {
                    tenant_id: principal.tenant_id,
                    key_id,
                });
            }
            Ok(revoked)
        })
        .await
    }

    /// Rotates a key: a new key now, the old one working until the grace period ends.
    /// Publishes [`DomainEvent::ApiKeyRotated`] (not `ApiKeyIssued`) after commit.
    pub async fn rotate_api_key(
        &self,
        principal: &Principal,
        key_id: ApiKeyId,
        grace: TimeDelta,
    ) -> Result<RotatedKey, SpineError> {
        let operation = Operation::ApiKeysRotate;
        self.observe(operation, Subject::Principal(principal), async {
            let pepper = self.pepper()?;
            let now = self.clock.now();
            let rotated = write_use_case!(self, principal, operation, |db| {
                Ok(api_keys::rotate_api_key(
                    db,
                    pepper,
                    principal.tenant_id,
                    key_id,
                    key_actor(principal),
                    grace,
                    now,
                )
                .await?)
            })?;
            // The old key's row now expires at the end of the grace period.
            self.verify_cache
                .invalidate_key(principal.tenant_id, rotated.previous.id);
            self.events.publish(&DomainEvent::ApiKeyRotated {
                tenant_id: principal.tenant_id,
                previous_key_id: rotated.previous.id,
                new_key_id: rotated.issued.key.id,
                previous_expires_at: rotated.previous.expires_at,
            });
            Ok(rotated)
        })
        .await
    }
}
