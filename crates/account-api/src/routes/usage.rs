//! `/v1/usage`: totals per meter over a period.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// `?start=&end=` (RFC 3339); the last 30 days up to now by default.
#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

pub(crate) async fn summary(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    let end = query.end.unwrap_or_else(Utc::now);
    let start = query.start.unwrap_or(end - TimeDelta::days(30));
    let totals = state.spine.usage_summary(&principal, start, end).await?;
    let meters: Vec<Value> = totals
        .into_iter()
        .map(|m| json!({"meter": m.meter_name, "unit": m.unit, "total": m.total}))
        .collect();
    Ok(Json(
        json!({ "start": start, "end": end, "meters": meters }),
    ))
}
