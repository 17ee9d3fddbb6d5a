//! Projects: tenants as their members see them (the customer console's project pages).

use super::TenantError;
use crate::{Db, OffsetPage, PageRequest};
use account_drivers::get_accounts_facade_driver;
use account_drivers::tenants::{TenantDetailSnapshot, TenantFilter, TenantSnapshot};
use account_drivers::types::{OnboardingState, PlanCode, TenantId, TenantStatus, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Who is asking, and in which tenant (project).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The tenant the request is about.
    pub tenant_id: TenantId,
    /// The signed-in user making it.
    pub user_id: UserId,
}

/// Filters of the projects list; serialised with only the filters that apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProjectFilters {
    /// Only projects in this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TenantStatus>,
}

impl ProjectFilters {
    /// Only projects in `status`.
    pub fn with_status(mut self, status: TenantStatus) -> Self {
        self.status = Some(status);
        self
    }
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
#[non_exhaustive]
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
    pub plan: PlanCode,
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
#[non_exhaustive]
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
    pub plan: PlanCode,
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
    /// Requests per minute of the whole tenant, every credential together (`None`: no
    /// tenant-wide limit).
    pub max_requests_per_minute: Option<i32>,
    /// Runs admitted today (zero when the stored counter is of another day).
    pub runs_today: i32,
    /// Runs admitted this month (zero when the stored counter is of another month).
    pub runs_this_month: i32,
    /// Tokens used this month (zero when the stored counter is of another month).
    pub tokens_this_month: i64,
    /// Tokens reserved by runs queued or running (their declared estimates).
    pub tokens_reserved: i64,
    /// Runs queued or running now.
    pub active_runs: i32,
    /// Workers with runs queued or running now.
    pub active_workers: i32,
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
    pub(crate) fn new(t: TenantDetailSnapshot, now: DateTime<Utc>) -> Self {
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
            max_requests_per_minute: t.quotas.max_requests_per_minute,
            runs_today: usage.runs_today,
            runs_this_month: usage.runs_this_month,
            tokens_this_month: usage.tokens_this_month,
            tokens_reserved: usage.tokens_reserved,
            active_runs: usage.active_runs,
            active_workers: usage.active_workers,
            onboarding_state: t.onboarding_state,
            onboarding_complete: t.onboarding_state == OnboardingState::Complete,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// The caller's membership in their tenant; a non-member gets
/// [`TenantError::ProjectNotFound`], so a tenant's existence does not leak.
async fn require_member(db: Db<'_>, caller: Caller) -> Result<(), TenantError> {
    get_accounts_facade_driver(db)
        .fetch_membership(caller.tenant_id, caller.user_id)
        .await?
        .ok_or(TenantError::ProjectNotFound)?;
    Ok(())
}

/// The projects (tenants) `user` is a member of, oldest first, optionally only those in one
/// status.
pub async fn list_projects(
    db: Db<'_>,
    user: UserId,
    filters: ProjectFilters,
    page: OffsetPage,
) -> Result<ProjectsListResult, TenantError> {
    let page = PageRequest::new(page)?.into_page();
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
/// Not a member, or no such project: [`TenantError::ProjectNotFound`].
pub async fn get_project_detail(
    db: Db<'_>,
    caller: Caller,
    now: DateTime<Utc>,
) -> Result<ProjectDetailResult, TenantError> {
    require_member(db, caller).await?;
    let detail = get_accounts_facade_driver(db)
        .fetch_tenant_detail(caller.tenant_id)
        .await?
        .ok_or(TenantError::ProjectNotFound)?;
    Ok(ProjectDetailResult::new(detail, now))
}
