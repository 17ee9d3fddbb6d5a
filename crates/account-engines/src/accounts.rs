//! The accounts facade (`AccountsFacade`): one entry point for the customer console's account
//! pages (projects, users and roles, profile, billing, support, invitations).
//!
//! It decides nothing itself. Each method checks that the caller is a member of the tenant
//! it names, delegates to the engine that owns the rule (memberships, profile, invitations,
//! support tickets, billing) and shapes the answer as a serialisable `*Result`. The views no
//! engine had (the caller's projects, a project's detail, the tenant's members) read driver
//! snapshots directly. Like every engine it runs on the caller's [`Db`] handle and takes the
//! clock's `now`; it never begins or commits: the spine owns the transaction (and the audit
//! row of every write).
//!
//! Refusals are [`AccountsError`]s that keep the delegated engine's stable code and HTTP
//! status; [`AccountsErrorResult`] is their response body.

mod error;
mod results;

pub use error::{AccountsError, AccountsErrorResult};
pub use results::{
    AcceptInvitationResult, BillingSummaryResult, InvitationListResult, InvitationResult,
    InvitedUser, InvoiceListResult, InvoiceSummaryResult, JsonObject, MeterUsageResult,
    ProfileResult, ProfileUpdateResult, ProjectDetailResult, ProjectFilters, ProjectSummaryResult,
    ProjectsListResult, SupportContactResult, SupportTicketListResult, SupportTicketResult,
    TenantUserResult, TenantUsersListResult, UsageThisPeriodResult, UserDetailResult, UserFilters,
    UserSummaryResult, UsersListResult,
};

use crate::api_keys::ApiKeyPepper;
use crate::invitations::{self, Invitee};
use crate::memberships::{self, Acting};
use crate::support::{self, OpenTicket, SupportContact};
use crate::users::{self, ProfileUpdate};
use crate::{Db, OffsetPage, billing};
use account_drivers::get_accounts_facade_driver;
use account_drivers::types::{
    InvitationId, InvitationStatus, MembershipRole, TenantId, TicketStatus, UserId,
};
use chrono::{DateTime, Utc};

/// Most rows a page may hold.
const MAX_PAGE: u64 = 100;

/// Who is asking, and in which tenant (project).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The tenant the request is about.
    pub tenant_id: TenantId,
    /// The signed-in user making it.
    pub user_id: UserId,
}

/// Unified facade for all accounts-domain operations.
///
/// Built once by the host with its configuration ([`get_accounts_facade`]) and shared; it
/// holds no connection and no state that changes.
#[derive(Clone, Debug)]
pub struct AccountsFacade {
    support: SupportContact,
    pepper: ApiKeyPepper,
}

/// The accounts facade for this configuration: the support contact it answers
/// [`AccountsFacade::get_support_contact`] with, and the pepper invitation tokens are
/// digested with (the same one the API keys use).
///
/// ```rust
/// use account_engines::accounts::get_accounts_facade;
/// use account_engines::api_keys::ApiKeyPepper;
/// use account_engines::support::SupportContact;
/// use account_engines::types::Email;
///
/// let facade = get_accounts_facade(
///     SupportContact {
///         email: Email::parse("support@example.com")?,
///         hours: "Mon-Fri 09:00-17:00 CET".into(),
///         response_time: "within one business day".into(),
///     },
///     ApiKeyPepper::from_bytes(&[7; 32])?,
/// );
/// let contact = facade.get_support_contact();
/// assert_eq!(contact.email.as_str(), "support@example.com");
/// assert_eq!(contact.response_time, "within one business day");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn get_accounts_facade(support: SupportContact, pepper: ApiKeyPepper) -> AccountsFacade {
    AccountsFacade { support, pepper }
}

fn check_page(page: OffsetPage) -> Result<(), AccountsError> {
    if page.limit == 0 || page.limit > MAX_PAGE {
        return Err(AccountsError::InvalidPage);
    }
    Ok(())
}

/// The caller's membership in their tenant, as the acting member; a non-member gets
/// [`AccountsError::ProjectNotFound`], so a tenant's existence does not leak.
async fn acting(db: Db<'_>, caller: Caller) -> Result<Acting, AccountsError> {
    let membership = get_accounts_facade_driver(db)
        .fetch_membership(caller.tenant_id, caller.user_id)
        .await?
        .ok_or(AccountsError::ProjectNotFound)?;
    Ok(Acting {
        user_id: caller.user_id,
        role: membership.role,
    })
}

/// The projects (tenants) `user` is a member of, oldest first, optionally only those in one
/// status. Needs no facade configuration, so hosts without a support contact can call it.
pub async fn list_projects(
    db: Db<'_>,
    user: UserId,
    filters: ProjectFilters,
    page: OffsetPage,
) -> Result<ProjectsListResult, AccountsError> {
    check_page(page)?;
    let found = get_accounts_facade_driver(db)
        .fetch_tenants(user, filters.into(), page)
        .await?;
    Ok(ProjectsListResult {
        total: found.total,
        has_more: found.has_more,
        items: found.items.into_iter().map(Into::into).collect(),
        filters_applied: filters,
    })
}

/// The caller's project in detail: quotas, counters as of `now`, onboarding state.
/// Not a member, or no such project: [`AccountsError::ProjectNotFound`].
pub async fn get_project_detail(
    db: Db<'_>,
    caller: Caller,
    now: DateTime<Utc>,
) -> Result<ProjectDetailResult, AccountsError> {
    acting(db, caller).await?;
    let detail = get_accounts_facade_driver(db)
        .fetch_tenant_detail(caller.tenant_id)
        .await?
        .ok_or(AccountsError::ProjectNotFound)?;
    Ok(ProjectDetailResult::new(detail, now))
}

impl AccountsFacade {
    /// [`list_projects`], as the seed's facade method.
    pub async fn list_projects(
        &self,
        db: Db<'_>,
        user: UserId,
        filters: ProjectFilters,
        page: OffsetPage,
    ) -> Result<ProjectsListResult, AccountsError> {
        list_projects(db, user, filters, page).await
    }

    /// [`get_project_detail`], as the seed's facade method.
    pub async fn get_project_detail(
        &self,
        db: Db<'_>,
        caller: Caller,
        now: DateTime<Utc>,
    ) -> Result<ProjectDetailResult, AccountsError> {
        get_project_detail(db, caller, now).await
    }

    /// The tenant's users with their roles, by email, optionally filtered by role and status.
    pub async fn list_users(
        &self,
        db: Db<'_>,
        caller: Caller,
        filters: UserFilters,
        page: OffsetPage,
    ) -> Result<UsersListResult, AccountsError> {
        acting(db, caller).await?;
        let found = memberships::list_users(db, caller.tenant_id, filters.into(), page).await?;
        Ok(UsersListResult {
            total: found.total,
            has_more: found.has_more,
            items: found.items.into_iter().map(Into::into).collect(),
            filters_applied: filters,
        })
    }

    /// One user of the tenant, with the capabilities their role gives.
    pub async fn get_user_detail(
        &self,
        db: Db<'_>,
        caller: Caller,
        user: UserId,
    ) -> Result<UserDetailResult, AccountsError> {
        acting(db, caller).await?;
        Ok(memberships::user_detail(db, caller.tenant_id, user)
            .await?
            .into())
    }

    /// The tenant's members, oldest membership first.
    pub async fn list_tenant_users(
        &self,
        db: Db<'_>,
        caller: Caller,
        page: OffsetPage,
    ) -> Result<TenantUsersListResult, AccountsError> {
        check_page(page)?;
        acting(db, caller).await?;
        let found = get_accounts_facade_driver(db)
            .fetch_tenant_memberships(caller.tenant_id, page)
            .await?;
        Ok(TenantUsersListResult {
            total: found.total,
            users: found.items.into_iter().map(Into::into).collect(),
        })
    }

    /// Gives `user` the role `role`, with the caller's role as stored deciding (only owners
    /// change roles, never their own, never leaving the tenant without an owner).
    pub async fn update_user_role(
        &self,
        db: Db<'_>,
        caller: Caller,
        user: UserId,
        role: MembershipRole,
        now: DateTime<Utc>,
    ) -> Result<TenantUserResult, AccountsError> {
        let actor = acting(db, caller).await?;
        let change = memberships::change_role(db, caller.tenant_id, actor, user, role, now).await?;
        Ok(change.membership.into())
    }

    /// Removes `user` from the tenant (or lets the caller leave); returns the membership
    /// removed.
    pub async fn remove_user(
        &self,
        db: Db<'_>,
        caller: Caller,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<TenantUserResult, AccountsError> {
        let actor = acting(db, caller).await?;
        Ok(
            memberships::remove_member(db, caller.tenant_id, actor, user, now)
                .await?
                .membership
                .into(),
        )
    }

    /// The caller's profile within the tenant.
    pub async fn get_profile(
        &self,
        db: Db<'_>,
        caller: Caller,
    ) -> Result<ProfileResult, AccountsError> {
        Ok(users::get_profile(db, caller.tenant_id, caller.user_id)
            .await?
            .into())
    }

    /// Updates the caller's display name, time zone and preferences (shallow merge; a `null`
    /// value removes a key).
    pub async fn update_profile(
        &self,
        db: Db<'_>,
        caller: Caller,
        update: ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<ProfileUpdateResult, AccountsError> {
        Ok(
            users::update_profile(db, caller.tenant_id, caller.user_id, update, now)
                .await?
                .into(),
        )
    }

    /// The tenant's plan, quotas, subscription period and usage, from stored data as of
    /// `now`.
    pub async fn get_billing_summary(
        &self,
        db: Db<'_>,
        caller: Caller,
        now: DateTime<Utc>,
    ) -> Result<BillingSummaryResult, AccountsError> {
        acting(db, caller).await?;
        Ok(billing::summary(db, caller.tenant_id, now).await?.into())
    }

    /// The tenant's invoices, newest first.
    pub async fn get_billing_invoices(
        &self,
        db: Db<'_>,
        caller: Caller,
        page: OffsetPage,
    ) -> Result<InvoiceListResult, AccountsError> {
        acting(db, caller).await?;
        let found = billing::invoices(db, caller.tenant_id, page).await?;
        Ok(InvoiceListResult {
            message: (found.total == 0).then(|| "no invoices have been issued yet".to_owned()),
            total: found.total,
            invoices: found.items.into_iter().map(Into::into).collect(),
        })
    }

    /// Where customers reach support, as configured.
    pub fn get_support_contact(&self) -> SupportContactResult {
        SupportContactResult {
            email: self.support.email.clone(),
            hours: self.support.hours.clone(),
            response_time: self.support.response_time.clone(),
        }
    }

    /// Opens a support ticket as the caller.
    pub async fn create_support_ticket(
        &self,
        db: Db<'_>,
        caller: Caller,
        ticket: OpenTicket,
        now: DateTime<Utc>,
    ) -> Result<SupportTicketResult, AccountsError> {
        acting(db, caller).await?;
        Ok(
            support::open_ticket(db, caller.tenant_id, caller.user_id, ticket, now)
                .await?
                .into(),
        )
    }

    /// The tenant's tickets, newest first, optionally only those in one status.
    pub async fn list_support_tickets(
        &self,
        db: Db<'_>,
        caller: Caller,
        status: Option<TicketStatus>,
        page: OffsetPage,
    ) -> Result<SupportTicketListResult, AccountsError> {
        acting(db, caller).await?;
        let found = support::list_tickets(db, caller.tenant_id, status, page).await?;
        Ok(SupportTicketListResult {
            total: found.total,
            tickets: found.items.into_iter().map(Into::into).collect(),
        })
    }

    /// Invites `email` into the tenant with `role` (never above the caller's own role);
    /// the token in the answer is shown once, for delivery.
    pub async fn invite_user(
        &self,
        db: Db<'_>,
        caller: Caller,
        email: &str,
        role: MembershipRole,
        now: DateTime<Utc>,
    ) -> Result<InvitedUser, AccountsError> {
        let actor = acting(db, caller).await?;
        let issued =
            invitations::invite(db, &self.pepper, caller.tenant_id, actor, email, role, now)
                .await?;
        Ok(InvitedUser {
            invitation: issued.invitation.into(),
            token: issued.token,
        })
    }

    /// The tenant's invitations, newest first; pending ones past their expiry at `now` list
    /// as expired.
    pub async fn list_invitations(
        &self,
        db: Db<'_>,
        caller: Caller,
        status: Option<InvitationStatus>,
        page: OffsetPage,
        now: DateTime<Utc>,
    ) -> Result<InvitationListResult, AccountsError> {
        acting(db, caller).await?;
        let found = invitations::list(db, caller.tenant_id, status, page, now).await?;
        Ok(InvitationListResult {
            total: found.total,
            invitations: found.items.into_iter().map(Into::into).collect(),
        })
    }

    /// Accepts invitation `invitation` of `tenant` with its token, creating the invitee's
    /// account when needed. The invitee is not a member yet, so no caller is checked: the
    /// token is the authority.
    pub async fn accept_invitation(
        &self,
        db: Db<'_>,
        tenant: TenantId,
        invitation: InvitationId,
        token: &str,
        invitee: Invitee,
        now: DateTime<Utc>,
    ) -> Result<AcceptInvitationResult, AccountsError> {
        let membership =
            invitations::accept(db, &self.pepper, tenant, invitation, token, invitee, now).await?;
        Ok(AcceptInvitationResult::accepted(&membership))
    }
}
