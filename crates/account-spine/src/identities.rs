//! People who sign in through an identity provider: the link from the provider's subject to
//! our user, made when a signed-in person accepts an invitation and looked up on each of their
//! requests. The host (or our API) verifies the provider's token; the spine never sees it,
//! only the issuer and subject it vouched for.

use crate::database::Spine;
use crate::error::SpineError;
use crate::invitations::AcceptInvitation;
use crate::operations::Operation;
use crate::principal::{Principal, RequestMeta};
use crate::use_case::{Context, Sealed, UseCase};
use account_engines::identities;
use account_engines::memberships;
use account_engines::types::{InvitationId, MembershipRole, TenantId, UserId};
use chrono::{DateTime, Utc};

pub use account_engines::identities::IdentityLinkSnapshot as IdentityLink;
pub use account_engines::invitations::Invitee;
pub use account_engines::memberships::Membership;

/// A person as their identity provider vouched for them (a verified token's `iss` and `sub`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedIn {
    /// The issuer.
    pub issuer: String,
    /// The person's stable id at the issuer.
    pub subject: String,
}

impl SignedIn {
    /// The person `subject` of `issuer`.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        SignedIn {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }
}

/// What a signed-in person sees of themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Me {
    /// Their user.
    pub user_id: UserId,
    /// Their identity links, oldest first.
    pub identities: Vec<IdentityLink>,
    /// The tenants they belong to, with their role there and when they joined.
    pub memberships: Vec<(TenantId, MembershipRole, DateTime<Utc>)>,
}

/// [`AcceptInvitation`] by a signed-in person: the membership, and their identity linked to
/// the user, in one transaction. An identity linked to another user already refuses the
/// acceptance (`identity_already_linked`), and nothing of it is kept.
#[derive(Clone, Debug)]
pub struct AcceptInvitationSignedIn {
    /// The acceptance.
    pub accept: AcceptInvitation,
    /// Who accepts.
    pub signed_in: SignedIn,
}

impl Sealed for AcceptInvitationSignedIn {}
impl UseCase for AcceptInvitationSignedIn {
    type Output = Membership;
    const OPERATION: Operation = Operation::AccountAcceptInvitation;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Membership, SpineError> {
        let membership = crate::invitations::accept(&self.accept, cx).await?;
        let SignedIn { issuer, subject } = &self.signed_in;
        match identities::find_user_by_identity(cx.db, issuer, subject).await? {
            Some(user) if user == membership.user_id => {}
            Some(_) => return Err(identities::IdentityError::AlreadyLinked.into()),
            None => {
                identities::link_identity(cx.db, issuer, subject, membership.user_id, cx.now)
                    .await?;
            }
        }
        Ok(membership)
    }
}

impl Spine {
    /// The principal of the person `signed_in` acting in `tenant_id`, with their membership's
    /// role now. A person whose identity is linked to no user, or who is no member there, gets
    /// [`SpineError::TenantNotFound`].
    pub async fn identity_principal(
        &self,
        signed_in: &SignedIn,
        tenant_id: TenantId,
        request: RequestMeta,
    ) -> Result<Principal, SpineError> {
        let user = self
            .linked_user(signed_in)
            .await?
            .ok_or(SpineError::TenantNotFound)?;
        self.user_principal(tenant_id, user, request).await
    }

    /// Executes [`AcceptInvitationSignedIn`] for the token's holder.
    pub async fn accept_invitation_signed_in(
        &self,
        tenant: TenantId,
        id: InvitationId,
        token: &str,
        invitee: Invitee,
        signed_in: SignedIn,
        request: RequestMeta,
    ) -> Result<Membership, SpineError> {
        let accept = AcceptInvitationSignedIn {
            accept: AcceptInvitation {
                tenant,
                id,
                token: token.to_owned(),
                invitee,
            },
            signed_in,
        };
        self.execute_with_token(tenant, &request, accept).await
    }

    /// The signed-in person's user, identity links and memberships (`identity_not_linked`
    /// before they accepted an invitation).
    pub async fn me(&self, signed_in: &SignedIn) -> Result<Me, SpineError> {
        let user_id = self
            .linked_user(signed_in)
            .await?
            .ok_or(identities::IdentityError::NotLinked)?;
        let identities = identities::list_user_identities(self.pool_db(), user_id).await?;
        let memberships = memberships::list_user_memberships(self.pool_db(), user_id).await?;
        Ok(Me {
            user_id,
            identities,
            memberships,
        })
    }

    pub(crate) async fn linked_user(
        &self,
        signed_in: &SignedIn,
    ) -> Result<Option<UserId>, SpineError> {
        Ok(
            identities::find_user_by_identity(
                self.pool_db(),
                &signed_in.issuer,
                &signed_in.subject,
            )
            .await?,
        )
    }
}
