//! SDK attestations: the evidence onboarding's activation needs, recorded on handshake.

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::get_sdk_attestation_driver;
use account_drivers::onboarding::{AttestationSnapshot, NewAttestation};
use account_drivers::types::TenantId;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Why an attestation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// A field is empty, too long, or has characters outside the allowed set.
    #[error("{0} must be 1 to {1} characters of letters, digits and . _ + -")]
    InvalidField(&'static str, usize),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for AttestationError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for AttestationError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidField(..) => "invalid_attestation",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InvalidField(..) => 422,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidField(field, _) => Some(field),
            _ => None,
        }
    }
}

fn check(field: &'static str, value: &str, max: usize) -> Result<(), AttestationError> {
    let ok = !value.is_empty()
        && value.chars().count() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AttestationError::InvalidField(field, max))
    }
}

/// The first 32 hex characters of SHA-256 over `tenant:version:language:client`.
pub fn attestation_hash(
    tenant: TenantId,
    version: &str,
    language: &str,
    client_id: Option<&str>,
) -> String {
    let digest = Sha256::digest(
        format!(
            "{tenant}:{version}:{language}:{}",
            client_id.unwrap_or_default()
        )
        .as_bytes(),
    );
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Records an SDK handshake for the tenant (a repeat refreshes it).
pub async fn attest(
    db: Db<'_>,
    tenant: TenantId,
    sdk_version: &str,
    sdk_language: &str,
    client_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AttestationSnapshot, AttestationError> {
    check("sdk_version", sdk_version, 100)?;
    check("sdk_language", sdk_language, 50)?;
    if let Some(client) = client_id {
        check("client_id", client, 200)?;
    }
    let hash = attestation_hash(tenant, sdk_version, sdk_language, client_id);
    Ok(get_sdk_attestation_driver(db)
        .write_attestation(
            NewAttestation {
                tenant_id: tenant,
                sdk_version,
                sdk_language,
                client_id,
                attestation_hash: &hash,
            },
            now,
        )
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_32_hex_and_depend_on_every_part() {
        let tenant = TenantId::new();
        let hash = attestation_hash(tenant, "1.0", "python", None);
        assert_eq!(hash.len(), 32);
        assert_ne!(hash, attestation_hash(tenant, "1.0", "python", Some("c")));
        assert!(check("sdk_version", "1.0.0-rc.1", 100).is_ok());
        assert!(check("sdk_version", "1 0", 100).is_err());
    }
}
