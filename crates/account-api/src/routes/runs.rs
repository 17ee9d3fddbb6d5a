//! `/v1/runs`: admit, complete, list, read.

use super::ListBody;
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use account_spine::runs::{AdmitRun, RunCompletion, RunFilter, RunSnapshot};
use account_spine::types::{RunId, RunStatus};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A run as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct RunView {
    id: RunId,
    worker_id: String,
    task: String,
    status: RunStatus,
    success: Option<bool>,
    total_tokens: i64,
    total_latency_ms: i64,
    cost_cents: i64,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
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
            created_at: run.created_at,
            completed_at: run.completed_at,
        }
    }
}

/// `POST /v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdmitBody {
    worker_id: String,
    task: String,
    input: Option<Value>,
}

pub(crate) async fn admit(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Json(body): Json<AdmitBody>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let run = state
        .spine
        .admit_run(
            &principal,
            AdmitRun {
                worker_id: body.worker_id,
                task: body.task,
                input: body.input,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(run.into())))
}

/// `POST /v1/runs/{id}/complete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    success: bool,
    output: Option<Value>,
    error: Option<String>,
    #[serde(default)]
    total_tokens: i64,
    #[serde(default)]
    total_latency_ms: i64,
    #[serde(default)]
    cost_cents: i64,
}

pub(crate) async fn complete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<RunId>,
    Json(body): Json<CompleteBody>,
) -> Result<Json<RunView>, ApiError> {
    let completion = RunCompletion {
        success: body.success,
        output: body.output,
        error: body.error,
        total_tokens: body.total_tokens,
        total_latency_ms: body.total_latency_ms,
        cost_cents: body.cost_cents,
        ..RunCompletion::default()
    };
    Ok(Json(
        state
            .spine
            .complete_run(&principal, id, completion)
            .await?
            .into(),
    ))
}

/// `GET /v1/runs?status=&worker_id=&limit=&offset=`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    worker_id: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Json<ListBody<RunView>>, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(str::parse::<RunStatus>)
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_status",
                e.to_string(),
            )
        })?;
    let filter = RunFilter {
        status,
        worker_id: query.worker_id,
        api_key_id: None,
    };
    let page = super::page(query.limit, query.offset);
    let runs = state.spine.list_runs(&principal, &filter, page).await?;
    Ok(Json(ListBody::from_page(runs, page, RunView::from)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<RunId>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(state.spine.get_run(&principal, id).await?.into()))
}
