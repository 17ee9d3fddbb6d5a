//! The facade's error: its own refusals plus every engine error it delegates to, each keeping
//! its stable code and HTTP status, and the serialisable [`AccountsErrorResult`] built from any
//! of them.

use crate::billing::BillingError;
use crate::invitations::InvitationError;
use crate::memberships::MembershipError;
use crate::support::TicketError;
use crate::users::ProfileError;
use crate::{DriverError, ErrorCode, StorageError};
use serde::Serialize;

/// Why an accounts facade operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The project (tenant) does not exist or the caller is not one of its members; the two
    /// are deliberately indistinguishable.
    #[error("project not found")]
    ProjectNotFound,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// A membership rule refused it.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// A profile rule refused it.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// An invitation rule refused it.
    #[error(transparent)]
    Invitation(#[from] InvitationError),
    /// A billing rule refused it.
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// A support-ticket rule refused it.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for AccountsError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for AccountsError {
    fn code(&self) -> &'static str {
        match self {
            Self::ProjectNotFound => "project_not_found",
            Self::InvalidPage => "invalid_page",
            Self::Membership(e) => e.code(),
            Self::Profile(e) => e.code(),
            Self::Invitation(e) => e.code(),
            Self::Billing(e) => e.code(),
            Self::Ticket(e) => e.code(),
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::ProjectNotFound => 404,
            Self::InvalidPage => 422,
            Self::Membership(e) => e.http_status(),
            Self::Profile(e) => e.http_status(),
            Self::Invitation(e) => e.http_status(),
            Self::Billing(e) => e.http_status(),
            Self::Ticket(e) => e.http_status(),
            Self::Storage(e) => e.http_status(),
        }
    }
}

/// An error as the accounts API answers it: the stable code, the message, the HTTP status.
///
/// Built from any engine error, so the body always agrees with the status line:
///
/// ```rust
/// use account_engines::accounts::{AccountsError, AccountsErrorResult};
/// use account_engines::memberships::MembershipError;
///
/// let result = AccountsErrorResult::from_error(&AccountsError::from(MembershipError::LastOwner));
/// assert_eq!(result.error, "last_owner");
/// assert_eq!(result.status_code, 409);
/// assert!(result.message.starts_with("the tenant's last owner"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountsErrorResult {
    /// The stable machine code clients branch on, e.g. `not_a_member`.
    pub error: &'static str,
    /// The human message (never a secret, never an inner error's debug text).
    pub message: String,
    /// The HTTP status to answer with.
    pub status_code: u16,
}

impl AccountsErrorResult {
    /// The result for any engine error.
    pub fn from_error<E: ErrorCode + std::fmt::Display + ?Sized>(error: &E) -> Self {
        Self {
            error: error.code(),
            message: error.to_string(),
            status_code: error.http_status(),
        }
    }
}

impl From<&AccountsError> for AccountsErrorResult {
    fn from(error: &AccountsError) -> Self {
        Self::from_error(error)
    }
}

impl From<AccountsError> for AccountsErrorResult {
    fn from(error: AccountsError) -> Self {
        Self::from_error(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_keeps_its_engine_code_and_status() {
        let cases: Vec<(AccountsError, &str, u16)> = vec![
            (AccountsError::ProjectNotFound, "project_not_found", 404),
            (AccountsError::InvalidPage, "invalid_page", 422),
            (MembershipError::NotAMember.into(), "not_a_member", 404),
            (ProfileError::NotFound.into(), "profile_not_found", 404),
            (InvitationError::Expired.into(), "invitation_expired", 410),
            (BillingError::TenantNotFound.into(), "tenant_not_found", 404),
            (TicketError::InvalidPage.into(), "invalid_page", 422),
        ];
        for (error, code, status) in cases {
            let result = AccountsErrorResult::from(&error);
            assert_eq!(
                (result.error, result.status_code),
                (code, status),
                "{error}"
            );
            assert_eq!(result.message, error.to_string());
        }
    }

    #[test]
    fn it_serialises_with_the_seed_field_names() {
        let json = serde_json::to_value(AccountsErrorResult::from(AccountsError::ProjectNotFound))
            .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": "project_not_found", "message": "project not found", "status_code": 404})
        );
    }
}
