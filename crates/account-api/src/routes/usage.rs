//! Usage: totals per meter over a period (`/v1/usage`), and the tenant's quotas with their
//! current counters (`/v1/quotas`).

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiQuery, FieldErrors, Validate};
use crate::openapi::{plan, tenant_status};
use account_spine::types::{Plan, TenantStatus};
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
        max_workers: q.max_workers,
        runs_today: q.runs_today,
        runs_this_month: q.runs_this_month,
        tokens_this_month: q.tokens_this_month,
    }))
}
