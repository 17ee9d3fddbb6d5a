//! Invitations: invite by normalised email with a role no higher than the inviter's, one
//! pending invitation per address, a token returned exactly once and stored only as a keyed
//! digest, expiry after 7 days (applied lazily), resend, revoke, and an accept that is safe
//! against a double accept (the conditional `pending → accepted` update decides, before any
//! user is created).
//!
//! Over 600 lines: the invitation rules with their unit tests (one exhaustive error table among
//! them).
//!
//! The inviter's role is read again from their membership in the caller's transaction: a
//! principal demoted since it was authenticated acts with its current role, not the stale one.

use crate::PageRequest;
use crate::api_keys::secret::{ApiKeyPepper, digest};
use crate::memberships::Acting;
use crate::roles::{capabilities, may_grant};
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
pub use account_drivers::invitations::InvitationSnapshot as Invitation;
use account_drivers::invitations::{InvitationSnapshot, NewInvitation};
use account_drivers::memberships::MembershipSnapshot;
use account_drivers::types::{
    DisplayName, Email, EmailError, InvitationId, InvitationStatus, MembershipRole, TenantId,
    TextError, UserId, UserStatus,
};
use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_user_write_driver};
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};

/// How long an invitation stays valid.
pub const INVITATION_TTL_DAYS: i64 = 7;
/// The constraint that allows one pending invitation per (tenant, lower(email)).
const PENDING_CONSTRAINT: &str = "uq_invitations_pending_email";
/// One account per email address.
const USER_EMAIL_CONSTRAINT: &str = "uq_users_email";
/// One account per identity-provider user id.
const USER_EXTERNAL_ID_CONSTRAINT: &str = "uq_users_external_user_id";
/// One membership per (tenant, user).
const MEMBERSHIP_CONSTRAINT: &str = "uq_tenant_memberships_tenant_id_user_id";
/// Longest identity-provider user id (the `users.external_user_id` column holds 100).
pub const MAX_EXTERNAL_USER_ID_CHARS: usize = 100;

/// An invitation token: shown once to the inviter's host (to deliver), never stored or logged.
pub struct InvitationToken(String);

impl InvitationToken {
    fn generate() -> Result<Self, InvitationError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| InvitationError::RandomUnavailable)?;
        Ok(Self(format!(
            "inv_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// The token text, for delivery to the invitee.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for InvitationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvitationToken(<redacted>)")
    }
}

/// Domain-separates invitation digests from API-key digests under the same pepper.
fn token_digest(pepper: &ApiKeyPepper, token: &str) -> String {
    digest(pepper, &format!("invitation:{token}"))
}

/// Why an invitation operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvitationError {
    /// The inviter is not (or no longer) a member of the tenant.
    #[error("you are not a member of this tenant; sign in to a tenant you belong to")]
    InviterNotAMember,
    /// The inviter's role manages no users.
    #[error("role {0} cannot invite users; an admin or owner can")]
    CannotManageUsers(MembershipRole),
    /// The role offered is above the inviter's.
    #[error("you cannot grant the {granted} role; it is above your own ({own})")]
    RoleTooHigh {
        /// Offered role.
        granted: MembershipRole,
        /// Inviter's role.
        own: MembershipRole,
    },
    /// The address is not an email.
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    /// The invitee's display name does not fit (1 to 255 characters, no control characters).
    #[error(transparent)]
    InvalidName(#[from] TextError),
    /// The invitee's identity-provider user id is empty, too long or has control characters.
    #[error(
        "external_user_id must be 1 to {MAX_EXTERNAL_USER_ID_CHARS} characters without control characters"
    )]
    InvalidExternalUserId,
    /// Another account already has the invitee's identity-provider user id.
    #[error(
        "another account already has this external_user_id; sign in with that account or send another id"
    )]
    ExternalUserIdTaken,
    /// A concurrent sign-up created the account for this email first; retrying joins with it.
    #[error("an account for {0} was being created at the same time; retry to join with it")]
    ConcurrentAccept(String),
    /// The address already belongs to a member.
    #[error("{0} is already a member of this tenant")]
    AlreadyMember(String),
    /// A pending invitation exists for the address.
    #[error("{0} already has a pending invitation; resend it instead")]
    AlreadyPending(String),
    /// Every seat is taken: members and pending invitations together reach the tenant's
    /// `max_members`.
    #[error(
        "max_members quota exceeded: {taken}/{seats} seats are taken by members and pending invitations; revoke an invitation, remove a member or change plan"
    )]
    SeatsTaken {
        /// Seats taken now.
        taken: i64,
        /// The tenant's seats (`max_members`).
        seats: i64,
    },
    /// No such invitation, or the token does not match (deliberately indistinguishable).
    #[error("invitation not found or token invalid; use the link of the latest invitation")]
    InvalidToken,
    /// No such invitation in this tenant.
    #[error("invitation not found; check the invitation id")]
    NotFound,
    /// Past its expiry.
    #[error("this invitation expired; ask for a new one")]
    Expired,
    /// Accepted already.
    #[error("this invitation was already accepted; sign in instead")]
    AlreadyAccepted,
    /// Revoked by the tenant.
    #[error("this invitation was revoked; ask the tenant for a new one")]
    Revoked,
    /// The system's random source failed.
    #[error("no randomness available to make a token; retry")]
    RandomUnavailable,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for InvitationError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for InvitationError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for InvitationError {
    fn code(&self) -> &'static str {
        match self {
            Self::InviterNotAMember => "not_a_member",
            Self::CannotManageUsers(_) => "cannot_manage_users",
            Self::RoleTooHigh { .. } => "role_too_high",
            Self::InvalidEmail(_) => "invalid_email",
            Self::InvalidName(_) => "invalid_name",
            Self::InvalidExternalUserId => "invalid_external_user_id",
            Self::ExternalUserIdTaken => "external_user_id_taken",
            Self::ConcurrentAccept(_) => "invitation_accept_conflict",
            Self::AlreadyMember(_) => "already_member",
            Self::AlreadyPending(_) => "invitation_pending",
            Self::SeatsTaken { .. } => "quota_members",
            Self::InvalidToken => "invalid_invitation",
            Self::NotFound => "invitation_not_found",
            Self::Expired => "invitation_expired",
            Self::AlreadyAccepted => "invitation_accepted",
            Self::Revoked => "invitation_revoked",
            Self::RandomUnavailable => "random_unavailable",
            Self::InvalidPage => "invalid_page",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InviterNotAMember | Self::CannotManageUsers(_) | Self::RoleTooHigh { .. } => 403,
            Self::InvalidEmail(_)
            | Self::InvalidName(_)
            | Self::InvalidExternalUserId
            | Self::InvalidPage => 422,
            // Waiting does not help (so not 429): a seat must be freed or the plan changed.
            Self::AlreadyMember(_)
            | Self::AlreadyPending(_)
            | Self::SeatsTaken { .. }
            | Self::AlreadyAccepted
            | Self::ExternalUserIdTaken
            | Self::ConcurrentAccept(_) => 409,
            Self::InvalidToken | Self::NotFound => 404,
            Self::Expired | Self::Revoked => 410,
            Self::RandomUnavailable => 503,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidName(_) => Some("name"),
            Self::InvalidToken => Some("token"),
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// A created (or resent) invitation with its one-time token.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedInvitation {
    /// The invitation as stored.
    pub invitation: InvitationSnapshot,
    /// The token to deliver; never retrievable again.
    pub token: InvitationToken,
}

impl InvitationError {
    /// Whether retrying the whole use case may succeed: storage contention, or a concurrent
    /// sign-up for the same email (the retry finds the account and joins with it).
    pub fn is_contention(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_contention(),
            Self::ConcurrentAccept(_) => true,
            _ => false,
        }
    }
}

/// Checks the inviter's authority on their membership as it stands now (not the principal's
/// possibly stale role).
async fn check_inviter(
    db: Db<'_>,
    tenant: TenantId,
    inviter: Acting,
    role: MembershipRole,
) -> Result<(), InvitationError> {
    let own = get_accounts_facade_driver(db)
        .fetch_membership(tenant, inviter.user_id)
        .await?
        .ok_or(InvitationError::InviterNotAMember)?
        .role;
    if !capabilities(own).can_manage_users {
        return Err(InvitationError::CannotManageUsers(own));
    }
    if !may_grant(own, role) {
        return Err(InvitationError::RoleTooHigh { granted: role, own });
    }
    Ok(())
}

/// A trimmed identity-provider user id of 1 to [`MAX_EXTERNAL_USER_ID_CHARS`] characters.
fn parse_external_user_id(input: &str) -> Result<String, InvitationError> {
    let id = input.trim();
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_EXTERNAL_USER_ID_CHARS || id.chars().any(char::is_control) {
        return Err(InvitationError::InvalidExternalUserId);
    }
    Ok(id.to_owned())
}

/// Invites `email` into `tenant` with `role`.
pub async fn invite(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    tenant: TenantId,
    inviter: Acting,
    email: &str,
    role: MembershipRole,
    now: DateTime<Utc>,
) -> Result<IssuedInvitation, InvitationError> {
    let email = Email::parse(email)?;
    check_inviter(db, tenant, inviter, role).await?;
    let facade = get_accounts_facade_driver(db);
    // One index probe: the membership carries its member's email.
    if facade
        .fetch_membership_by_email(tenant, email.as_str())
        .await?
        .is_some()
    {
        return Err(InvitationError::AlreadyMember(email.into()));
    }
    // Seats: members plus live pending invitations, counted with the tenant row locked.
    let (taken, seats) = facade
        .lock_seats(tenant, now)
        .await?
        .ok_or(InvitationError::InviterNotAMember)?;
    if taken >= seats {
        return Err(InvitationError::SeatsTaken { taken, seats });
    }
    // A pending invitation past its expiry no longer blocks a new one.
    if let Some(stale) = facade
        .fetch_invitation_by_email(tenant, email.as_str(), InvitationStatus::Pending)
        .await?
        && stale.expires_at <= now
    {
        facade
            .update_invitation_expired(tenant, stale.id, now)
            .await?;
    }
    let token = InvitationToken::generate()?;
    let inserted = facade
        .insert_invitation(
            NewInvitation {
                id: InvitationId::new(),
                tenant_id: tenant,
                email: email.as_str().to_owned(),
                role,
                token_digest: token_digest(pepper, token.expose()),
                invited_by: inviter.user_id,
                expires_at: now + TimeDelta::days(INVITATION_TTL_DAYS),
            },
            now,
        )
        .await;
    let invitation = match inserted {
        Err(error) if error.conflicting_constraint() == Some(PENDING_CONSTRAINT) => {
            return Err(InvitationError::AlreadyPending(email.into()));
        }
        other => other?,
    };
    Ok(IssuedInvitation { invitation, token })
}

/// Issues a new token and a new expiry for a pending invitation.
pub async fn resend(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    tenant: TenantId,
    actor: Acting,
    id: InvitationId,
    now: DateTime<Utc>,
) -> Result<IssuedInvitation, InvitationError> {
    let facade = get_accounts_facade_driver(db);
    let current = facade
        .fetch_invitation(tenant, id)
        .await?
        .ok_or(InvitationError::NotFound)?;
    check_inviter(db, tenant, actor, current.role).await?;
    refuse_unless_pending(&current)?;
    let token = InvitationToken::generate()?;
    let invitation = facade
        .update_invitation_token(
            tenant,
            id,
            &token_digest(pepper, token.expose()),
            now + TimeDelta::days(INVITATION_TTL_DAYS),
            now,
        )
        .await?
        .ok_or(InvitationError::NotFound)?;
    Ok(IssuedInvitation { invitation, token })
}

/// Revokes a pending invitation.
pub async fn revoke(
    db: Db<'_>,
    tenant: TenantId,
    actor: Acting,
    id: InvitationId,
    now: DateTime<Utc>,
) -> Result<InvitationSnapshot, InvitationError> {
    let facade = get_accounts_facade_driver(db);
    let current = facade
        .fetch_invitation(tenant, id)
        .await?
        .ok_or(InvitationError::NotFound)?;
    check_inviter(db, tenant, actor, current.role).await?;
    refuse_unless_pending(&current)?;
    if !facade.update_invitation_revoked(tenant, id, now).await? {
        return Err(InvitationError::NotFound);
    }
    facade
        .fetch_invitation(tenant, id)
        .await?
        .ok_or(InvitationError::NotFound)
}

fn refuse_unless_pending(invitation: &InvitationSnapshot) -> Result<(), InvitationError> {
    match invitation.status {
        InvitationStatus::Pending => Ok(()),
        InvitationStatus::Accepted => Err(InvitationError::AlreadyAccepted),
        InvitationStatus::Revoked => Err(InvitationError::Revoked),
        InvitationStatus::Expired => Err(InvitationError::Expired),
    }
}

/// Who accepts: the invitee's profile as the host knows it (the email is the invitation's).
/// Both fields are parsed even when the account exists already, so the same input is refused
/// the same way whoever sends it.
#[derive(Clone, Debug, Default)]
pub struct Invitee {
    /// The identity provider's user id, when the host has one (1 to 100 characters).
    pub external_user_id: Option<String>,
    /// Display name for a new account (a display name: 1 to 255 characters).
    pub name: Option<String>,
}

/// Accepts an invitation with its token: creates the user if needed and the membership.
///
/// Safe against a double accept: the conditional `pending → accepted` update runs before any
/// user is created, so of two concurrent accepts the second waits on the invitation row and
/// then finds it accepted ([`InvitationError::AlreadyAccepted`]). When a concurrent sign-up
/// of another invitation creates the account for the same email first, the accept is refused
/// with [`InvitationError::ConcurrentAccept`], which [`InvitationError::is_contention`] marks
/// retryable: the retry finds the account and joins with it.
pub async fn accept(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    tenant: TenantId,
    id: InvitationId,
    token: &str,
    invitee: Invitee,
    now: DateTime<Utc>,
) -> Result<MembershipSnapshot, InvitationError> {
    let name = invitee
        .name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()?;
    let external_user_id = invitee
        .external_user_id
        .as_deref()
        .map(parse_external_user_id)
        .transpose()?;
    // The lookup compares keyed digests: without the pepper nobody can steer a digest's
    // bytes, so equality in SQL reveals nothing about the token (no plain-text compare).
    let facade = get_accounts_facade_driver(db);
    let invitation = facade
        .fetch_invitation_by_id_and_token(tenant, id, &token_digest(pepper, token.trim()))
        .await?
        .ok_or(InvitationError::InvalidToken)?;
    refuse_unless_pending(&invitation)?;
    if invitation.expires_at <= now {
        return Err(InvitationError::Expired);
    }
    let users = get_user_write_driver(db);
    let existing = users.fetch_user_by_email(&invitation.email).await?;
    let user = existing.as_ref().map_or_else(UserId::new, |user| user.id);
    if existing.is_some() && facade.fetch_membership(tenant, user).await?.is_some() {
        return Err(InvitationError::AlreadyMember(invitation.email));
    }
    if !facade
        .update_invitation_accepted(tenant, id, user, now)
        .await?
    {
        // Accepted, revoked or expired meanwhile: say which.
        if let Some(current) = facade.fetch_invitation(tenant, id).await? {
            refuse_unless_pending(&current)?;
        }
        return Err(InvitationError::AlreadyAccepted);
    }
    if existing.is_none() {
        let created = users
            .create_user(
                NewUser {
                    id: user,
                    email: invitation.email.clone(),
                    external_user_id,
                    name: name.map(String::from),
                    avatar_url: None,
                    status: UserStatus::Active,
                },
                now,
            )
            .await;
        match created {
            Err(error) if error.conflicting_constraint() == Some(USER_EMAIL_CONSTRAINT) => {
                return Err(InvitationError::ConcurrentAccept(invitation.email));
            }
            Err(error) if error.conflicting_constraint() == Some(USER_EXTERNAL_ID_CONSTRAINT) => {
                return Err(InvitationError::ExternalUserIdTaken);
            }
            other => other?,
        };
    }
    let membership = facade
        .insert_membership(
            tenant,
            user,
            invitation.role,
            Some(invitation.invited_by),
            now,
        )
        .await;
    let membership = match membership {
        Err(error) if error.conflicting_constraint() == Some(MEMBERSHIP_CONSTRAINT) => {
            return Err(InvitationError::AlreadyMember(invitation.email));
        }
        other => other?,
    };
    // The tenant a user first joins becomes their default; a later one leaves it be.
    facade
        .update_default_tenant_if_unset(user, tenant, now)
        .await?;
    Ok(membership)
}

/// The tenant's invitations, newest first; pending ones past their expiry show as expired.
pub async fn list(
    db: Db<'_>,
    tenant: TenantId,
    status: Option<InvitationStatus>,
    page: OffsetPage,
    now: DateTime<Utc>,
) -> Result<Page<InvitationSnapshot>, InvitationError> {
    let page = PageRequest::new(page)?.into_page();
    let page = get_accounts_facade_driver(db)
        .fetch_invitations(tenant, status, page)
        .await?;
    Ok(page.map(|mut invitation| {
        if invitation.status == InvitationStatus::Pending && invitation.expires_at <= now {
            invitation.status = InvitationStatus::Expired;
        }
        invitation
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            InvitationError::InviterNotAMember,
            InvitationError::CannotManageUsers(MembershipRole::Member),
            InvitationError::RoleTooHigh {
                granted: MembershipRole::Owner,
                own: MembershipRole::Admin,
            },
            InvitationError::InvalidEmail(EmailError::MissingAt),
            InvitationError::InvalidName(TextError::TooLong {
                field: "display name",
                max: 255,
            }),
            InvitationError::InvalidExternalUserId,
            InvitationError::ExternalUserIdTaken,
            InvitationError::ConcurrentAccept("ann@example.com".into()),
            InvitationError::AlreadyMember("ann@example.com".into()),
            InvitationError::AlreadyPending("ann@example.com".into()),
            InvitationError::SeatsTaken {
                taken: 10,
                seats: 10,
            },
            InvitationError::InvalidToken,
            InvitationError::NotFound,
            InvitationError::Expired,
            InvitationError::AlreadyAccepted,
            InvitationError::Revoked,
            InvitationError::InvalidPage,
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above or below.
            match error {
                InvitationError::InviterNotAMember
                | InvitationError::CannotManageUsers(_)
                | InvitationError::RoleTooHigh { .. }
                | InvitationError::InvalidEmail(_)
                | InvitationError::InvalidName(_)
                | InvitationError::InvalidExternalUserId
                | InvitationError::ExternalUserIdTaken
                | InvitationError::ConcurrentAccept(_)
                | InvitationError::AlreadyMember(_)
                | InvitationError::AlreadyPending(_)
                | InvitationError::SeatsTaken { .. }
                | InvitationError::InvalidToken
                | InvitationError::NotFound
                | InvitationError::Expired
                | InvitationError::AlreadyAccepted
                | InvitationError::Revoked
                | InvitationError::InvalidPage => {}
                InvitationError::RandomUnavailable | InvitationError::Storage(_) => {
                    unreachable!("not caller-caused")
                }
            }
        }
        crate::error::assert_caller_errors(&errors);
        assert_eq!(InvitationError::RandomUnavailable.http_status(), 503);
        assert!(InvitationError::ConcurrentAccept("a@example.com".into()).is_contention());
        assert!(!InvitationError::AlreadyAccepted.is_contention());
    }

    #[test]
    fn external_user_ids_are_bounded() {
        assert_eq!(parse_external_user_id("  user_1 ").unwrap(), "user_1");
        assert!(parse_external_user_id(&"é".repeat(MAX_EXTERNAL_USER_ID_CHARS)).is_ok());
        for bad in [
            String::new(),
            "  ".into(),
            "a\nb".into(),
            "x".repeat(MAX_EXTERNAL_USER_ID_CHARS + 1),
        ] {
            assert!(
                matches!(
                    parse_external_user_id(&bad),
                    Err(InvitationError::InvalidExternalUserId)
                ),
                "{bad:?}"
            );
        }
    }
}
