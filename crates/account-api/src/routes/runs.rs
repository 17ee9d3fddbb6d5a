//! `/v1/runs`: admit, heartbeat, complete, list, read.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, ListQuery, Validate};
use crate::idempotency::Idempotency;
use crate::json_object::JsonObject;
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::idempotency::AsTenant;
use account_spine::runs::leases::HeartbeatRun;
use account_spine::runs::{
    AdmitRun, CompleteRun, MAX_RUN_ERROR_CHARS, MAX_RUN_METRIC, RunCompletion, RunFilter,
    RunSnapshot,
};
use account_spine::types::{RunId, RunStatus};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Longest worker id, in characters.
const MAX_WORKER_ID: usize = 100;
/// Longest task, in characters.
const MAX_TASK: usize = 10_000;

/// A run as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunView {
    /// The run's id.
    #[schema(value_type = String, format = "uuid")]
    id: RunId,
    /// The worker that runs it.
    worker_id: String,
    /// What it was asked to do.
    task: String,
    /// Where it stands.
    #[schema(schema_with = crate::openapi::run_status)]
    status: RunStatus,
    /// How it finished; `null` until then.
    success: Option<bool>,
    /// Tokens used.
    total_tokens: i64,
    /// Time spent, in milliseconds.
    total_latency_ms: i64,
    /// Cost, in cents.
    cost_cents: i64,
    /// Tokens reserved against the month's quota while it is queued or running.
    token_estimate: i64,
    /// When it was admitted.
    created_at: DateTime<Utc>,
    /// When it finished.
    completed_at: Option<DateTime<Utc>>,
    /// When its worker first reported (its first heartbeat).
    started_at: Option<DateTime<Utc>>,
    /// Until when its lease runs: its worker heartbeats before then, or the run is expired
    /// (`crashed`, error `lease expired`) and its slot freed.
    lease_expires_at: Option<DateTime<Utc>>,
}

impl From<RunSnapshot> for RunView {
    fn from(run: RunSnapshot) -> Self {
        Self {
            id: run.id,
            worker_id: run.worker_id,
            task: run.task,
            status: run.status,
            success: run.success,
            total_tokens: run.total_tokens,
            total_latency_ms: run.total_latency_ms,
            cost_cents: run.cost_cents,
            token_estimate: run.token_estimate,
            created_at: run.created_at,
            completed_at: run.completed_at,
            started_at: run.started_at,
            lease_expires_at: run.lease_expires_at,
        }
    }
}

/// `POST /v1/runs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdmitBody {
    /// The worker: 1 to 100 characters of `a-z`, `0-9`, `-`, `_`.
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9_-]+$")]
    worker_id: String,
    /// What to do: 1 to 10 000 characters.
    #[schema(min_length = 1, max_length = 10000)]
    task: String,
    /// Input for the worker.
    #[schema(value_type = Option<Object>)]
    input: Option<JsonObject>,
    /// Tokens the run expects to use (0 to 10^12): reserved against the month's quota until
    /// it finishes, so concurrent runs cannot take the month past it together.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    token_estimate: i64,
}

impl Validate for AdmitBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("worker_id", Some(&self.worker_id), 1, MAX_WORKER_ID);
        errors.length("task", Some(&self.task), 1, MAX_TASK);
    }
}

/// Admits a run against the tenant's quotas (daily runs, monthly tokens with the run's
/// reserved estimate, concurrent runs, busy workers, and the key's own concurrent runs).
#[utoipa::path(
    post,
    path = "/v1/runs",
    tag = "runs",
    operation_id = "admit_run",
    security(("bearer" = []), ("api_key" = [])),
    request_body = AdmitBody,
    responses((status = 201, description = "Admitted.", body = RunView))
)]
pub(crate) async fn admit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<AdmitBody>,
) -> Result<Response, ApiError> {
    let admit = AdmitRun {
        worker_id: body.worker_id,
        task: body.task,
        input: body.input.map(JsonObject::into_value),
        token_estimate: body.token_estimate,
    };
    let render = |run: RunSnapshot| (StatusCode::CREATED, Json(RunView::from(run)));
    idempotency
        .answer(&state, AsTenant(&principal, admit), render)
        .await
}

/// `POST /v1/runs/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    /// Whether the run succeeded.
    success: bool,
    /// Its output.
    #[schema(value_type = Option<Object>)]
    output: Option<JsonObject>,
    /// Why it failed: at most 10 000 characters.
    #[schema(max_length = 10000)]
    error: Option<String>,
    /// Tokens used (0 to 10^12).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    total_tokens: i64,
    /// Time spent, in milliseconds (0 to 10^12).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    total_latency_ms: i64,
    /// Cost, in cents (0 to 10^12).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    cost_cents: i64,
}

impl Validate for CompleteBody {
    fn validate(&self, errors: &mut FieldErrors) {
        for (field, value) in [
            ("total_tokens", self.total_tokens),
            ("total_latency_ms", self.total_latency_ms),
            ("cost_cents", self.cost_cents),
        ] {
            errors.range(field, Some(value), 0, MAX_RUN_METRIC);
        }
        errors.length("error", self.error.as_deref(), 0, MAX_RUN_ERROR_CHARS);
    }
}

/// A run's id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RunPath {
    /// The run's id.
    #[param(value_type = String, format = "uuid")]
    id: RunId,
}

/// Renews the run's lease: its worker calls this about every third of the lease (every 20 s
/// with the default 60 s lease); the first call moves a queued run to `running`. A run whose
/// lease lapses is expired by the reaper (`crashed`) and its slot freed; a heartbeat for a
/// finished run answers 409 `run_already_finished`, and its worker should stop.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/heartbeat",
    tag = "runs",
    operation_id = "heartbeat_run",
    security(("bearer" = []), ("api_key" = [])),
    params(RunPath),
    responses((status = 200, description = "Renewed: the run with its new lease.", body = RunView))
)]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<RunPath>,
) -> Result<Response, ApiError> {
    let beat = HeartbeatRun { run_id: path.id };
    let render = |run: RunSnapshot| Json(RunView::from(run));
    idempotency
        .answer(&state, AsTenant(&principal, beat), render)
        .await
}

/// Records how a run finished; a finished run is final.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/complete",
    tag = "runs",
    operation_id = "complete_run",
    security(("bearer" = []), ("api_key" = [])),
    params(RunPath),
    request_body = CompleteBody,
    responses((status = 200, description = "Recorded.", body = RunView))
)]
pub(crate) async fn complete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<RunPath>,
    ApiJson(body): ApiJson<CompleteBody>,
) -> Result<Response, ApiError> {
    let completion = RunCompletion {
        success: body.success,
        output: body.output.map(JsonObject::into_value),
        error: body.error,
        total_tokens: body.total_tokens,
        total_latency_ms: body.total_latency_ms,
        cost_cents: body.cost_cents,
        ..RunCompletion::default()
    };
    let complete = CompleteRun {
        run_id: path.id,
        completion,
    };
    let render = |run: RunSnapshot| Json(RunView::from(run));
    idempotency
        .answer(&state, AsTenant(&principal, complete), render)
        .await
}

/// The filters of `GET /v1/runs?status=&worker_id=` (its page is a [`PageQuery`]).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilter {
    /// Only runs in this status.
    #[param(schema_with = crate::openapi::run_status)]
    status: Option<String>,
    /// Only runs of this worker.
    worker_id: Option<String>,
}

impl Validate for ListFilter {
    fn validate(&self, errors: &mut FieldErrors) {
        if let Some(Err(error)) = self.status.as_deref().map(RunStatus::parse_exact) {
            errors.add("status", error.to_string());
        }
    }
}

/// The tenant's runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/runs",
    tag = "runs",
    operation_id = "list_runs",
    security(("bearer" = []), ("api_key" = [])),
    params(ListFilter, PageQuery),
    responses((status = 200, description = "A page of runs.", body = ListBody<RunView>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<ListFilter, PageQuery>,
) -> Result<Json<ListBody<RunView>>, ApiError> {
    let status = filter
        .status
        .as_deref()
        .map(RunStatus::parse_exact)
        .transpose()
        .map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
                .with_field("status", e.to_string())
        })?;
    let worker_id = filter.worker_id;
    let mut filter = RunFilter::default();
    (filter.status, filter.worker_id) = (status, worker_id);
    let page = page.offset_page();
    let runs = state.spine.list_runs(&principal, &filter, page).await?;
    Ok(Json(ListBody::from_page(runs, page, RunView::from)))
}

/// One run of the tenant.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    tag = "runs",
    operation_id = "get_run",
    security(("bearer" = []), ("api_key" = [])),
    params(RunPath),
    responses((status = 200, description = "The run.", body = RunView))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<RunPath>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(state.spine.get_run(&principal, path.id).await?.into()))
}
