//! Invitations: invite by normalised email with a role no higher than the inviter's, one
//! pending invitation per address, a token returned exactly once and stored only as a keyed
//! digest, expiry after 7 days (applied lazily), resend, revoke, and an accept that is safe
//! against a double accept (the conditional `pending → accepted` update decides).

use crate::api_keys::secret::{ApiKeyPepper, digest};
use crate::memberships::Acting;
use crate::roles::{capabilities, may_grant};
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
pub use account_drivers::invitations::InvitationSnapshot as Invitation;
use account_drivers::invitations::{InvitationSnapshot, NewInvitation};
use account_drivers::memberships::MembershipSnapshot;
use account_drivers::types::{
    Email, EmailError, InvitationId, InvitationStatus, MembershipRole, TenantId, UserId, UserStatus,
};
use account_drivers::users::NewUser;
use account_drivers::{get_accounts_facade_driver, get_user_write_driver};
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};

/// How long an invitation stays valid.
pub const INVITATION_TTL_DAYS: i64 = 7;
/// The constraint that allows one pending invitation per (tenant, lower(email)).
const PENDING_CONSTRAINT: &str = "uq_invitations_pending_email";

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
pub enum InvitationError {
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
    /// The address already belongs to a member.
    #[error("{0} is already a member of this tenant")]
    AlreadyMember(String),
    /// A pending invitation exists for the address.
    #[error("{0} already has a pending invitation; resend it instead")]
    AlreadyPending(String),
    /// No such invitation, or the token does not match (deliberately indistinguishable).
    #[error("invitation not found or token invalid")]
    InvalidToken,
    /// No such invitation in this tenant.
    #[error("invitation not found")]
    NotFound,
    /// Past its expiry.
    #[error("this invitation expired; ask for a new one")]
    Expired,
    /// Accepted already.
    #[error("this invitation was already accepted")]
    AlreadyAccepted,
    /// Revoked by the tenant.
    #[error("this invitation was revoked")]
    Revoked,
    /// The system's random source failed.
    #[error("no randomness available to make a token")]
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

impl ErrorCode for InvitationError {
    fn code(&self) -> &'static str {
        match self {
            Self::CannotManageUsers(_) => "cannot_manage_users",
            Self::RoleTooHigh { .. } => "role_too_high",
            Self::InvalidEmail(_) => "invalid_email",
            Self::AlreadyMember(_) => "already_member",
            Self::AlreadyPending(_) => "invitation_pending",
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
            Self::CannotManageUsers(_) | Self::RoleTooHigh { .. } => 403,
            Self::InvalidEmail(_) | Self::InvalidPage => 422,
            Self::AlreadyMember(_) | Self::AlreadyPending(_) | Self::AlreadyAccepted => 409,
            Self::InvalidToken | Self::NotFound => 404,
            Self::Expired | Self::Revoked => 410,
            Self::RandomUnavailable => 503,
            Self::Storage(e) => e.http_status(),
        }
    }
}

/// A created (or resent) invitation with its one-time token.
#[derive(Debug)]
pub struct IssuedInvitation {
    /// The invitation as stored.
    pub invitation: InvitationSnapshot,
    /// The token to deliver; never retrievable again.
    pub token: InvitationToken,
}

fn check_inviter(inviter: Acting, role: MembershipRole) -> Result<(), InvitationError> {
    if !capabilities(inviter.role).can_manage_users {
        return Err(InvitationError::CannotManageUsers(inviter.role));
    }
    if !may_grant(inviter.role, role) {
        return Err(InvitationError::RoleTooHigh {
            granted: role,
            own: inviter.role,
        });
    }
    Ok(())
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
    check_inviter(inviter, role)?;
    let email = Email::parse(email)?;
    let facade = get_accounts_facade_driver(db);
    if let Some(user) = get_user_write_driver(db)
        .fetch_user_by_email(email.as_str())
        .await?
        && facade.fetch_membership(tenant, user.id).await?.is_some()
    {
        return Err(InvitationError::AlreadyMember(email.into()));
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
    check_inviter(actor, current.role)?;
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
    check_inviter(actor, current.role)?;
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
#[derive(Clone, Debug, Default)]
pub struct Invitee {
    /// The identity provider's user id, when the host has one.
    pub external_user_id: Option<String>,
    /// Display name for a new account.
    pub name: Option<String>,
}

/// Accepts an invitation with its token: creates the user if needed and the membership.
/// Safe against a double accept: only one conditional `pending → accepted` update succeeds.
pub async fn accept(
    db: Db<'_>,
    pepper: &ApiKeyPepper,
    tenant: TenantId,
    id: InvitationId,
    token: &str,
    invitee: Invitee,
    now: DateTime<Utc>,
) -> Result<MembershipSnapshot, InvitationError> {
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
    let user = match users.fetch_user_by_email(&invitation.email).await? {
        Some(user) => user.id,
        None => {
            let id = UserId::new();
            users
                .create_user(
                    NewUser {
                        id,
                        email: invitation.email.clone(),
                        external_user_id: invitee.external_user_id,
                        name: invitee.name,
                        avatar_url: None,
                        status: UserStatus::Active,
                    },
                    now,
                )
                .await?;
            id
        }
    };
    if facade.fetch_membership(tenant, user).await?.is_some() {
        return Err(InvitationError::AlreadyMember(invitation.email));
    }
    if !facade
        .update_invitation_accepted(tenant, id, user, now)
        .await?
    {
        return Err(InvitationError::AlreadyAccepted);
    }
    Ok(facade
        .insert_membership(
            tenant,
            user,
            invitation.role,
            Some(invitation.invited_by),
            now,
        )
        .await?)
}

/// The tenant's invitations, newest first; pending ones past their expiry show as expired.
pub async fn list(
    db: Db<'_>,
    tenant: TenantId,
    status: Option<InvitationStatus>,
    page: OffsetPage,
    now: DateTime<Utc>,
) -> Result<Page<InvitationSnapshot>, InvitationError> {
    if page.limit == 0 || page.limit > 100 {
        return Err(InvitationError::InvalidPage);
    }
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
