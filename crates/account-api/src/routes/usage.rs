//! Usage: totals per meter over a period (`/v1/usage`).

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiQuery, FieldErrors, Validate};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?start=&end=` (RFC 3339); the last 30 days up to now by default.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageQuery {
    /// Start of the period, inclusive (30 days before `end`).
    start: Option<DateTime<Utc>>,
    /// End of the period, exclusive (now).
    end: Option<DateTime<Utc>>,
}

impl Validate for UsageQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        if let (Some(start), Some(end)) = (self.start, self.end)
            && start > end
        {
            errors.add("start", "must not be after end");
        }
    }
}

/// One meter's total.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeterView {
    /// The meter.
    meter: String,
    /// Its unit: `count`, `tokens` or `seconds`.
    unit: String,
    /// The sum over the period.
    total: i64,
}

/// Usage over a period.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageView {
    /// Start of the period.
    start: DateTime<Utc>,
    /// End of the period.
    end: DateTime<Utc>,
    /// Totals per meter.
    meters: Vec<MeterView>,
}

/// The tenant's usage per meter over a period.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "usage",
    operation_id = "usage_summary",
    security(("bearer" = []), ("api_key" = [])),
    params(UsageQuery),
    responses((status = 200, description = "Totals per meter.", body = UsageView))
)]
pub(crate) async fn summary(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageView>, ApiError> {
    let end = query.end.unwrap_or_else(Utc::now);
    let start = query.start.unwrap_or(end - TimeDelta::days(30));
    let totals = state.spine.usage_summary(&principal, start, end).await?;
    let meters = totals
        .into_iter()
        .map(|m| MeterView {
            meter: m.meter_name,
            unit: m.unit.as_str().to_owned(),
            total: m.total,
        })
        .collect();
    Ok(Json(UsageView { start, end, meters }))
}
