//! Invitation use cases: invite, resend, revoke, list, and acceptance by the token's holder.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::events::OneTimeToken;
use crate::operations::Operation;
use crate::principal::{Principal, RequestMeta};
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::invitations;
use account_engines::memberships::Acting;
use account_engines::types::{InvitationId, InvitationStatus, MembershipRole, TenantId};
use account_engines::{OffsetPage, Page};
use serde_json::json;

pub use account_engines::invitations::{Invitation, Invitee, IssuedInvitation};
pub use account_engines::memberships::Membership;

fn invitation_created(issued: &IssuedInvitation, resent: bool) -> DomainEvent {
    let invitation = &issued.invitation;
    DomainEvent::InvitationCreated {
        tenant_id: invitation.tenant_id,
        invitation_id: invitation.id,
        email: invitation.email.clone(),
        role: invitation.role,
        expires_at: invitation.expires_at,
        token: OneTimeToken::new(issued.token.expose()),
        resent,
    }
}

/// Invites `email` with `role`; the token in the result is shown once, for delivery, and
/// published with [`DomainEvent::InvitationCreated`] after commit.
#[derive(Clone, Debug)]
pub struct InviteUser {
    /// Whom.
    pub email: String,
    /// With which role.
    pub role: MembershipRole,
}

impl Sealed for InviteUser {}
impl UseCase for InviteUser {
    type Output = IssuedInvitation;
    const OPERATION: Operation = Operation::AccountInviteUser;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<IssuedInvitation, SpineError> {
        let (tenant, actor) = (cx.tenant()?, cx.member()?);
        let (email, role) = (&self.email, self.role);
        let issued =
            invitations::invite(cx.db, cx.pepper()?, tenant, actor, email, role, cx.now).await?;
        let invitation = &issued.invitation;
        let after = json!({"email": invitation.email, "role": invitation.role, "expires_at": invitation.expires_at});
        cx.audit(Change::of("invitation", invitation.id).after(after))
            .await?;
        cx.publish(invitation_created(&issued, false));
        Ok(issued)
    }
}

/// Sends a pending invitation again with a new token and expiry (published with
/// [`DomainEvent::InvitationCreated`], `resent: true`).
#[derive(Clone, Copy, Debug)]
pub struct ResendInvitation {
    /// The invitation.
    pub id: InvitationId,
}

impl Sealed for ResendInvitation {}
impl UseCase for ResendInvitation {
    type Output = IssuedInvitation;
    const OPERATION: Operation = Operation::AccountResendInvitation;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<IssuedInvitation, SpineError> {
        let (tenant, actor) = (cx.tenant()?, cx.member()?);
        let issued =
            invitations::resend(cx.db, cx.pepper()?, tenant, actor, self.id, cx.now).await?;
        let after = json!({"expires_at": issued.invitation.expires_at});
        cx.audit(Change::of("invitation", self.id).after(after))
            .await?;
        cx.publish(invitation_created(&issued, true));
        Ok(issued)
    }
}

/// Revokes a pending invitation.
#[derive(Clone, Copy, Debug)]
pub struct RevokeInvitation {
    /// The invitation.
    pub id: InvitationId,
}

impl Sealed for RevokeInvitation {}
impl UseCase for RevokeInvitation {
    type Output = Invitation;
    const OPERATION: Operation = Operation::AccountRevokeInvitation;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Invitation, SpineError> {
        let (tenant, actor) = (cx.tenant()?, cx.member()?);
        let invitation = invitations::revoke(cx.db, tenant, actor, self.id, cx.now).await?;
        let after = json!({"status": invitation.status});
        cx.audit(Change::of("invitation", self.id).after(after))
            .await?;
        Ok(invitation)
    }
}

/// The tenant's invitations.
#[derive(Clone, Copy, Debug)]
pub struct ListInvitations {
    /// Only invitations in this status.
    pub status: Option<InvitationStatus>,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListInvitations {}
impl UseCase for ListInvitations {
    type Output = Page<Invitation>;
    const OPERATION: Operation = Operation::AccountListInvitations;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<Invitation>, SpineError> {
        let tenant = cx.tenant()?;
        Ok(invitations::list(cx.db, tenant, self.status, self.page, cx.now).await?)
    }
}

/// Accepts an invitation: the token is the only authority (no principal). The tenant's status
/// must allow writes: a suspended or terminated tenant refuses (the refusal is audited; the
/// acceptance is rolled back and the token still works once the tenant may write again).
#[derive(Clone, Debug)]
pub struct AcceptInvitation {
    /// The tenant the invitation is for.
    pub tenant: TenantId,
    /// The invitation.
    pub id: InvitationId,
    /// The token delivered with it.
    pub token: String,
    /// Who accepts.
    pub invitee: Invitee,
}

impl Sealed for AcceptInvitation {}
impl UseCase for AcceptInvitation {
    type Output = Membership;
    const OPERATION: Operation = Operation::AccountAcceptInvitation;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Membership, SpineError> {
        accept(self, cx).await
    }
}

/// The body of [`AcceptInvitation`], shared with a signed-in person's acceptance, which links
/// their identity in the same transaction.
pub(crate) async fn accept(
    this: &AcceptInvitation,
    cx: &mut Context<'_>,
) -> Result<Membership, SpineError> {
    {
        let (tenant, id) = (this.tenant, this.id);
        let invitee = this.invitee.clone();
        let membership = invitations::accept(
            cx.db,
            cx.pepper()?,
            tenant,
            id,
            &this.token,
            invitee,
            cx.now,
        )
        .await?;
        // Checked once the token proved valid, so only its holder learns the status; a
        // refusal rolls the acceptance back.
        cx.require_capability(tenant).await?;
        let (user_id, role) = (membership.user_id, membership.role);
        let after = json!({"user_id": user_id, "role": role});
        let change = Change::of("invitation", id).after(after);
        cx.audit_by(Acting { user_id, role }, change).await?;
        cx.publish(DomainEvent::InvitationAccepted {
            tenant_id: tenant,
            invitation_id: id,
            user_id,
            role,
        });
        Ok(membership)
    }
}

impl Spine {
    /// Executes [`InviteUser`].
    pub async fn invite_user(
        &self,
        principal: &Principal,
        email: &str,
        role: MembershipRole,
    ) -> Result<IssuedInvitation, SpineError> {
        let email = email.to_owned();
        self.execute(principal, InviteUser { email, role }).await
    }

    /// Executes [`ResendInvitation`].
    pub async fn resend_invitation(
        &self,
        principal: &Principal,
        id: InvitationId,
    ) -> Result<IssuedInvitation, SpineError> {
        self.execute(principal, ResendInvitation { id }).await
    }

    /// Executes [`RevokeInvitation`].
    pub async fn revoke_invitation(
        &self,
        principal: &Principal,
        id: InvitationId,
    ) -> Result<Invitation, SpineError> {
        self.execute(principal, RevokeInvitation { id }).await
    }

    /// Executes [`ListInvitations`].
    pub async fn list_invitations(
        &self,
        principal: &Principal,
        status: Option<InvitationStatus>,
        page: OffsetPage,
    ) -> Result<Page<Invitation>, SpineError> {
        self.execute(principal, ListInvitations { status, page })
            .await
    }

    /// Executes [`AcceptInvitation`] for the token's holder; `request` is the accepting
    /// request's metadata, for the audit row.
    pub async fn accept_invitation(
        &self,
        tenant: TenantId,
        id: InvitationId,
        token: &str,
        invitee: Invitee,
        request: RequestMeta,
    ) -> Result<Membership, SpineError> {
        let accept = AcceptInvitation {
            tenant,
            id,
            token: token.to_owned(),
            invitee,
        };
        self.execute_with_token(tenant, &request, accept).await
    }
}
