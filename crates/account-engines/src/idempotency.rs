//! Idempotency keys: a client's `Idempotency-Key` makes a retried write answer with the first
//! attempt's response instead of writing again.
//!
//! A key belongs to a tenant and a credential ([`KeyScope`]). It is claimed in the
//! transaction of the write it guards ([`IdempotencyStore::claim`]) and that write's response
//! is stored in the same transaction ([`IdempotencyStore::store`]), so a key is answered
//! exactly when its write committed. A write that fails stores nothing: its claim is
//! released ([`release`]) or rolled back with it, and a retry runs anew.
//!
//! Nothing secret is stored in the clear: the request's hash is keyed (HMAC-SHA256; a body
//! may carry a presented API key) and the response is sealed ([`crate::sealing`]; it may
//! carry a key just issued or an invitation token), bound to its row.

use crate::api_keys::ApiKeyPepper;
use crate::error::{ErrorCode, StorageError};
use crate::sealing::{SealedBytes, Sealer, SealingError};
use account_drivers::idempotency::{self as driver, ClaimAttempt, NewClaim};
use account_drivers::{Db, DriverError};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use subtle::ConstantTimeEq;

pub use account_drivers::idempotency::KeyScope;

/// The sealing purpose of stored responses (the HKDF info of their key).
pub const RESPONSES_PURPOSE: &str = "account/idempotency-responses/v1";
/// The purpose of the request hash's key.
pub const REQUESTS_PURPOSE: &str = "account/idempotency-requests/v1";

/// How often a claim tries again when the row it met vanished (its claim was released)
/// before it could be read.
const CLAIM_ATTEMPTS: usize = 3;

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyError {
    /// The key was first sent with another request (method, path or body).
    #[error(
        "this Idempotency-Key was first used with another request (method, path or body); \
         send a new key with a new request"
    )]
    KeyReused,
    /// The first request with the key is still being processed.
    #[error(
        "a request with this Idempotency-Key is still being processed; retry after it finished"
    )]
    InFlight,
    /// A response could not be sealed (no randomness) or a stored one does not open (the
    /// pepper changed since it was stored).
    #[error("the response stored for this Idempotency-Key could not be sealed or opened")]
    Sealing(#[source] SealingError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for IdempotencyError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for IdempotencyError {
    fn code(&self) -> &'static str {
        match self {
            Self::KeyReused => "idempotency_key_reused",
            Self::InFlight => "idempotency_key_in_flight",
            Self::Sealing(_) => "idempotency_sealing_failed",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::KeyReused => 422,
            Self::InFlight => 409,
            Self::Sealing(_) => 500,
            Self::Storage(e) => e.http_status(),
        }
    }
}

/// A response as stored and replayed: its status and body. Its `Debug` shows the body's
/// length only: the body may hold a one-time secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status (a 2xx: only successes are stored).
    pub status: u16,
    /// The body as first sent.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for StoredResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is the caller's, in its transaction: run the write, then store its response.
    Fresh,
    /// The key's first request committed: answer with its response; write nothing.
    Replay(StoredResponse),
}

/// A request's identity under a key: HMAC-SHA256 of its method, path and body.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHash(Vec<u8>);

impl std::fmt::Debug for RequestHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestHash(..)")
    }
}

/// How long a claim may wait and how long a key is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimTerms {
    /// The clock's now.
    pub now: DateTime<Utc>,
    /// How long the key is kept (it may be claimed anew after).
    pub keep_for: TimeDelta,
    /// How long to wait for a concurrent request's transaction holding the key.
    pub wait: Duration,
}

/// Hashes requests and seals responses under keys the pepper derives.
#[derive(Clone)]
pub struct IdempotencyStore {
    sealer: Sealer,
    hasher: Hmac<Sha256>,
}

impl std::fmt::Debug for IdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyStore(<redacted>)")
    }
}

impl IdempotencyStore {
    /// The store whose keys `pepper` derives ([`RESPONSES_PURPOSE`], [`REQUESTS_PURPOSE`]).
    pub fn derive(pepper: &ApiKeyPepper) -> Result<Self, SealingError> {
        let sealer = Sealer::derive(pepper, RESPONSES_PURPOSE)?;
        let key = pepper
            .derive_key(REQUESTS_PURPOSE)
            .map_err(|_| SealingError::KeyDerivation)?;
        let hasher = Hmac::<Sha256>::new_from_slice(key.as_ref())
            .map_err(|_| SealingError::KeyDerivation)?;
        Ok(Self { sealer, hasher })
    }

    /// The hash a key remembers its request by: method, path (with its query) and body,
    /// each framed by its length.
    pub fn request_hash(&self, method: &str, path: &str, body: &[u8]) -> RequestHash {
        let mut mac = self.hasher.clone();
        for part in [method.as_bytes(), path.as_bytes(), body] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        RequestHash(mac.finalize().into_bytes().to_vec())
    }

    /// Claims `scope`'s key for the request hashed to `request` in the caller's transaction
    /// (`db`): [`Claim::Fresh`] when nobody holds it (or its keeping time is over),
    /// [`Claim::Replay`] when the same request committed under it,
    /// [`IdempotencyError::KeyReused`] for another request, and
    /// [`IdempotencyError::InFlight`] when the first request's transaction did not finish
    /// within `terms.wait`. Two or three statements on SQLite, two more on PostgreSQL (the
    /// wait's bound is set and put back).
    pub async fn claim(
        &self,
        db: Db<'_>,
        scope: &KeyScope,
        request: &RequestHash,
        terms: ClaimTerms,
    ) -> Result<Claim, IdempotencyError> {
        let claim = NewClaim {
            scope: scope.clone(),
            request_hash: request.0.clone(),
            created_at: terms.now,
            expires_at: terms
                .now
                .checked_add_signed(terms.keep_for)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        let previous = driver::bound_lock_wait(db, terms.wait).await?;
        let found = self.take_or_read(db, &claim, terms.now).await?;
        // The bound is for the claim alone: the write waits on its locks as it always did.
        driver::restore_lock_wait(db, previous.as_deref()).await?;
        Ok(found)
    }

    async fn take_or_read(
        &self,
        db: Db<'_>,
        claim: &NewClaim,
        now: DateTime<Utc>,
    ) -> Result<Claim, IdempotencyError> {
        for _ in 0..CLAIM_ATTEMPTS {
            match driver::insert_claim(db, claim).await? {
                ClaimAttempt::Claimed => return Ok(Claim::Fresh),
                ClaimAttempt::StillInFlight => return Err(IdempotencyError::InFlight),
                ClaimAttempt::Held => {}
            }
            let Some(stored) = driver::fetch_key(db, &claim.scope).await? else {
                continue; // released by its claimant since the insert met it
            };
            if stored.expires_at <= now {
                match driver::take_over_expired(db, claim, now).await? {
                    ClaimAttempt::Claimed => return Ok(Claim::Fresh),
                    ClaimAttempt::StillInFlight => return Err(IdempotencyError::InFlight),
                    ClaimAttempt::Held => continue, // another claim took it over first
                }
            }
            let same_request: bool = stored.request_hash.ct_eq(&claim.request_hash).into();
            if !same_request {
                return Err(IdempotencyError::KeyReused);
            }
            let (Some(status), Some(sealed)) = (stored.status_code, stored.response) else {
                // Committed without a response: its claimant's host committed without
                // storing one. Nothing to replay, and the key is not free.
                return Err(IdempotencyError::InFlight);
            };
            let sealed = SealedBytes::from_stored(sealed);
            let body = in_context(&claim.scope, |context| self.sealer.open(&sealed, context))
                .map_err(IdempotencyError::Sealing)?;
            let status = u16::try_from(status)
                .map_err(|_| IdempotencyError::Sealing(SealingError::Malformed))?;
            return Ok(Claim::Replay(StoredResponse { status, body }));
        }
        Err(IdempotencyError::InFlight)
    }

    /// Stores the response of the write `scope`'s claim guarded, sealed, on the claim's row
    /// in the caller's transaction (one statement).
    pub async fn store(
        &self,
        db: Db<'_>,
        scope: &KeyScope,
        response: &StoredResponse,
    ) -> Result<(), IdempotencyError> {
        let sealed = in_context(scope, |context| self.sealer.seal(&response.body, context))
            .map_err(IdempotencyError::Sealing)?;
        let status = i16::try_from(response.status)
            .map_err(|_| IdempotencyError::Sealing(SealingError::Malformed))?;
        driver::store_response(db, scope, status, sealed.into_vec()).await?;
        Ok(())
    }
}

/// Releases `scope`'s claim when its write stored no response (one statement): a retry runs
/// anew. An answered key is never released.
pub async fn release(db: Db<'_>, scope: &KeyScope) -> Result<(), IdempotencyError> {
    driver::release_claim(db, scope).await?;
    Ok(())
}

/// Deletes at most `batch` keys of any tenant whose keeping time ended by `now` (one
/// statement); returns how many.
pub async fn purge_expired(
    db: Db<'_>,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, IdempotencyError> {
    Ok(driver::purge_expired_keys(db, now, batch).await?)
}

/// Calls `f` with the associated data a response is sealed with: its row's key, so a sealed
/// body copied to another row (another tenant's) does not open.
fn in_context<T>(scope: &KeyScope, f: impl FnOnce(&[&[u8]]) -> T) -> T {
    let tenant = *scope.tenant_id.as_uuid().as_bytes();
    f(&[&tenant, scope.credential.as_bytes(), scope.key.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(byte: u8) -> IdempotencyStore {
        IdempotencyStore::derive(&ApiKeyPepper::from_bytes(&[byte; 32]).unwrap()).unwrap()
    }

    #[test]
    fn the_request_hash_is_keyed_and_frames_its_parts() {
        let (a, b) = (store(1), store(2));
        let hash = a.request_hash("POST", "/v1/runs", b"{}");
        assert_eq!(hash, a.request_hash("POST", "/v1/runs", b"{}"));
        assert_eq!(hash.0.len(), 32);
        assert_ne!(
            hash,
            b.request_hash("POST", "/v1/runs", b"{}"),
            "another pepper"
        );
        assert_ne!(hash, a.request_hash("POST", "/v1/runs", b"{ }"));
        assert_ne!(hash, a.request_hash("POST", "/v1/runs/", b"{}"));
        assert_ne!(
            a.request_hash("POST", "/v1/runs", b"x"),
            a.request_hash("POST", "/v1/runsx", b""),
            "a byte moved from the path to the body is another request"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let response = StoredResponse {
            status: 201,
            body: b"acc_live_secret".to_vec(),
        };
        let shown = format!(
            "{response:?} {:?} {:?}",
            store(1),
            store(1).request_hash("", "", b"")
        );
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("201"), "{shown}");
    }

    #[test]
    fn refusals_are_typed_with_their_codes() {
        crate::error::assert_caller_errors(&[
            IdempotencyError::KeyReused,
            IdempotencyError::InFlight,
        ]);
        assert_eq!(IdempotencyError::KeyReused.http_status(), 422);
        assert_eq!(IdempotencyError::InFlight.http_status(), 409);
    }
}
