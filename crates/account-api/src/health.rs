//! Liveness and readiness probes.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use account_spine::SpineError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// The process can serve.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// Always `ready`.
    status: &'static str,
    /// The database backend: `sqlite` or `postgres`.
    database: &'static str,
}

/// Liveness: the process is up; says nothing about the database.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    operation_id = "healthz",
    responses((status = 200, description = "The process is up.", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers and its schema is at this build's head (every migration
/// this build knows is applied). False while another instance is still migrating, or when
/// nothing migrated the database: a load balancer sends no request to an instance whose
/// queries would meet missing tables. Once at head the answer is kept (migrations never go
/// back), so later probes cost the database round trip alone.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to serve.", body = Readiness),
        (status = 503, description = "The database does not answer (`database_unavailable`), or migrations this build needs are not applied yet (`migrations_pending`).", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let unavailable = |error: SpineError| {
        tracing::warn!(%error, "readiness check failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            error.to_string(),
        )
    };
    state.spine.check_database().await.map_err(unavailable)?;
    if !state.schema_at_head.load(Ordering::Acquire) {
        let pending = state
            .spine
            .pending_migrations()
            .await
            .map_err(unavailable)?;
        if let Some(first) = pending.first() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "migrations_pending",
                format!(
                    "{} migrations are not applied yet, the first {first}",
                    pending.len()
                ),
            ));
        }
        state.schema_at_head.store(true, Ordering::Release);
    }
    Ok(Json(Readiness {
        status: "ready",
        database: state.spine.backend_name(),
    }))
}
