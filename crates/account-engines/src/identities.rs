//! Identities: which user an identity provider's subject is (issuer + subject → user), and
//! whether a tenant has an owner who can sign in through one.
//!
//! Links are global (a person spans tenants). The sign-in flow that creates them on
//! invitation acceptance and resolves them per request builds on these functions; today the
//! key-management lock-out guard ([`crate::api_keys::ensure_key_management_survives`]) asks
//! [`tenant_has_owner_who_can_sign_in`].

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::identities;
pub use account_drivers::identities::IdentityLinkSnapshot;
use account_drivers::types::{TenantId, UserId};
use chrono::{DateTime, Utc};

/// Longest issuer URL or subject accepted, in characters (OpenID Connect sets no bound; this
/// keeps a hostile token from filling the table).
pub const MAX_IDENTITY_CHARS: usize = 1024;

/// Why an identity operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The issuer or subject is empty, too long or holds control characters.
    #[error("{field} must be 1 to {MAX_IDENTITY_CHARS} characters without control characters")]
    InvalidIdentity {
        /// `issuer` or `subject`.
        field: &'static str,
    },
    /// This issuer and subject are linked to a user already.
    #[error("this identity is already linked to a user")]
    AlreadyLinked,
    /// The user does not exist.
    #[error("no such user to link the identity to")]
    UserNotFound,
    /// The identity is linked to no user: the person has not accepted an invitation yet.
    #[error("this identity is linked to no user yet; accept an invitation first")]
    NotLinked,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for IdentityError {
    fn from(error: DriverError) -> Self {
        match error {
            DriverError::Conflict { ref constraint, .. }
                if constraint == "uq_identity_links_issuer_subject" =>
            {
                Self::AlreadyLinked
            }
            DriverError::ForeignKey { .. } => Self::UserNotFound,
            other => Self::Storage(other.into()),
        }
    }
}

impl ErrorCode for IdentityError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidIdentity { .. } => "invalid_identity",
            Self::AlreadyLinked => "identity_already_linked",
            Self::UserNotFound => "user_not_found",
            Self::NotLinked => "identity_not_linked",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InvalidIdentity { .. } => 422,
            Self::AlreadyLinked => 409,
            Self::UserNotFound | Self::NotLinked => 404,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidIdentity { field } => Some(field),
            _ => None,
        }
    }
}

fn check(field: &'static str, text: &str) -> Result<(), IdentityError> {
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_IDENTITY_CHARS || text.chars().any(char::is_control) {
        return Err(IdentityError::InvalidIdentity { field });
    }
    Ok(())
}

/// Links `issuer` + `subject` to `user` ([`IdentityError::AlreadyLinked`] when the pair is
/// linked already, to this user or another).
pub async fn link_identity(
    db: Db<'_>,
    issuer: &str,
    subject: &str,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<IdentityLinkSnapshot, IdentityError> {
    check("issuer", issuer)?;
    check("subject", subject)?;
    Ok(identities::insert_identity_link(db, issuer, subject, user, now).await?)
}

/// The user `issuer` + `subject` is linked to, if any.
pub async fn find_user_by_identity(
    db: Db<'_>,
    issuer: &str,
    subject: &str,
) -> Result<Option<UserId>, IdentityError> {
    Ok(identities::fetch_user_by_identity(db, issuer, subject).await?)
}

/// A user's identity links, oldest first.
pub async fn list_user_identities(
    db: Db<'_>,
    user: UserId,
) -> Result<Vec<IdentityLinkSnapshot>, IdentityError> {
    Ok(identities::fetch_user_identities(db, user).await?)
}

/// Whether `tenant` has an owner who can sign in: an Owner membership whose user is active and
/// has an identity link. One statement.
pub async fn tenant_has_owner_who_can_sign_in(
    db: Db<'_>,
    tenant: TenantId,
) -> Result<bool, StorageError> {
    Ok(identities::tenant_has_owner_with_identity(db, tenant).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_bounded_and_errors_are_typed() {
        assert!(check("issuer", "https://idp.example.com").is_ok());
        for bad in ["", "a\nb", "nul\0"] {
            assert!(matches!(
                check("subject", bad),
                Err(IdentityError::InvalidIdentity { field: "subject" })
            ));
        }
        assert!(check("subject", &"é".repeat(MAX_IDENTITY_CHARS)).is_ok());
        assert!(check("subject", &"a".repeat(MAX_IDENTITY_CHARS + 1)).is_err());
        crate::error::assert_caller_errors(&[
            IdentityError::InvalidIdentity { field: "issuer" },
            IdentityError::AlreadyLinked,
            IdentityError::UserNotFound,
        ]);
    }
}
