//! What the accounts facade answers: typed, serialisable views of engine and driver
//! snapshots, named and shaped as the seed names them (ids, enums and times stay typed;
//! serde writes them as the API shows them).

use crate::billing::{BillingSummary, MeterTotal, UsageWindowSource};
use crate::invitations::InvitationToken;
use crate::roles::RoleCapabilities;
use account_drivers::billing::InvoiceSnapshot;
use account_drivers::invitations::InvitationSnapshot;
use account_drivers::memberships::MembershipSnapshot;
use account_drivers::support::TicketSnapshot;
use account_drivers::tenants::{TenantDetailSnapshot, TenantFilter, TenantSnapshot};
use account_drivers::types::{
    BillingPeriod, Email, InvitationId, InvitationStatus, InvoiceId, InvoiceStatus, MembershipRole,
    OnboardingState, Plan, SubscriptionStatus, TenantId, TenantStatus, TicketCategory, TicketId,
    TicketPriority, TicketStatus, UsageUnit, UserId, UserStatus,
};
use account_drivers::users::{
    ProfileSnapshot, UserAccountSnapshot, UserDetailSnapshot, UserFilter, UserSnapshot,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A JSON object, as preferences are stored.
pub type JsonObject = Map<String, Json>;

fn object(value: Option<Json>) -> Option<JsonObject> {
    match value {
        Some(Json::Object(map)) => Some(map),
        _ => None,
    }
}

/// Filters of the projects list; serialised with only the filters that apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProjectFilters {
    /// Only projects in this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TenantStatus>,
}

impl From<ProjectFilters> for TenantFilter {
    fn from(filters: ProjectFilters) -> Self {
        TenantFilter {
            status: filters.status,
        }
    }
}

/// Project summary for list view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectSummaryResult {
    /// The project's (tenant's) id.
    pub project_id: TenantId,
    /// Display name.
    pub name: String,
    /// Description; tenants store none yet, so this is always `None`.
    pub description: Option<String>,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// Plan.
    pub plan: Plan,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change (always stored, so never absent).
    pub updated_at: DateTime<Utc>,
}

impl From<TenantSnapshot> for ProjectSummaryResult {
    fn from(t: TenantSnapshot) -> Self {
        Self {
            project_id: t.id,
            name: t.name,
            description: None,
            status: t.status,
            plan: t.plan,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Projects list response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectsListResult {
    /// This page of the caller's projects, oldest first.
    pub items: Vec<ProjectSummaryResult>,
    /// Projects matching the filters on all pages.
    pub total: u64,
    /// Whether pages follow.
    pub has_more: bool,
    /// The filters this list was read with.
    pub filters_applied: ProjectFilters,
}

/// Project detail response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectDetailResult {
    /// The project's (tenant's) id.
    pub project_id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique handle.
    pub slug: String,
    /// Description; tenants store none yet, so this is always `None`.
    pub description: Option<String>,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// Plan.
    pub plan: Plan,
    /// Distinct workers allowed.
    pub max_workers: i32,
    /// Runs admitted per UTC day.
    pub max_runs_per_day: i32,
    /// Runs queued or running at once.
    pub max_concurrent_runs: i32,
    /// Tokens per UTC calendar month.
    pub max_tokens_per_month: i64,
    /// Active API keys allowed.
    pub max_api_keys: i32,
    /// Runs admitted today (zero when the stored counter is of another day).
    pub runs_today: i32,
    /// Runs admitted this month (zero when the stored counter is of another month).
    pub runs_this_month: i32,
    /// Tokens used this month (zero when the stored counter is of another month).
    pub tokens_this_month: i64,
    /// Onboarding progress (serialised by name, e.g. `API_KEY_CREATED`).
    pub onboarding_state: OnboardingState,
    /// Whether onboarding reached `COMPLETE`.
    pub onboarding_complete: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change (always stored, so never absent).
    pub updated_at: DateTime<Utc>,
}

impl ProjectDetailResult {
    pub(super) fn new(t: TenantDetailSnapshot, now: DateTime<Utc>) -> Self {
        let usage = crate::billing::current_usage(&t, now);
        Self {
            project_id: t.id,
            name: t.name,
            slug: t.slug,
            description: None,
            status: t.status,
            plan: t.plan,
            max_workers: t.quotas.max_workers,
            max_runs_per_day: t.quotas.max_runs_per_day,
            max_concurrent_runs: t.quotas.max_concurrent_runs,
            max_tokens_per_month: t.quotas.max_tokens_per_month,
            max_api_keys: t.quotas.max_api_keys,
            runs_today: usage.runs_today,
            runs_this_month: usage.runs_this_month,
            tokens_this_month: usage.tokens_this_month,
            onboarding_state: t.onboarding_state,
            onboarding_complete: t.onboarding_state == OnboardingState::Complete,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Filters of the users list; serialised with only the filters that apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserFilters {
    /// Only members with this role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<MembershipRole>,
    /// Only users with this account status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<UserStatus>,
}

impl From<UserFilters> for UserFilter {
    fn from(filters: UserFilters) -> Self {
        UserFilter {
            role: filters.role,
            status: filters.status,
        }
    }
}

/// User summary for list view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserSummaryResult {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Account status.
    pub status: UserStatus,
    /// Account creation time.
    pub created_at: DateTime<Utc>,
    /// Last sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<UserSnapshot> for UserSummaryResult {
    fn from(u: UserSnapshot) -> Self {
        Self {
            user_id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
            status: u.status,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// Users list response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsersListResult {
    /// This page of the tenant's users, by email.
    pub items: Vec<UserSummaryResult>,
    /// Users matching the filters on all pages.
    pub total: u64,
    /// Whether pages follow.
    pub has_more: bool,
    /// The filters this list was read with.
    pub filters_applied: UserFilters,
}

/// User detail response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserDetailResult {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Account status.
    pub status: UserStatus,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// `google`, `azure`, `email`, ...
    pub oauth_provider: Option<String>,
    /// When the user joined the tenant.
    pub membership_created_at: DateTime<Utc>,
    /// Who invited the user into the tenant.
    pub invited_by: Option<UserId>,
    /// The role may issue, rotate and revoke API keys.
    pub can_manage_keys: bool,
    /// The role may start runs.
    pub can_run_workers: bool,
    /// The role may read runs.
    pub can_view_runs: bool,
    /// Account creation time.
    pub created_at: DateTime<Utc>,
    /// Last change to the account (always stored, so never absent).
    pub updated_at: DateTime<Utc>,
    /// Last sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<(UserDetailSnapshot, RoleCapabilities)> for UserDetailResult {
    fn from((u, can): (UserDetailSnapshot, RoleCapabilities)) -> Self {
        Self {
            user_id: u.id,
            email: u.email,
            name: u.name,
            avatar_url: u.avatar_url,
            role: u.role,
            status: u.status,
            email_verified: u.email_verified,
            oauth_provider: u.oauth_provider,
            membership_created_at: u.membership_created_at,
            invited_by: u.invited_by,
            can_manage_keys: can.can_manage_keys,
            can_run_workers: can.can_run_workers,
            can_view_runs: can.can_view_runs,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// User in tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantUserResult {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// When the user joined the tenant.
    pub joined_at: DateTime<Utc>,
}

impl From<MembershipSnapshot> for TenantUserResult {
    fn from(m: MembershipSnapshot) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role,
            joined_at: m.created_at,
        }
    }
}

/// List of tenant users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantUsersListResult {
    /// This page of the tenant's members, oldest membership first.
    pub users: Vec<TenantUserResult>,
    /// Members on all pages.
    pub total: u64,
}

/// User profile response.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileResult {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// The tenant the profile is read in.
    pub tenant_id: TenantId,
    /// The tenant's display name (always stored, so never absent).
    pub tenant_name: String,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Account creation time.
    pub created_at: DateTime<Utc>,
    /// Preferences object, when one was ever saved.
    pub preferences: Option<JsonObject>,
}

impl From<ProfileSnapshot> for ProfileResult {
    fn from(p: ProfileSnapshot) -> Self {
        Self {
            user_id: p.user_id,
            email: p.email,
            name: p.name,
            avatar_url: p.avatar_url,
            tenant_id: p.tenant_id,
            tenant_name: p.tenant_name,
            role: p.role,
            created_at: p.created_at,
            preferences: object(p.preferences),
        }
    }
}

/// Profile update response.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileUpdateResult {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name after the update.
    pub display_name: Option<String>,
    /// IANA time zone after the update.
    pub timezone: Option<String>,
    /// Preferences after the merge (empty when none were ever saved).
    pub preferences: JsonObject,
    /// When the update was written.
    pub updated_at: DateTime<Utc>,
}

impl From<UserAccountSnapshot> for ProfileUpdateResult {
    fn from(u: UserAccountSnapshot) -> Self {
        Self {
            user_id: u.id,
            email: u.email,
            display_name: u.name,
            timezone: u.time_zone,
            preferences: object(u.preferences).unwrap_or_default(),
            updated_at: u.updated_at,
        }
    }
}

/// One meter's total over the usage window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeterUsageResult {
    /// Meter.
    pub meter_name: String,
    /// Unit.
    pub unit: UsageUnit,
    /// Sum of the recorded amounts.
    pub total: i64,
}

impl From<MeterTotal> for MeterUsageResult {
    fn from(m: MeterTotal) -> Self {
        Self {
            meter_name: m.meter_name,
            unit: m.unit,
            total: m.total,
        }
    }
}

/// Usage over the current billing period, from the usage records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageThisPeriodResult {
    /// First instant of the window.
    pub period_start: DateTime<Utc>,
    /// First instant after the window.
    pub period_end: DateTime<Utc>,
    /// Whether the window is the subscription's period or the calendar month.
    pub source: UsageWindowSource,
    /// Totals per meter, by meter name.
    pub meters: Vec<MeterUsageResult>,
}

/// Billing summary response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BillingSummaryResult {
    /// The tenant's plan (which sets its quotas).
    pub plan: Plan,
    /// The subscription's status; `None` when the billing system reported no subscription.
    pub status: Option<SubscriptionStatus>,
    /// How often the subscription bills; `None` without a subscription.
    pub billing_period: Option<BillingPeriod>,
    /// Start of the subscription's current period.
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the subscription's current period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Usage this period.
    pub usage_this_period: UsageThisPeriodResult,
    /// When the next invoice is issued, when one is.
    pub next_invoice_date: Option<DateTime<Utc>>,
    /// Runs admitted per UTC day.
    pub max_runs_per_day: i32,
    /// Tokens per UTC calendar month.
    pub max_tokens_per_month: i64,
    /// Runs admitted this calendar month.
    pub runs_this_month: i32,
    /// Tokens used this calendar month.
    pub tokens_this_month: i64,
}

impl From<BillingSummary> for BillingSummaryResult {
    fn from(s: BillingSummary) -> Self {
        let subscription = s.subscription.as_ref();
        Self {
            plan: s.tenant.plan,
            status: subscription.map(|sub| sub.status),
            billing_period: s.billing_period,
            current_period_start: subscription.and_then(|sub| sub.current_period_start),
            current_period_end: subscription.and_then(|sub| sub.current_period_end),
            usage_this_period: UsageThisPeriodResult {
                period_start: s.usage_window.start,
                period_end: s.usage_window.end,
                source: s.usage_window.source,
                meters: s.usage.into_iter().map(Into::into).collect(),
            },
            next_invoice_date: s.next_invoice_date,
            max_runs_per_day: s.tenant.quotas.max_runs_per_day,
            max_tokens_per_month: s.tenant.quotas.max_tokens_per_month,
            runs_this_month: s.counters.runs_this_month,
            tokens_this_month: s.counters.tokens_this_month,
        }
    }
}

/// Invoice summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceSummaryResult {
    /// Id.
    pub invoice_id: InvoiceId,
    /// Billed period start.
    pub period_start: DateTime<Utc>,
    /// Billed period end.
    pub period_end: DateTime<Utc>,
    /// Amount due, in cents of `currency`.
    pub amount_cents: i64,
    /// ISO 4217 code, lower case (an addition to the seed: cents mean nothing without it).
    pub currency: String,
    /// Status.
    pub status: InvoiceStatus,
    /// The invoice number (when the billing system gave one) and the billed period.
    pub description: String,
}

impl From<InvoiceSnapshot> for InvoiceSummaryResult {
    fn from(i: InvoiceSnapshot) -> Self {
        let period = format!(
            "{} to {}",
            i.period_start.format("%Y-%m-%d"),
            i.period_end.format("%Y-%m-%d")
        );
        let description = match &i.number {
            Some(number) => format!("Invoice {number}, {period}"),
            None => format!("Invoice for {period}"),
        };
        Self {
            invoice_id: i.id,
            period_start: i.period_start,
            period_end: i.period_end,
            amount_cents: i.amount_due_cents,
            currency: i.currency,
            status: i.status,
            description,
        }
    }
}

/// Invoice list response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceListResult {
    /// This page of invoices, newest first.
    pub invoices: Vec<InvoiceSummaryResult>,
    /// Invoices on all pages.
    pub total: u64,
    /// A note for the reader when there is nothing to list.
    pub message: Option<String>,
}

/// Support contact info.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SupportContactResult {
    /// Support email address.
    pub email: Email,
    /// When support is staffed.
    pub hours: String,
    /// Response-time promise.
    pub response_time: String,
}

/// Support ticket response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SupportTicketResult {
    /// Id.
    pub id: TicketId,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub description: String,
    /// Category.
    pub category: TicketCategory,
    /// Priority.
    pub priority: TicketPriority,
    /// Status.
    pub status: TicketStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Resolution text.
    pub resolution: Option<String>,
    /// Resolution time.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<TicketSnapshot> for SupportTicketResult {
    fn from(t: TicketSnapshot) -> Self {
        Self {
            id: t.id,
            subject: t.subject,
            description: t.description,
            category: t.category,
            priority: t.priority,
            status: t.status,
            created_at: t.created_at,
            updated_at: t.updated_at,
            resolution: t.resolution,
            resolved_at: t.resolved_at,
        }
    }
}

/// Support ticket list response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SupportTicketListResult {
    /// This page of tickets, newest first.
    pub tickets: Vec<SupportTicketResult>,
    /// Tickets matching the filter on all pages.
    pub total: u64,
}

/// Invitation response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvitationResult {
    /// Id.
    pub id: InvitationId,
    /// Normalised invitee email.
    pub email: String,
    /// Role granted on acceptance.
    pub role: MembershipRole,
    /// Status (a pending invitation past its expiry lists as expired).
    pub status: InvitationStatus,
    /// Creation (or last resend) time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Who invited.
    pub invited_by: UserId,
}

impl From<InvitationSnapshot> for InvitationResult {
    fn from(i: InvitationSnapshot) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role,
            status: i.status,
            created_at: i.created_at,
            expires_at: i.expires_at,
            invited_by: i.invited_by,
        }
    }
}

/// A new invitation and its one-time token. Not serialisable on purpose: the token goes to
/// the invitee (by mail), never into a response body or a log.
#[derive(Debug)]
pub struct InvitedUser {
    /// The invitation as stored.
    pub invitation: InvitationResult,
    /// The token to deliver; never retrievable again.
    pub token: InvitationToken,
}

/// Invitation list response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvitationListResult {
    /// This page of invitations, newest first.
    pub invitations: Vec<InvitationResult>,
    /// Invitations matching the filter on all pages.
    pub total: u64,
}

/// Invitation acceptance result.
///
/// The facade answers a refused acceptance with an error; [`AcceptInvitationResult::refused`]
/// gives the seed's `success: false` shape for hosts that answer refusals in the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AcceptInvitationResult {
    /// Whether the invitee is now a member.
    pub success: bool,
    /// What happened, for the reader.
    pub message: String,
    /// The tenant joined.
    pub tenant_id: Option<TenantId>,
    /// The role received.
    pub role: Option<MembershipRole>,
}

impl AcceptInvitationResult {
    /// The result of a successful acceptance.
    pub(super) fn accepted(membership: &MembershipSnapshot) -> Self {
        Self {
            success: true,
            message: format!("joined the tenant as {}", membership.role),
            tenant_id: Some(membership.tenant_id),
            role: Some(membership.role),
        }
    }

    /// The result of a refused acceptance, with the error's message.
    ///
    /// ```rust
    /// use account_engines::accounts::{AcceptInvitationResult, AccountsError};
    /// use account_engines::invitations::InvitationError;
    ///
    /// let error = AccountsError::from(InvitationError::Expired);
    /// let refused = AcceptInvitationResult::refused(&error);
    /// assert!(!refused.success);
    /// assert_eq!(refused.message, error.to_string());
    /// assert_eq!(refused.tenant_id, None);
    /// ```
    pub fn refused(error: &super::AccountsError) -> Self {
        Self {
            success: false,
            message: error.to_string(),
            tenant_id: None,
            role: None,
        }
    }
}
