//! Trials (platform operators, or the billing integration with an operator key): start a
//! trial of a paid plan for a tenant, or change one still in its trial. The tenant moves to
//! the plan at once; when the trial ends, the reaper's pass makes the subscription active on
//! the plan (`convert_to_paid`) or puts it in grace for `grace_days`, after which the
//! subscription is cancelled and the tenant suspended unless a payment was reported.

use crate::AppState;
use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, Validate};
use crate::openapi::{billing_period, plan, subscription_status};
use crate::routes::tenants::TenantPath;
use account_spine::billing::Subscription;
use account_spine::billing::trials::{MAX_GRACE_DAYS, TrialStart};
use account_spine::types::{BillingPeriod, PlanCode, SubscriptionStatus};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/platform/tenants/{tenant_id}/trial`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrialBody {
    /// The billing system's id of the subscription (1 to 100 characters): a later report of
    /// the same id (a payment) updates this subscription.
    #[schema(min_length = 1, max_length = 100)]
    external_id: String,
    /// The paid plan tried; the tenant is on its newest version on sale for the trial.
    #[schema(schema_with = plan)]
    plan: PlanCode,
    /// When the trial ends (RFC 3339; in the future, at most 365 days ahead:
    /// `invalid_trial_end` otherwise).
    trial_ends_at: DateTime<Utc>,
    /// Whether the trial becomes the paid plan at its end (a payment method is on file).
    /// Absent: `false` (it enters grace).
    #[serde(default)]
    convert_to_paid: bool,
    /// Days of grace after a trial that ended unpaid before the tenant is suspended (0 to
    /// 90). Absent: 7.
    #[schema(minimum = 0, maximum = 90)]
    grace_days: Option<i32>,
    /// How often it bills once paid. Absent: `monthly`.
    #[schema(schema_with = billing_period)]
    billing_period: Option<BillingPeriod>,
}

impl Validate for TrialBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("external_id", Some(&self.external_id), 1, 100);
        errors.range("grace_days", self.grace_days, 0, MAX_GRACE_DAYS);
    }
}

/// A subscription, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubscriptionView {
    /// The billing system's id.
    external_id: String,
    /// The plan.
    #[schema(schema_with = plan)]
    plan: PlanCode,
    /// `trialing`, then `active` or `grace`; `canceled` when a grace ended unpaid.
    #[schema(schema_with = subscription_status)]
    status: SubscriptionStatus,
    /// How often it bills.
    #[schema(schema_with = billing_period)]
    billing_period: BillingPeriod,
    /// End of the trial.
    trial_ends_at: Option<DateTime<Utc>>,
    /// Whether the trial becomes the paid plan at its end.
    convert_to_paid: bool,
    /// Days of grace after a trial that ended unpaid.
    grace_period_days: i32,
    /// End of the grace, while in grace.
    grace_ends_at: Option<DateTime<Utc>>,
    /// Start of the current period.
    current_period_start: Option<DateTime<Utc>>,
    /// End of the current period.
    current_period_end: Option<DateTime<Utc>>,
    /// When it was cancelled.
    canceled_at: Option<DateTime<Utc>>,
}

/// The view of a stored subscription.
pub(crate) fn subscription_view(s: Subscription) -> SubscriptionView {
    SubscriptionView {
        external_id: s.external_id,
        plan: s.plan,
        status: s.status,
        billing_period: s.billing_period,
        trial_ends_at: s.trial_ends_at,
        convert_to_paid: s.convert_to_paid,
        grace_period_days: s.grace_period_days,
        grace_ends_at: s.grace_ends_at,
        current_period_start: s.current_period_start,
        current_period_end: s.current_period_end,
        canceled_at: s.canceled_at,
    }
}

/// Starts a trial of a paid plan for the tenant (or changes a trial still in its trial), and
/// moves the tenant to that plan; audited, `subscription.trial_started` (platform operators
/// only).
#[utoipa::path(
    post,
    path = "/v1/platform/tenants/{tenant_id}/trial",
    tag = "platform",
    operation_id = "platform_start_trial",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath),
    request_body = TrialBody,
    responses(
        (status = 200, description = "The trial, as stored.", body = SubscriptionView),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such tenant (`tenant_not_found`).", body = crate::error::ErrorBody),
        (status = 409, description = "The subscription with this external id exists and is no \
            trial (`subscription_not_trialing`, field `external_id`), or the tenant's status \
            allows no plan change (`tenant_inactive`).", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_trial_end` (field `trial_ends_at`), \
            `invalid_grace_days` (field `grace_days`), `invalid_external_id`, `plan_not_found` \
            or `plan_retired` (field `plan`), or `invalid_request`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn start_trial(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiJson(body): ApiJson<TrialBody>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let mut trial = TrialStart::new(
        path.tenant_id,
        body.external_id,
        body.plan,
        body.trial_ends_at,
    )
    .converting(body.convert_to_paid);
    if let Some(days) = body.grace_days {
        trial = trial.with_grace_days(days);
    }
    if let Some(period) = body.billing_period {
        trial = trial.billed(period);
    }
    let saved = state.spine.start_trial(&operator, trial).await?;
    Ok(Json(subscription_view(saved)))
}
