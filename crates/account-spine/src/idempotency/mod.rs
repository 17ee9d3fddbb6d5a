//! Idempotency keys in a host's transaction: a retried write answers with the first attempt's
//! response instead of writing again (the API's `Idempotency-Key` header).
//!
//! The key is claimed in the same [`HostTransaction`] as the write it guards
//! ([`HostTransaction::claim_idempotency_key`]), the write runs there
//! ([`HostTransaction::execute`]), and its response is stored there before the commit
//! ([`HostTransaction::store_idempotent_response`]): the stored response exists exactly when
//! the write committed. Only successes are stored: a refused or failed write stores nothing,
//! and [`HostTransaction::commit`] releases its claim, so a retry runs again.
//!
//! Concurrent retries of one key: on PostgreSQL a second claim waits for the first's
//! transaction (at most [`IdempotencySettings::in_flight_wait`]); once it commits the second
//! replays its response, if it rolled back the second claims the key itself, and if it is
//! still running the second is refused as in flight (409). SQLite runs one write transaction
//! at a time, so a retry waits for the connection and then replays.
//!
//! Keys are kept [`IdempotencySettings::keep_for`] (24 h by default) and may be claimed anew
//! after; [`Spine::purge_expired_idempotency_keys`] deletes them (the lease reaper runs it
//! every pass).

use crate::database::Spine;
use crate::error::SpineError;
use crate::host::HostTransaction;
use crate::principal::{Actor, OperatorPrincipal, Principal};
use account_engines::DriverError;
use account_engines::idempotency::{
    self, ClaimTerms, IdempotencyError, IdempotencyStore, KeyScope,
};
use account_engines::types::{IdempotencyKey, TenantId};
use account_engines::{Db, StorageError};
use chrono::TimeDelta;

mod keyed;
pub(crate) mod settings;
pub use keyed::{AsOperator, AsTenant, KeyedAnswer, KeyedWrite};
pub use settings::IdempotencySettings;

pub use account_engines::idempotency::{Claim, StoredResponse};

/// Keys one purge statement deletes at most.
const PURGE_BATCH: u64 = 1_000;
/// Purge statements one pass runs at most (a backlog is finished by the next passes).
const PURGE_BATCHES_PER_PASS: u64 = 100;

/// A request sent with an idempotency key: what its key remembers it by (a keyed hash of the
/// method, the path with its query, and the body).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct IdempotentRequest<'a> {
    /// The client's key.
    pub key: &'a IdempotencyKey,
    /// The HTTP method.
    pub method: &'a str,
    /// The path, with its query if any.
    pub path: &'a str,
    /// The body's bytes as received.
    pub body: &'a [u8],
}

impl<'a> IdempotentRequest<'a> {
    /// The request of `method` on `path` with `body`, under `key`.
    pub fn new(key: &'a IdempotencyKey, method: &'a str, path: &'a str, body: &'a [u8]) -> Self {
        Self {
            key,
            method,
            path,
            body,
        }
    }
}

impl Spine {
    /// The same spine keeping idempotency keys by `settings`.
    pub fn with_idempotency_settings(mut self, settings: IdempotencySettings) -> Self {
        self.idempotency_settings = settings;
        self
    }

    /// How this spine keeps idempotency keys.
    pub fn idempotency_settings(&self) -> IdempotencySettings {
        self.idempotency_settings
    }

    fn idempotency_store(&self) -> Result<&IdempotencyStore, SpineError> {
        self.idempotency
            .as_deref()
            .ok_or(SpineError::NotConfigured("API-key pepper"))
    }

    /// Deletes the idempotency keys of every tenant whose keeping time is over, in batches
    /// of 1,000 (one statement each, each committed at once), at most 100 batches a call;
    /// returns how many. [`Spine::spawn_reaper`]'s passes call it.
    pub async fn purge_expired_idempotency_keys(&self) -> Result<u64, SpineError> {
        let db = self.counted(Db::for_pool(self.write_connection()));
        let now = self.clock.now();
        let mut purged = 0;
        for _ in 0..PURGE_BATCHES_PER_PASS {
            let deleted = idempotency::purge_expired(db, now, PURGE_BATCH).await?;
            purged += deleted;
            if deleted < PURGE_BATCH {
                break;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "purged expired idempotency keys");
        }
        Ok(purged)
    }
}

/// The credential a tenant principal's keys belong to.
fn credential_of(principal: &Principal) -> String {
    match &principal.actor {
        Actor::ApiKey { key_id, .. } => format!("key:{key_id}"),
        Actor::User { user_id, .. } => format!("user:{user_id}"),
    }
}

impl HostTransaction<'_> {
    /// Claims `request`'s key for `principal` (its tenant and credential: the API key, or
    /// the member) in this transaction, before the write it guards:
    ///
    /// - [`Claim::Fresh`]: run the write in this transaction, then
    ///   [`HostTransaction::store_idempotent_response`] its response before committing;
    /// - [`Claim::Replay`]: the same request committed under this key; answer with its
    ///   response and write nothing (roll back);
    /// - `idempotency_key_reused` (422): the key was first sent with another request;
    /// - `idempotency_key_in_flight` (409): the first request is still running.
    ///
    /// A member who is not (or no longer) one gets `tenant_not_found`, as in every use case.
    pub async fn claim_idempotency_key(
        &mut self,
        principal: &Principal,
        request: IdempotentRequest<'_>,
    ) -> Result<Claim, SpineError> {
        if let Actor::User { user_id, .. } = &principal.actor {
            self.spine().member_principal(principal, *user_id).await?;
        }
        let scope = KeyScope {
            tenant_id: principal.tenant_id,
            credential: credential_of(principal),
            key: request.key.as_str().to_owned(),
        };
        self.claim(scope, request).await
    }

    /// [`HostTransaction::claim_idempotency_key`] for an operator acting on `tenant` (its
    /// credential is the operator's id); `tenant_not_found` when there is no such tenant.
    pub async fn claim_idempotency_key_as_operator(
        &mut self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        request: IdempotentRequest<'_>,
    ) -> Result<Claim, SpineError> {
        let scope = KeyScope {
            tenant_id: tenant,
            credential: format!("operator:{}", operator.operator_id),
            key: request.key.as_str().to_owned(),
        };
        self.claim(scope, request).await
    }

    async fn claim(
        &mut self,
        scope: KeyScope,
        request: IdempotentRequest<'_>,
    ) -> Result<Claim, SpineError> {
        let spine = self.spine();
        let store = spine.idempotency_store()?;
        let settings = spine.idempotency_settings;
        let terms = ClaimTerms {
            now: spine.clock.now(),
            keep_for: TimeDelta::from_std(settings.keep_for).unwrap_or(TimeDelta::MAX),
            wait: settings.in_flight_wait,
        };
        let hash = store.request_hash(request.method, request.path, request.body);
        let claim =
            store
                .claim(self.db(), &scope, &hash, terms)
                .await
                .map_err(|error| match error {
                    // The operator's tenant does not exist: the key's row has nothing to belong to.
                    IdempotencyError::Storage(StorageError(DriverError::ForeignKey { .. })) => {
                        SpineError::TenantNotFound
                    }
                    other => SpineError::from(other),
                })?;
        if claim == Claim::Fresh {
            self.pending_claims.push(scope);
        }
        Ok(claim)
    }

    /// Stores `response` (a success: the write committed with it) for the latest claim of
    /// this transaction, sealed, in this transaction: a retry with the same key and request
    /// replays it once this transaction commits. `not_configured` without a fresh claim.
    pub async fn store_idempotent_response(
        &mut self,
        response: &StoredResponse,
    ) -> Result<(), SpineError> {
        let store = self.spine().idempotency_store()?;
        let Some(scope) = self.pending_claims.pop() else {
            return Err(SpineError::NotConfigured("idempotency key claim"));
        };
        store.store(self.db(), &scope, response).await?;
        Ok(())
    }

    /// Releases every claim of this transaction whose response was not stored (its write
    /// failed), before the commit: a retry runs again rather than waiting for a response
    /// that will never come.
    pub(crate) async fn release_unanswered_claims(&mut self) -> Result<(), SpineError> {
        for scope in std::mem::take(&mut self.pending_claims) {
            idempotency::release(self.db(), &scope).await?;
        }
        Ok(())
    }

    /// This transaction's handle, counted and fault-injected like a use case's.
    fn db(&self) -> Db<'_> {
        self.spine().transaction_db(self.connection())
    }
}
