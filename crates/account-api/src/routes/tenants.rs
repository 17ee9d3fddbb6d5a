//! Tenants (projects, as their members see them): list and read the caller's projects, the
//! tenant's own quotas and counters (`/v1/quotas`), and the operator's plan change.
//!
//! The project routes act as a person, so they answer only to a key issued for a user (a
//! personal key, as bootstrap issues the owner's): it acts on that user's behalf, within both
//! its permissions and the user's current role. A machine key (issued for no user) gets a 403.
//!
//! `/v1/platform/...` routes take a platform operator key (`acc_op_...`, created with
//! `account-api operator-key create`); a tenant key is refused with 403.

use crate::AppState;
use crate::auth::{Authenticated, Operator};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, ListQuery, Validate};
use crate::openapi::{plan, tenant_status};
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::tenants::ProjectFilters;
use account_spine::types::{OnboardingState, PlanCode, TenantId, TenantStatus};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A project (tenant) the caller is a member of, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// Display name.
    name: String,
    /// Description (projects have none yet: always `null`).
    description: Option<String>,
    /// Lifecycle status.
    #[schema(schema_with = tenant_status)]
    status: TenantStatus,
    /// Plan.
    #[schema(schema_with = plan)]
    plan: PlanCode,
    /// Creation time.
    created_at: DateTime<Utc>,
    /// Last change.
    updated_at: DateTime<Utc>,
}

/// The filters of `GET /v1/projects?status=` (its page is a [`PageQuery`]).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProjectsFilter {
    /// Only projects in this status.
    #[param(schema_with = tenant_status, required = false)]
    status: Option<TenantStatus>,
}

impl Validate for ProjectsFilter {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// The projects (tenants) the caller is a member of, oldest first, whichever tenant the key
/// belongs to.
#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    operation_id = "list_projects",
    security(("bearer" = []), ("api_key" = [])),
    params(ProjectsFilter, PageQuery),
    responses(
        (status = 200, description = "A page of the caller's projects.", body = ListBody<ProjectView>),
        (status = 403, description = "A machine key (`machine_key_not_allowed`), a key without `read:*`, or a tenant whose status forbids reads (`forbidden`, `tenant_status_forbids`).", body = crate::error::ErrorBody),
        (status = 400, description = "`limit` outside 1 to 100, or an unknown `status` (`invalid_query`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list_projects(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<ProjectsFilter, PageQuery>,
) -> Result<Json<ListBody<ProjectView>>, ApiError> {
    let page = page.offset_page();
    let mut filters = ProjectFilters::default();
    filters.status = filter.status;
    let found = state.spine.list_projects(&principal, filters, page).await?;
    Ok(Json(ListBody::from_page(found, page, |p| ProjectView {
        id: p.project_id,
        name: p.name,
        description: p.description,
        status: p.status,
        plan: p.plan,
        created_at: p.created_at,
        updated_at: p.updated_at,
    })))
}

/// A project in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ProjectPath {
    /// The project's (tenant's) id.
    #[param(value_type = String, format = "uuid")]
    id: TenantId,
}

/// A project (tenant) in detail: quotas, current-period counters, onboarding.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectDetailView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// Display name.
    name: String,
    /// Unique handle.
    slug: String,
    /// Description (projects have none yet: always `null`).
    description: Option<String>,
    /// Lifecycle status.
    #[schema(schema_with = tenant_status)]
    status: TenantStatus,
    /// Plan.
    #[schema(schema_with = plan)]
    plan: PlanCode,
    /// Distinct workers allowed.
    max_workers: i32,
    /// Runs admitted per UTC day.
    max_runs_per_day: i32,
    /// Runs queued or running at once.
    max_concurrent_runs: i32,
    /// Tokens per UTC calendar month.
    max_tokens_per_month: i64,
    /// Active API keys allowed.
    max_api_keys: i32,
    /// Requests per minute of the whole tenant, every credential together (`null`: no
    /// tenant-wide limit).
    max_requests_per_minute: Option<i32>,
    /// Runs admitted today (UTC).
    runs_today: i32,
    /// Runs admitted this month (UTC).
    runs_this_month: i32,
    /// Tokens used this month (UTC).
    tokens_this_month: i64,
    /// Tokens reserved by runs queued or running (their declared `token_estimate`s): a run
    /// is admitted while used plus reserved plus its estimate fits `max_tokens_per_month`.
    tokens_reserved: i64,
    /// Runs queued or running now (against `max_concurrent_runs`).
    active_runs: i32,
    /// Workers with runs queued or running now (against `max_workers`).
    active_workers: i32,
    /// Onboarding progress.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    onboarding_state: OnboardingState,
    /// Whether onboarding reached `COMPLETE`.
    onboarding_complete: bool,
    /// Creation time.
    created_at: DateTime<Utc>,
    /// Last change.
    updated_at: DateTime<Utc>,
}

/// One project (tenant) the caller is a member of.
#[utoipa::path(
    get,
    path = "/v1/projects/{id}",
    tag = "projects",
    operation_id = "get_project",
    security(("bearer" = []), ("api_key" = [])),
    params(ProjectPath),
    responses(
        (status = 200, description = "The project.", body = ProjectDetailView),
        (status = 403, description = "A machine key (`machine_key_not_allowed`), a key without `read:*`, or a tenant whose status forbids reads (`forbidden`, `tenant_status_forbids`).", body = crate::error::ErrorBody),
        (status = 404, description = "No project with this id that the caller is a member of (`project_not_found`); other tenants' projects answer the same.", body = crate::error::ErrorBody),
        (status = 400, description = "The id is not a UUID (`invalid_path`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn get_project(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<ProjectPath>,
) -> Result<Json<ProjectDetailView>, ApiError> {
    let p = state.spine.get_project(&principal, path.id).await?;
    Ok(Json(ProjectDetailView {
        id: p.project_id,
        name: p.name,
        slug: p.slug,
        description: p.description,
        status: p.status,
        plan: p.plan,
        max_workers: p.max_workers,
        max_runs_per_day: p.max_runs_per_day,
        max_concurrent_runs: p.max_concurrent_runs,
        max_tokens_per_month: p.max_tokens_per_month,
        max_api_keys: p.max_api_keys,
        max_requests_per_minute: p.max_requests_per_minute,
        runs_today: p.runs_today,
        runs_this_month: p.runs_this_month,
        tokens_this_month: p.tokens_this_month,
        tokens_reserved: p.tokens_reserved,
        active_runs: p.active_runs,
        active_workers: p.active_workers,
        onboarding_state: p.onboarding_state,
        onboarding_complete: p.onboarding_complete,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }))
}

/// A tenant's id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TenantPath {
    /// The tenant's id.
    #[param(value_type = String, format = "uuid")]
    pub(crate) tenant_id: TenantId,
}

/// `PUT /v1/platform/tenants/{tenant_id}/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanBody {
    /// The new plan.
    #[schema(schema_with = plan)]
    plan: PlanCode,
}

impl Validate for PlanBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// The plan now in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanView {
    /// The plan.
    #[schema(schema_with = plan)]
    plan: PlanCode,
}

/// Moves a tenant to another plan and re-applies its quotas (platform operators only).
#[utoipa::path(
    put,
    path = "/v1/platform/tenants/{tenant_id}/plan",
    tag = "platform",
    operation_id = "platform_change_plan",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath),
    request_body = PlanBody,
    responses(
        (status = 200, description = "Changed.", body = PlanView),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such tenant (`tenant_not_found`).", body = crate::error::ErrorBody),
        (status = 409, description = "Already on the newest version on sale of this plan (`same_plan`), or the tenant's status allows no plan change (`tenant_inactive`).", body = crate::error::ErrorBody),
        (status = 422, description = "`plan_not_found` or `plan_retired` (field `plan`: no such plan, or none of its versions on sale), or `invalid_request` (field `plan`: not a plan code).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn change_plan(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Json<PlanView>, ApiError> {
    state
        .spine
        .change_plan(&operator, path.tenant_id, body.plan.clone())
        .await?;
    Ok(Json(PlanView { plan: body.plan }))
}

/// The tenant's plan quotas and its counters in the current periods.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QuotasView {
    /// The plan.
    #[schema(schema_with = plan)]
    plan: PlanCode,
    /// The lifecycle status.
    #[schema(schema_with = tenant_status)]
    status: TenantStatus,
    /// Runs allowed per UTC day.
    max_runs_per_day: i32,
    /// Runs at once.
    max_concurrent_runs: i32,
    /// Tokens per UTC month.
    max_tokens_per_month: i64,
    /// Active API keys.
    max_api_keys: i32,
    /// Requests per minute of the whole tenant, every credential together (`null`: no
    /// tenant-wide limit).
    max_requests_per_minute: Option<i32>,
    /// Days the tenant's audit log is kept before the purge deletes older entries (`null`:
    /// forever).
    audit_retention_days: Option<i32>,
    /// Workers.
    max_workers: i32,
    /// Seats: members plus pending invitations; an invitation beyond them is refused
    /// (`quota_members`).
    max_members: i32,
    /// Live memory pins held at once; a new pin beyond them is refused.
    max_memory_pins: i64,
    /// Bytes of one pin's JSON value; a larger value is refused.
    max_pin_value_bytes: i32,
    /// Runs admitted today (UTC).
    runs_today: i32,
    /// Runs admitted this month (UTC).
    runs_this_month: i32,
    /// Tokens recorded this month (UTC).
    tokens_this_month: i64,
    /// Tokens reserved by runs queued or running (their declared `token_estimate`s): a run
    /// is admitted while used plus reserved plus its estimate fits `max_tokens_per_month`.
    tokens_reserved: i64,
    /// Runs queued or running now (against `max_concurrent_runs`).
    active_runs: i32,
    /// Workers with runs queued or running now (against `max_workers`).
    active_workers: i32,
}

/// The calling tenant's own quotas (set by its plan) and current counters.
#[utoipa::path(
    get,
    path = "/v1/quotas",
    tag = "usage",
    operation_id = "tenant_quotas",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Quotas and counters.", body = QuotasView))
)]
pub(crate) async fn quotas(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<QuotasView>, ApiError> {
    let q = state.spine.tenant_quotas(&principal).await?;
    Ok(Json(QuotasView {
        plan: q.plan,
        status: q.status,
        max_runs_per_day: q.max_runs_per_day,
        max_concurrent_runs: q.max_concurrent_runs,
        max_tokens_per_month: q.max_tokens_per_month,
        max_api_keys: q.max_api_keys,
        max_requests_per_minute: q.max_requests_per_minute,
        audit_retention_days: q.audit_retention_days,
        max_workers: q.max_workers,
        max_members: q.max_members,
        max_memory_pins: q.max_memory_pins,
        max_pin_value_bytes: q.max_pin_value_bytes,
        runs_today: q.runs_today,
        runs_this_month: q.runs_this_month,
        tokens_this_month: q.tokens_this_month,
        tokens_reserved: q.tokens_reserved,
        active_runs: q.active_runs,
        active_workers: q.active_workers,
    }))
}
