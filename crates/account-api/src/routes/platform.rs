//! `/v1/platform/...`: operator-only routes (lifecycle, forced onboarding, plans). They take a
//! platform operator key (`acc_op_...`, created with `account-api operator-key create`); a
//! tenant key is refused with 403.

use crate::AppState;
use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, FieldErrors, Validate};
use crate::routes::{ListBody, page, validate_page};
use account_spine::platform::{LifecycleAction, LifecycleEvent};
use account_spine::types::{OnboardingState, Plan, TenantId, TenantStatus};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

fn string_enum(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

fn tenant_status() -> Object {
    string_enum(TenantStatus::ALL.iter().map(|s| s.as_str()))
}

fn plan() -> Object {
    string_enum(Plan::ALL.iter().map(|s| s.as_str()))
}

/// A tenant's id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TenantPath {
    /// The tenant's id.
    #[param(value_type = String, format = "uuid")]
    tenant_id: TenantId,
}

/// A lifecycle action.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActionName {
    /// Active → suspended: writes are refused, reads still work.
    Suspend,
    /// Suspended → active.
    Resume,
    /// Active or suspended → terminated.
    Terminate,
    /// Terminated → archived.
    Archive,
}

/// `POST /v1/platform/tenants/{tenant_id}/lifecycle`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionBody {
    /// What to do.
    action: ActionName,
    /// Why (1 to 500 characters), recorded in the history and the audit log.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

impl Validate for TransitionBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("reason", Some(self.reason.trim()), 1, 500);
    }
}

/// One lifecycle transition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LifecycleEventView {
    /// Status before.
    #[schema(schema_with = tenant_status)]
    from: TenantStatus,
    /// Status after.
    #[schema(schema_with = tenant_status)]
    to: TenantStatus,
    /// The action, e.g. `suspend_tenant`.
    action: String,
    /// Kind of actor, e.g. `founder` for platform operators.
    actor_type: String,
    /// The actor's id, e.g. `operator_key:<id>`.
    actor_id: String,
    /// Why.
    reason: Option<String>,
    /// When.
    created_at: DateTime<Utc>,
}

fn event_view(event: LifecycleEvent) -> LifecycleEventView {
    LifecycleEventView {
        from: event.from,
        to: event.to,
        action: event.action,
        actor_type: event.actor_type.as_str().to_owned(),
        actor_id: event.actor_id,
        reason: event.reason,
        created_at: event.created_at,
    }
}

/// What a transition did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TransitionView {
    /// Status before.
    #[schema(schema_with = tenant_status)]
    from: TenantStatus,
    /// Status after.
    #[schema(schema_with = tenant_status)]
    to: TenantStatus,
    /// Nothing changed: the tenant already had the target status.
    was_no_op: bool,
}

/// Suspends, resumes, terminates or archives a tenant (platform operators only).
#[utoipa::path(
    post,
    path = "/v1/platform/tenants/{tenant_id}/lifecycle",
    tag = "platform",
    operation_id = "platform_transition_tenant",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath),
    request_body = TransitionBody,
    responses((status = 200, description = "Transitioned (or already there).", body = TransitionView))
)]
pub(crate) async fn transition(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiJson(body): ApiJson<TransitionBody>,
) -> Result<Json<TransitionView>, ApiError> {
    let action = match body.action {
        ActionName::Suspend => LifecycleAction::Suspend,
        ActionName::Resume => LifecycleAction::Resume,
        ActionName::Terminate => LifecycleAction::Terminate,
        ActionName::Archive => LifecycleAction::Archive,
    };
    let outcome = state
        .spine
        .transition_tenant(&operator, path.tenant_id, action, body.reason.trim())
        .await?;
    Ok(Json(TransitionView {
        from: outcome.from,
        to: outcome.to,
        was_no_op: outcome.was_no_op,
    }))
}

/// `?limit=&offset=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Page size, 1 to 100 (20).
    limit: Option<u64>,
    /// Items to skip (0).
    offset: Option<u64>,
}

impl Validate for HistoryQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        validate_page(errors, self.limit);
    }
}

/// A tenant's lifecycle history, newest first (platform operators only).
#[utoipa::path(
    get,
    path = "/v1/platform/tenants/{tenant_id}/lifecycle",
    tag = "platform",
    operation_id = "platform_lifecycle_history",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath, HistoryQuery),
    responses((status = 200, description = "The transitions.", body = ListBody<LifecycleEventView>))
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<ListBody<LifecycleEventView>>, ApiError> {
    let request = page(query.limit, query.offset);
    let found = state
        .spine
        .lifecycle_history(&operator, path.tenant_id, request)
        .await?;
    Ok(Json(ListBody::from_page(found, request, event_view)))
}

/// `POST /v1/platform/tenants/{tenant_id}/onboarding/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForceCompleteBody {
    /// Why completion is forced (1 to 500 characters), audited.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

impl Validate for ForceCompleteBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("reason", Some(self.reason.trim()), 1, 500);
    }
}

/// An onboarding transition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OnboardingTransitionView {
    /// The state before.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    from: OnboardingState,
    /// The state after.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    to: OnboardingState,
    /// Nothing changed.
    was_no_op: bool,
}

/// Completes a tenant's onboarding without the activation evidence (platform operators only).
#[utoipa::path(
    post,
    path = "/v1/platform/tenants/{tenant_id}/onboarding/complete",
    tag = "platform",
    operation_id = "platform_force_complete_onboarding",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath),
    request_body = ForceCompleteBody,
    responses((status = 200, description = "Completed.", body = OnboardingTransitionView))
)]
pub(crate) async fn force_complete(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiJson(body): ApiJson<ForceCompleteBody>,
) -> Result<Json<OnboardingTransitionView>, ApiError> {
    let outcome = state
        .spine
        .force_complete_onboarding(&operator, path.tenant_id, body.reason.trim())
        .await?;
    Ok(Json(OnboardingTransitionView {
        from: outcome.from,
        to: outcome.to,
        was_no_op: outcome.was_no_op,
    }))
}

/// `PUT /v1/platform/tenants/{tenant_id}/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanBody {
    /// The new plan.
    #[schema(schema_with = plan)]
    plan: Plan,
}

impl Validate for PlanBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// The plan now in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanView {
    /// The plan.
    #[schema(schema_with = plan)]
    plan: Plan,
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
    responses((status = 200, description = "Changed.", body = PlanView))
)]
pub(crate) async fn change_plan(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Json<PlanView>, ApiError> {
    state
        .spine
        .change_plan(&operator, path.tenant_id, body.plan)
        .await?;
    Ok(Json(PlanView { plan: body.plan }))
}

/// The tenant's plan quotas and its counters in the current periods.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QuotasView {
    /// The plan.
    #[schema(schema_with = plan)]
    plan: Plan,
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
    /// Workers.
    max_workers: i32,
    /// Runs admitted today (UTC).
    runs_today: i32,
    /// Runs admitted this month (UTC).
    runs_this_month: i32,
    /// Tokens recorded this month (UTC).
    tokens_this_month: i64,
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
    crate::auth::Authenticated(principal): crate::auth::Authenticated,
) -> Result<Json<QuotasView>, ApiError> {
    let q = state.spine.tenant_quotas(&principal).await?;
    Ok(Json(QuotasView {
        plan: q.plan,
        status: q.status,
        max_runs_per_day: q.max_runs_per_day,
        max_concurrent_runs: q.max_concurrent_runs,
        max_tokens_per_month: q.max_tokens_per_month,
        max_api_keys: q.max_api_keys,
        max_workers: q.max_workers,
        runs_today: q.runs_today,
        runs_this_month: q.runs_this_month,
        tokens_this_month: q.tokens_this_month,
    }))
}
