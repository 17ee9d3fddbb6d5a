//! Tenant lifecycle: suspend, resume, terminate, archive, and the history of transitions
//! (platform operators only).
//!
//! `/v1/platform/...` routes take a platform operator key (`acc_op_...`, created with
//! `account-api operator-key create`); a tenant key is refused with 403.

use crate::AppState;
use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, FieldErrors, Validate};
use crate::idempotency::Idempotency;
use crate::openapi::tenant_status;
use crate::routes::lists::{ListBody, PageQuery};
use crate::routes::tenants::TenantPath;
use account_spine::idempotency::AsOperator;
use account_spine::lifecycle::{
    LifecycleAction, LifecycleEvent, TransitionOutcome, TransitionTenant,
};
use account_spine::types::TenantStatus;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    idempotency: Idempotency,
    ApiPath(path): ApiPath<TenantPath>,
    ApiJson(body): ApiJson<TransitionBody>,
) -> Result<Response, ApiError> {
    let action = match body.action {
        ActionName::Suspend => LifecycleAction::Suspend,
        ActionName::Resume => LifecycleAction::Resume,
        ActionName::Terminate => LifecycleAction::Terminate,
        ActionName::Archive => LifecycleAction::Archive,
    };
    let transition = TransitionTenant {
        tenant: path.tenant_id,
        action,
        reason: body.reason.trim().to_owned(),
    };
    let render = |outcome: TransitionOutcome| {
        Json(TransitionView {
            from: outcome.from,
            to: outcome.to,
            was_no_op: outcome.was_no_op,
        })
    };
    let write = AsOperator(&operator, path.tenant_id, transition);
    idempotency.answer(&state, write, render).await
}

/// A tenant's lifecycle history, newest first (platform operators only).
#[utoipa::path(
    get,
    path = "/v1/platform/tenants/{tenant_id}/lifecycle",
    tag = "platform",
    operation_id = "platform_lifecycle_history",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath, PageQuery),
    responses((status = 200, description = "The transitions.", body = ListBody<LifecycleEventView>))
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ListBody<LifecycleEventView>>, ApiError> {
    let page = page.offset_page();
    let found = state
        .spine
        .lifecycle_history(&operator, path.tenant_id, page)
        .await?;
    Ok(Json(ListBody::from_page(found, page, event_view)))
}
