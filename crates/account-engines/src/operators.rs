//! Platform operator keys: created by the platform's own tooling (never by a tenant), stored
//! only as the keyed digest tenant keys use ([`secret::digest`]), verified into an operator
//! identity.
//!
//! # Shape
//!
//! ```text
//! acc_op_<43 chars: base64url, no padding, of 32 random bytes>_<8 lowercase hex: CRC32>
//! ```
//!
//! A distinct prefix, so an operator key can never parse as a tenant key (`acc_live_`) and a
//! tenant key never as an operator key: the two are verified against different tables.

use crate::Db;
use crate::api_keys::secret::{self, ApiKeyPepper};
use crate::api_keys::{ApiKeyError, parse_name};
use account_drivers::operators as driver;
use account_drivers::types::OperatorKeyId;
use account_drivers::types::api_key_format::{OPERATOR_KEYS, RANDOM_BYTES};
use chrono::{DateTime, Utc};

pub use account_drivers::operators::OperatorKeySnapshot;

/// What every operator key starts with.
pub const OPERATOR_KEY_PREFIX: &str = OPERATOR_KEYS.prefix;
/// Length of every operator key.
pub const OPERATOR_KEY_LEN: usize = OPERATOR_KEYS.key_len();
/// Characters stored and shown to identify a key (`acc_op_` plus 9 random ones).
pub const OPERATOR_KEY_PREFIX_LEN: usize = 16;

/// A new operator key, shown once; `Debug` is redacted and there is no `Display`.
pub struct PlaintextOperatorKey(String);

impl PlaintextOperatorKey {
    fn generate() -> Result<Self, ApiKeyError> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random).map_err(|_| ApiKeyError::RandomnessUnavailable)?;
        Ok(Self(OPERATOR_KEYS.format(&random)))
    }

    /// The secret itself, for the one place that hands it to its holder.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PlaintextOperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaintextOperatorKey(<redacted>)")
    }
}

/// A created key: the stored row and the plaintext (once).
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedOperatorKey {
    /// The stored row.
    pub key: OperatorKeySnapshot,
    /// The secret.
    pub plaintext: PlaintextOperatorKey,
}

/// Whether `presented` looks like an operator key (prefix only; hosts use it to route the
/// verification).
pub fn is_operator_key(presented: &str) -> bool {
    presented.starts_with(OPERATOR_KEY_PREFIX)
}

/// Checks prefix, length, alphabet, canonical encoding and checksum.
fn parse(presented: &str) -> Result<&str, ApiKeyError> {
    OPERATOR_KEYS
        .parse(presented)
        .map_err(|_| ApiKeyError::Malformed)
}

/// Creates an operator key named `name`.
pub async fn create_operator_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    name: &str,
    now: DateTime<Utc>,
) -> Result<CreatedOperatorKey, ApiKeyError> {
    let name = parse_name(name)?;
    let plaintext = PlaintextOperatorKey::generate()?;
    let digest = secret::digest(pepper, plaintext.expose());
    let prefix = &plaintext.expose()[..OPERATOR_KEY_PREFIX_LEN];
    let key = driver::insert_operator_key(db, name.as_str(), prefix, &digest, now).await?;
    Ok(CreatedOperatorKey { key, plaintext })
}

/// Verifies a presented operator key: well formed, stored, not revoked.
pub async fn verify_operator_key(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    presented: &str,
) -> Result<OperatorKeySnapshot, ApiKeyError> {
    let presented = parse(presented)?;
    let digest = secret::digest(pepper, presented);
    let key = driver::fetch_operator_key_by_digest(db, &digest)
        .await?
        .ok_or(ApiKeyError::InvalidKey)?;
    if !secret::digests_match(&key.key_digest, &digest) {
        return Err(ApiKeyError::InvalidKey);
    }
    if key.revoked_at.is_some() {
        return Err(ApiKeyError::Revoked);
    }
    Ok(key)
}

/// Every operator key (digests included; hosts show prefix, name and dates only).
pub async fn list_operator_keys(db: Db<'_>) -> Result<Vec<OperatorKeySnapshot>, ApiKeyError> {
    Ok(driver::fetch_operator_keys(db).await?)
}

/// Revokes an operator key.
pub async fn revoke_operator_key(
    db: Db<'_>,
    id: OperatorKeyId,
    now: DateTime<Utc>,
) -> Result<(), ApiKeyError> {
    if driver::revoke_operator_key(db, id, now).await? {
        Ok(())
    } else {
        Err(ApiKeyError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_tenant_keys_do_not() {
        let key = PlaintextOperatorKey::generate().unwrap();
        assert_eq!(key.expose().len(), OPERATOR_KEY_LEN);
        assert!(parse(key.expose()).is_ok());
        assert!(is_operator_key(key.expose()));
        assert_eq!(format!("{key:?}"), "PlaintextOperatorKey(<redacted>)");
        let tenant = crate::api_keys::PlaintextApiKey::generate().unwrap();
        assert!(parse(tenant.expose()).is_err());
        assert!(crate::api_keys::parse_presented_key(key.expose()).is_err());
        let mut bad = key.expose().to_owned().into_bytes();
        bad[10] = if bad[10] == b'x' { b'y' } else { b'x' };
        assert!(parse(&String::from_utf8(bad).unwrap()).is_err());
    }
}
