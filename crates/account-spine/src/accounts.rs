//! Account use cases: projects, invitations, members and roles, profile, support, billing.

use crate::events::OneTimeToken;
use crate::operations::{Authority, Operation};
use crate::principal::{Actor, Principal, RequestMeta};
use crate::use_case::{Subject, require_capability};
use crate::{DomainEvent, Spine, SpineError};
use account_engines::billing;
pub use account_engines::billing::{BillingSummary, Invoice};
use account_engines::invitations;
pub use account_engines::invitations::Invitee;
pub use account_engines::invitations::{Invitation, IssuedInvitation};
pub use account_engines::memberships::UserDetailResult;
use account_engines::memberships::{self, Acting};
pub use account_engines::memberships::{Membership, RoleChange, User, UserFilter, UserPosition};
use account_engines::roles::rank;
use account_engines::support;
pub use account_engines::support::{OpenTicket, SupportContact, Ticket};
use account_engines::tenants::{self, Caller};
pub use account_engines::tenants::{ProjectDetailResult, ProjectFilters, ProjectSummaryResult};
use account_engines::types::{
    InvitationId, InvitationStatus, MembershipRole, TenantId, TicketStatus, UserId,
};
use account_engines::users;
pub use account_engines::users::{Profile, ProfileUpdate, UserAccount};
use account_engines::{KeysetPage, OffsetPage, Page};
use serde_json::json;

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

impl Spine {
    /// The member acting behind `principal`. A member the host authenticated acts as
    /// themselves. A personal API key (issued for a user) acts on that user's behalf, bounded
    /// by both its permissions (checked here and again by the use case) and the user's
    /// current role in the tenant, re-read from the membership now: a demoted or removed
    /// user's keys lose the power at once. A machine key (issued for no user) is refused.
    /// Refusals are audited.
    async fn acting(
        &self,
        principal: &Principal,
        operation: Operation,
    ) -> Result<Acting, SpineError> {
        let acting = match &principal.actor {
            Actor::User { user_id, role } => Ok(Acting {
                user_id: *user_id,
                role: *role,
            }),
            Actor::ApiKey { user_id: None, .. } => Err(SpineError::MachineKey {
                operation: operation.name(),
            }),
            Actor::ApiKey {
                user_id: Some(user_id),
                ..
            } => {
                self.personal_key_acting(principal, *user_id, operation)
                    .await
            }
        };
        self.audited(Subject::Principal(principal), operation, acting)
            .await
    }

    /// A personal key's user, with their role as it stands now, if both the key and the role
    /// allow `operation`.
    async fn personal_key_acting(
        &self,
        principal: &Principal,
        user_id: UserId,
        operation: Operation,
    ) -> Result<Acting, SpineError> {
        crate::authorize::authorize(principal, operation)?;
        let tenant = principal.tenant_id;
        let current = read!(self, |db| {
            match memberships::get_user_detail(db, tenant, user_id).await {
                Ok((detail, _)) => Ok(Some(detail.role)),
                Err(memberships::MembershipError::NotAMember) => Ok(None),
                Err(error) => Err(error.into()),
            }
        })?;
        let Some(role) = current else {
            return Err(SpineError::forbidden(
                operation,
                "an API key whose user is still a member of the tenant",
            ));
        };
        if let Authority::Tenant { min_role, .. } = operation.authority()
            && rank(role) < rank(min_role)
        {
            return Err(SpineError::forbidden(
                operation,
                format!(
                    "an API key whose user has the {min_role} role or higher (they are {role})"
                ),
            ));
        }
        Ok(Acting { user_id, role })
    }

    /// Invites `email` with `role`; the token in the result is shown once, for delivery, and
    /// published with [`DomainEvent::InvitationCreated`] after commit.
    pub async fn invite_user(
        &self,
        principal: &Principal,
        email: &str,
        role: MembershipRole,
    ) -> Result<IssuedInvitation, SpineError> {
        let operation = Operation::AccountInviteUser;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let pepper = self.pepper()?;
            let now = self.clock.now();
            let issued = write_use_case!(self, principal, operation, |db| {
                let issued =
                    invitations::invite(db, pepper, principal.tenant_id, actor, email, role, now)
                        .await?;
                let after = json!({"email": issued.invitation.email, "role": issued.invitation.role, "expires_at": issued.invitation.expires_at});
                self.audit(
                    db,
                    principal,
                    operation,
                    "invitation",
                    &issued.invitation.id.to_string(),
                    None,
                    Some(after),
                    now,
                )
                .await?;
                Ok(issued)
            })?;
            self.events.publish(&invitation_created(&issued, false));
            Ok(issued)
        })
        .await
    }

    /// Sends a pending invitation again with a new token and expiry (published with
    /// [`DomainEvent::InvitationCreated`], `resent: true`).
    pub async fn resend_invitation(
        &self,
        principal: &Principal,
        id: InvitationId,
    ) -> Result<IssuedInvitation, SpineError> {
        let operation = Operation::AccountResendInvitation;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let pepper = self.pepper()?;
            let now = self.clock.now();
            let issued = write_use_case!(self, principal, operation, |db| {
                let issued =
                    invitations::resend(db, pepper, principal.tenant_id, actor, id, now).await?;
                self.audit(
                    db,
                    principal,
                    operation,
                    "invitation",
                    &id.to_string(),
                    None,
                    Some(json!({"expires_at": issued.invitation.expires_at})),
                    now,
                )
                .await?;
                Ok(issued)
            })?;
            self.events.publish(&invitation_created(&issued, true));
            Ok(issued)
        })
        .await
    }

    /// Revokes a pending invitation.
    pub async fn revoke_invitation(
        &self,
        principal: &Principal,
        id: InvitationId,
    ) -> Result<Invitation, SpineError> {
        let operation = Operation::AccountRevokeInvitation;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let now = self.clock.now();
            write_use_case!(self, principal, operation, |db| {
                let invitation =
                    invitations::revoke(db, principal.tenant_id, actor, id, now).await?;
                self.audit(
                    db,
                    principal,
                    operation,
                    "invitation",
                    &id.to_string(),
                    None,
                    Some(json!({"status": invitation.status})),
                    now,
                )
                .await?;
                Ok(invitation)
            })
        })
        .await
    }

    /// The tenant's invitations.
    pub async fn list_invitations(
        &self,
        principal: &Principal,
        status: Option<InvitationStatus>,
        page: OffsetPage,
    ) -> Result<Page<Invitation>, SpineError> {
        let operation = Operation::AccountListInvitations;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            let now = self.clock.now();
            read_use_case!(self, principal, operation, |db| {
                Ok(invitations::list(db, principal.tenant_id, status, page, now).await?)
            })
        })
        .await
    }

    /// Accepts an invitation: the token is the only authority (no principal). The tenant's
    /// status must allow writes: a suspended or terminated tenant refuses (the refusal is
    /// audited; the acceptance is rolled back and the token still works once the tenant may
    /// write again). `request` is the accepting request's metadata, for the audit row.
    pub async fn accept_invitation(
        &self,
        tenant: TenantId,
        id: InvitationId,
        token: &str,
        invitee: Invitee,
        request: RequestMeta,
    ) -> Result<Membership, SpineError> {
        let operation = Operation::AccountAcceptInvitation;
        let subject = Subject::TokenHolder {
            tenant,
            request: &request,
        };
        self.observe(operation, subject, async {
            let pepper = self.pepper()?;
            let now = self.clock.now();
            let outcome = transaction!(self, |db| {
                let membership =
                    invitations::accept(db, pepper, tenant, id, token, invitee.clone(), now)
                        .await?;
                // Checked once the token proved valid, so only its holder learns the status;
                // a refusal rolls the acceptance back.
                require_capability(db, tenant, operation).await?;
                let principal = Principal {
                    tenant_id: tenant,
                    actor: Actor::User {
                        user_id: membership.user_id,
                        role: membership.role,
                    },
                    request: request.clone(),
                };
                let after = json!({"user_id": membership.user_id, "role": membership.role});
                self.audit(
                    db,
                    &principal,
                    operation,
                    "invitation",
                    &id.to_string(),
                    None,
                    Some(after),
                    now,
                )
                .await?;
                Ok(membership)
            });
            let membership = self.audited(subject, operation, outcome).await?;
            self.events.publish(&DomainEvent::InvitationAccepted {
                tenant_id: tenant,
                invitation_id: id,
                user_id: membership.user_id,
                role: membership.role,
            });
            Ok(membership)
        })
        .await
    }

    /// The tenant's users with their roles.
    pub async fn list_users(
        &self,
        principal: &Principal,
        filter: UserFilter,
        page: OffsetPage,
    ) -> Result<Page<User>, SpineError> {
        let operation = Operation::AccountListUsers;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                Ok(memberships::list_users(db, principal.tenant_id, filter, page).await?)
            })
        })
        .await
    }

    /// The tenant's users with their roles by keyset, continuing after `after` (the first page
    /// when `None`): one statement per page at any depth, and no total (use
    /// [`Spine::list_users`] for that). `after` is a position, not a grant: it only ever pages
    /// the principal's tenant, whichever tenant it was read from.
    pub async fn list_users_after(
        &self,
        principal: &Principal,
        filter: UserFilter,
        after: Option<UserPosition>,
        limit: u64,
    ) -> Result<KeysetPage<User, UserPosition>, SpineError> {
        let operation = Operation::AccountListUsers;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                Ok(memberships::list_users_after(
                    db,
                    principal.tenant_id,
                    filter,
                    after.clone(),
                    limit,
                )
                .await?)
            })
        })
        .await
    }

    /// One user of the principal's tenant, with what their role lets them do. A user who is
    /// not a member of this tenant (another tenant's included) is `not_a_member` (404).
    pub async fn get_user(
        &self,
        principal: &Principal,
        user: UserId,
    ) -> Result<UserDetailResult, SpineError> {
        let operation = Operation::AccountGetUser;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                let detail: UserDetailResult =
                    memberships::get_user_detail(db, principal.tenant_id, user)
                        .await?
                        .into();
                Ok(detail)
            })
        })
        .await
    }

    /// The projects (tenants) the acting user is a member of, oldest first, optionally only
    /// those in one status.
    pub async fn list_projects(
        &self,
        principal: &Principal,
        filters: ProjectFilters,
        page: OffsetPage,
    ) -> Result<Page<ProjectSummaryResult>, SpineError> {
        let operation = Operation::AccountListProjects;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                let found = tenants::list_projects(db, actor.user_id, filters, page).await?;
                Ok(Page {
                    items: found.items,
                    total: found.total,
                    has_more: found.has_more,
                })
            })
        })
        .await
    }

    /// One project (tenant) the acting user is a member of: quotas, counters, onboarding.
    /// A project they are not a member of, or none with that id, is `project_not_found`
    /// (404), alike, so another tenant's existence does not leak. A project other than the
    /// principal's own must allow reads itself.
    pub async fn get_project(
        &self,
        principal: &Principal,
        project: TenantId,
    ) -> Result<ProjectDetailResult, SpineError> {
        let operation = Operation::AccountGetProject;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let now = self.clock.now();
            read_use_case!(self, principal, operation, |db| {
                let caller = Caller {
                    tenant_id: project,
                    user_id: actor.user_id,
                };
                // Membership first: a non-member learns nothing, not even the status.
                let detail = tenants::get_project_detail(db, caller, now).await?;
                if project != principal.tenant_id {
                    require_capability(db, project, operation).await?;
                }
                Ok(detail)
            })
        })
        .await
    }

    /// Changes a member's role (owners only; never their own; never the last owner's).
    pub async fn change_role(
        &self,
        principal: &Principal,
        user: UserId,
        role: MembershipRole,
    ) -> Result<RoleChange, SpineError> {
        let operation = Operation::AccountChangeRole;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let now = self.clock.now();
            let change = write_use_case!(self, principal, operation, |db| {
                let change =
                    memberships::update_user_role(db, principal.tenant_id, actor, user, role, now)
                        .await?;
                let (before, after) = (
                    json!({"role": change.previous}),
                    json!({"role": change.membership.role}),
                );
                self.audit(
                    db,
                    principal,
                    operation,
                    "membership",
                    &user.to_string(),
                    Some(before),
                    Some(after),
                    now,
                )
                .await?;
                Ok(change)
            })?;
            if change.previous != change.membership.role {
                self.events.publish(&DomainEvent::MemberRoleChanged {
                    tenant_id: principal.tenant_id,
                    user_id: user,
                    from: change.previous,
                    to: change.membership.role,
                    changed_by: actor.user_id,
                });
            }
            Ok(change)
        })
        .await
    }

    /// Removes a member (or lets one leave); the last owner stays.
    pub async fn remove_user(
        &self,
        principal: &Principal,
        user: UserId,
    ) -> Result<Membership, SpineError> {
        let operation = Operation::AccountRemoveUser;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let now = self.clock.now();
            let removal = write_use_case!(self, principal, operation, |db| {
                let removal =
                    memberships::remove_member(db, principal.tenant_id, actor, user, now).await?;
                self.audit(
                    db,
                    principal,
                    operation,
                    "membership",
                    &user.to_string(),
                    Some(json!({
                        "role": removal.membership.role,
                        "personal_keys_revoked": removal.revoked_keys,
                    })),
                    None,
                    now,
                )
                .await?;
                Ok(removal)
            })?;
            // Committed: the revoked keys must stop verifying in this process at once.
            for key in &removal.revoked_keys {
                self.verify_cache.invalidate_key(principal.tenant_id, *key);
            }
            let removed = removal.membership;
            self.events.publish(&DomainEvent::MemberRemoved {
                tenant_id: principal.tenant_id,
                user_id: user,
                role: removed.role,
                removed_by: actor.user_id,
            });
            Ok(removed)
        })
        .await
    }

    /// Hands ownership to another member; the caller becomes an admin.
    pub async fn transfer_ownership(
        &self,
        principal: &Principal,
        new_owner: UserId,
    ) -> Result<(Membership, Membership), SpineError> {
        let operation = Operation::AccountTransferOwnership;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let now = self.clock.now();
            let pair = write_use_case!(self, principal, operation, |db| {
                let pair =
                    memberships::transfer_ownership(db, principal.tenant_id, actor, new_owner, now)
                        .await?;
                self.audit(
                    db,
                    principal,
                    operation,
                    "membership",
                    &new_owner.to_string(),
                    None,
                    Some(json!({"new_owner": new_owner})),
                    now,
                )
                .await?;
                Ok(pair)
            })?;
            self.events.publish(&DomainEvent::OwnershipTransferred {
                tenant_id: principal.tenant_id,
                from: actor.user_id,
                to: new_owner,
            });
            Ok(pair)
        })
        .await
    }

    /// The caller's profile in the tenant.
    pub async fn get_profile(&self, principal: &Principal) -> Result<Profile, SpineError> {
        let operation = Operation::AccountGetProfile;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                Ok(users::get_profile(db, principal.tenant_id, actor.user_id).await?)
            })
        })
        .await
    }

    /// Updates the caller's profile.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        update: ProfileUpdate,
    ) -> Result<UserAccount, SpineError> {
        let operation = Operation::AccountUpdateProfile;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let now = self.clock.now();
            write_use_case!(self, principal, operation, |db| {
                let account = users::update_profile(
                    db,
                    principal.tenant_id,
                    actor.user_id,
                    update.clone(),
                    now,
                )
                .await?;
                let after = json!({"name": account.name, "time_zone": account.time_zone});
                self.audit(
                    db,
                    principal,
                    operation,
                    "user",
                    &actor.user_id.to_string(),
                    None,
                    Some(after),
                    now,
                )
                .await?;
                Ok(account)
            })
        })
        .await
    }

    /// Opens a support ticket as the caller.
    pub async fn open_ticket(
        &self,
        principal: &Principal,
        ticket: OpenTicket,
    ) -> Result<Ticket, SpineError> {
        let operation = Operation::SupportOpenTicket;
        self.observe(operation, Subject::Principal(principal), async {
            let actor = self.acting(principal, operation).await?;
            let now = self.clock.now();
            write_use_case!(self, principal, operation, |db| {
                let opened = support::create_support_ticket(
                    db,
                    principal.tenant_id,
                    actor.user_id,
                    ticket.clone(),
                    now,
                )
                .await?;
                let after = json!({"category": opened.category, "priority": opened.priority});
                self.audit(
                    db,
                    principal,
                    operation,
                    "support_ticket",
                    &opened.id.to_string(),
                    None,
                    Some(after),
                    now,
                )
                .await?;
                Ok(opened)
            })
        })
        .await
    }

    /// Where customers reach support, as the host configured it
    /// ([`Spine::with_support_contact`]); without one, `support_contact_not_configured` (404).
    pub async fn support_contact(
        &self,
        principal: &Principal,
    ) -> Result<SupportContact, SpineError> {
        let operation = Operation::SupportGetContact;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                self.support
                    .as_deref()
                    .cloned()
                    .ok_or(SpineError::SupportContactNotConfigured)
            })
        })
        .await
    }

    /// The tenant's tickets.
    pub async fn list_tickets(
        &self,
        principal: &Principal,
        status: Option<TicketStatus>,
        page: OffsetPage,
    ) -> Result<Page<Ticket>, SpineError> {
        let operation = Operation::SupportListTickets;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                Ok(support::list_support_tickets(db, principal.tenant_id, status, page).await?)
            })
        })
        .await
    }

    /// The billing summary from stored data.
    pub async fn billing_summary(
        &self,
        principal: &Principal,
    ) -> Result<BillingSummary, SpineError> {
        let operation = Operation::BillingSummary;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            let now = self.clock.now();
            read_use_case!(self, principal, operation, |db| {
                Ok(billing::get_billing_summary(db, principal.tenant_id, now).await?)
            })
        })
        .await
    }

    /// The tenant's invoices.
    pub async fn list_invoices(
        &self,
        principal: &Principal,
        page: OffsetPage,
    ) -> Result<Page<Invoice>, SpineError> {
        let operation = Operation::BillingInvoices;
        self.observe(operation, Subject::Principal(principal), async {
            self.acting(principal, operation).await?;
            read_use_case!(self, principal, operation, |db| {
                Ok(billing::get_billing_invoices(db, principal.tenant_id, page).await?)
            })
        })
        .await
    }
}
