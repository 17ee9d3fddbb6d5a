//! User accounts: creation (normalised, unique email) and sign-in, and each user's profile
//! (`profile`: display name, time zone, preferences).

pub mod erasure;
mod profile;

pub use profile::*;

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::get_user_write_driver;
use account_drivers::types::{
    DisplayName, Email, EmailError, TenantId, TextError, UserId, UserStatus,
};
use account_drivers::users::NewUser;
use chrono::{DateTime, Utc};

pub use account_drivers::users::UserAccountSnapshot as UserAccount;

/// Why a user operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// Not an email address.
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    /// The display name does not fit.
    #[error(transparent)]
    InvalidName(#[from] TextError),
    /// Another account has the address.
    #[error("an account with this email already exists; sign in with it or use another address")]
    EmailTaken,
    /// No such user.
    #[error("user not found; check the user id")]
    NotFound,
    /// The user was erased already (an erasure happens once).
    #[error("this user was erased already; nothing of theirs is left to erase")]
    AlreadyErased,
    /// The user is the last owner of these tenants: erasing them would leave each without one.
    #[error(
        "the user is the last owner of {}; transfer ownership to another member or delete the project first",
        tenant_list(tenants)
    )]
    LastOwnerOf {
        /// Every tenant they are the only owner of.
        tenants: Vec<TenantId>,
    },
    /// The pseudonyms' key could not be derived from the pepper.
    #[error("the pseudonym key could not be derived")]
    PseudonymKey,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn tenant_list(tenants: &[TenantId]) -> String {
    let ids: Vec<String> = tenants.iter().map(ToString::to_string).collect();
    format!("project {}", ids.join(", "))
}

impl From<DriverError> for UserError {
    fn from(error: DriverError) -> Self {
        if error.conflicting_constraint() == Some("uq_users_email") {
            return Self::EmailTaken;
        }
        Self::Storage(error.into())
    }
}

impl ErrorCode for UserError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidEmail(_) => "invalid_email",
            Self::InvalidName(_) => "invalid_name",
            Self::EmailTaken => "email_taken",
            Self::NotFound => "user_not_found",
            Self::AlreadyErased => "user_already_erased",
            Self::LastOwnerOf { .. } => "last_owner",
            Self::PseudonymKey => "internal_error",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InvalidEmail(_) | Self::InvalidName(_) => 422,
            Self::EmailTaken | Self::AlreadyErased | Self::LastOwnerOf { .. } => 409,
            Self::NotFound => 404,
            Self::PseudonymKey => 500,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidName(_) => Some("name"),
            _ => None,
        }
    }
}

/// Creates an active user account: the email is parsed and normalised, the display name
/// bounded; an address already taken is [`UserError::EmailTaken`] (the unique index decides).
pub async fn create_user(
    db: Db<'_>,
    email: &str,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<UserAccount, UserError> {
    let email = Email::parse(email)?;
    let name = name.map(DisplayName::parse).transpose()?;
    Ok(get_user_write_driver(db)
        .create_user(
            NewUser {
                id: UserId::new(),
                email: email.into(),
                external_user_id: None,
                name: name.map(String::from),
                avatar_url: None,
                status: UserStatus::Active,
            },
            now,
        )
        .await?)
}

/// Records a sign-in.
pub async fn record_login(
    db: Db<'_>,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<UserAccount, UserError> {
    get_user_write_driver(db)
        .update_user_login(user, now)
        .await?
        .ok_or(UserError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            UserError::InvalidEmail(EmailError::MissingAt),
            UserError::InvalidName(TextError::TooLong {
                field: "display name",
                max: 255,
            }),
            UserError::EmailTaken,
            UserError::NotFound,
            UserError::AlreadyErased,
            UserError::LastOwnerOf {
                tenants: vec![TenantId::new()],
            },
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                UserError::InvalidEmail(_)
                | UserError::InvalidName(_)
                | UserError::EmailTaken
                | UserError::NotFound
                | UserError::AlreadyErased
                | UserError::LastOwnerOf { .. } => {}
                UserError::Storage(_) | UserError::PseudonymKey => {
                    unreachable!("not caller-caused")
                }
            }
        }
        crate::error::assert_caller_errors(&errors);
        assert_eq!(
            UserError::InvalidEmail(EmailError::MissingAt).to_string(),
            "email must contain an `@`"
        );
        assert_eq!(
            UserError::from(DriverError::NotFound { entity: "row" }).http_status(),
            500
        );
    }
}
