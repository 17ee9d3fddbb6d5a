//! Per-tenant limit overrides (platform operators only): set one of a tenant's limits to
//! another value than its plan's, optionally until a time; remove it (the plan's value applies
//! again); list them. Each answer that changes one carries the limits in force after it.
//!
//! `/v1/platform/...` routes take a platform operator key (`acc_op_...`, created with
//! `account-api operator-key create`); a tenant key is refused with 403. The limit in the path
//! is one of [`LimitName::ALL`]; any other name is a 422 `unknown_limit` naming `limit`.

use crate::AppState;
use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, FieldErrors, Validate};
use crate::openapi::limit_name;
use crate::routes::lists::{ListBody, PageQuery};
use crate::routes::tenants::TenantPath;
use account_spine::SpineError;
use account_spine::limits::{LimitName, LimitOverride, MAX_REASON_LENGTH, SetOverride};
use account_spine::types::{PlanQuotas, TenantId};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// A tenant and one of its limits in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct LimitPath {
    /// The tenant's id.
    #[param(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// The limit (`unknown_limit` when it is none of these).
    #[param(value_type = LimitNameSchema, inline)]
    limit: String,
}

/// The names of [`LimitName::ALL`], as the document shows a limit (`schema_with` would drop
/// the field's description, and a path parameter's `required`).
pub(crate) struct LimitNameSchema;

impl PartialSchema for LimitNameSchema {
    fn schema() -> RefOr<Schema> {
        limit_name().into()
    }
}

impl ToSchema for LimitNameSchema {}

impl LimitPath {
    /// The limit named, or 422 `unknown_limit` naming `limit`.
    fn limit(&self) -> Result<LimitName, ApiError> {
        LimitName::parse(&self.limit).map_err(|error| SpineError::from(error).into())
    }
}

/// The limits in force for the tenant: its plan's, with its live overrides laid over them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LimitsView {
    /// Distinct workers with runs at once.
    max_workers: i32,
    /// Runs admitted per UTC day.
    max_runs_per_day: i32,
    /// Runs queued or running at once.
    max_concurrent_runs: i32,
    /// Tokens per UTC calendar month.
    max_tokens_per_month: i64,
    /// Active API keys.
    max_api_keys: i32,
    /// Requests per minute of the whole tenant, every credential together (`null`: no
    /// tenant-wide limit).
    max_requests_per_minute: Option<i32>,
    /// Days the tenant's audit log is kept (`null`: forever).
    audit_retention_days: Option<i32>,
    /// Seats: members plus pending invitations.
    max_members: i32,
    /// Live memory pins held at once.
    max_memory_pins: i64,
    /// Bytes of one pin's JSON value.
    max_pin_value_bytes: i32,
}

fn limits_view(quotas: PlanQuotas) -> LimitsView {
    LimitsView {
        max_workers: quotas.max_workers,
        max_runs_per_day: quotas.max_runs_per_day,
        max_concurrent_runs: quotas.max_concurrent_runs,
        max_tokens_per_month: quotas.max_tokens_per_month,
        max_api_keys: quotas.max_api_keys,
        max_requests_per_minute: quotas.max_requests_per_minute,
        audit_retention_days: quotas.audit_retention_days,
        max_members: quotas.max_members,
        max_memory_pins: quotas.max_memory_pins,
        max_pin_value_bytes: quotas.max_pin_value_bytes,
    }
}

/// `PUT /v1/platform/tenants/{tenant_id}/limits/{limit}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetBody {
    /// The limit's value for this tenant: 0 or more; at most 2147483647, except
    /// `max_tokens_per_month` (any 64-bit value); `max_requests_per_minute`,
    /// `audit_retention_days` and `max_members` at least 1 (`invalid_limit_value` otherwise).
    #[schema(minimum = 0)]
    value: i64,
    /// Until when it applies (RFC 3339, in the future: `invalid_expiry` otherwise); absent
    /// or `null`: until it is removed. Once past, the plan's value applies again.
    expires_at: Option<DateTime<Utc>>,
    /// Why (1 to 500 characters, surrounding spaces dropped), kept with the override and in
    /// the audit log.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

impl Validate for SetBody {
    /// What holds for every limit; the spine checks the limit's own range.
    fn validate(&self, errors: &mut FieldErrors) {
        if self.value < 0 {
            errors.add("value", format!("must be 0 or more (got {})", self.value));
        }
        errors.length("reason", Some(self.reason.trim()), 1, MAX_REASON_LENGTH);
    }
}

/// The override set, with the limits in force after it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverrideSetView {
    /// The limit.
    #[schema(value_type = LimitNameSchema, inline)]
    limit: &'static str,
    /// Its value for this tenant.
    value: i64,
    /// Until when (`null`: until removed).
    expires_at: Option<DateTime<Utc>>,
    /// Why.
    reason: String,
    /// The operator who set it, e.g. `operator_key:<id>`.
    set_by: String,
    /// When it was set.
    created_at: DateTime<Utc>,
    /// The tenant's limits in force now.
    limits: LimitsView,
}

/// Sets a tenant's override of one limit (replacing one it had), in force at once on every
/// server; audited with the value before and after (platform operators only).
#[utoipa::path(
    put,
    path = "/v1/platform/tenants/{tenant_id}/limits/{limit}",
    tag = "platform",
    operation_id = "platform_set_limit_override",
    security(("bearer" = []), ("api_key" = [])),
    params(LimitPath),
    request_body = SetBody,
    responses(
        (status = 200, description = "Set; `limits` are the tenant's limits in force now.", body = OverrideSetView),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such tenant (`tenant_not_found`).", body = crate::error::ErrorBody),
        (status = 422, description = "`unknown_limit` (field `limit`), `invalid_limit_value` \
            (field `value`: out of the limit's range), `invalid_expiry` (field `expires_at`: \
            not in the future), `invalid_reason` (field `reason`) or `invalid_request`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn set(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<LimitPath>,
    ApiJson(body): ApiJson<SetBody>,
) -> Result<Json<OverrideSetView>, ApiError> {
    let limit = path.limit()?;
    let mut request = SetOverride::new(limit, body.value, body.reason.trim());
    if let Some(until) = body.expires_at {
        request = request.until(until);
    }
    let change = state
        .spine
        .set_limit_override(&operator, path.tenant_id, request)
        .await?;
    let set = change.set.ok_or_else(|| {
        ApiError::from(account_spine::SpineError::NotConfigured("limit override"))
    })?;
    Ok(Json(OverrideSetView {
        limit: set.limit.as_str(),
        value: set.value,
        expires_at: set.expires_at,
        reason: set.reason,
        set_by: set.set_by,
        created_at: set.created_at,
        limits: limits_view(change.after),
    }))
}

/// The limits in force after an override was removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverrideRemovedView {
    /// The tenant's limits in force now.
    limits: LimitsView,
}

/// Removes a tenant's override of one limit: its plan's value applies again at once; audited
/// (platform operators only).
#[utoipa::path(
    delete,
    path = "/v1/platform/tenants/{tenant_id}/limits/{limit}",
    tag = "platform",
    operation_id = "platform_remove_limit_override",
    security(("bearer" = []), ("api_key" = [])),
    params(LimitPath),
    responses(
        (status = 200, description = "Removed; `limits` are the tenant's limits in force now.", body = OverrideRemovedView),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such tenant (`tenant_not_found`), or it has no override of this limit (`limit_override_not_found`).", body = crate::error::ErrorBody),
        (status = 422, description = "`unknown_limit` (field `limit`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<LimitPath>,
) -> Result<Json<OverrideRemovedView>, ApiError> {
    let limit = path.limit()?;
    let change = state
        .spine
        .remove_limit_override(&operator, path.tenant_id, limit)
        .await?;
    Ok(Json(OverrideRemovedView {
        limits: limits_view(change.after),
    }))
}

/// One override of a tenant's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverrideView {
    /// The limit.
    #[schema(value_type = LimitNameSchema, inline)]
    limit: &'static str,
    /// Its value for this tenant.
    value: i64,
    /// Until when (`null`: until removed). A past one is listed until the reaper's next pass
    /// reverts it.
    expires_at: Option<DateTime<Utc>>,
    /// Why.
    reason: String,
    /// The operator who set it.
    set_by: String,
    /// When it was set.
    created_at: DateTime<Utc>,
}

fn override_view(o: LimitOverride) -> OverrideView {
    OverrideView {
        limit: o.limit.as_str(),
        value: o.value,
        expires_at: o.expires_at,
        reason: o.reason,
        set_by: o.set_by,
        created_at: o.created_at,
    }
}

/// A tenant's limit overrides, by limit name (platform operators only). A tenant without
/// overrides lists none; no such tenant is a 404.
#[utoipa::path(
    get,
    path = "/v1/platform/tenants/{tenant_id}/limits/overrides",
    tag = "platform",
    operation_id = "platform_list_limit_overrides",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath, PageQuery),
    responses(
        (status = 200, description = "A page of the tenant's overrides.", body = ListBody<OverrideView>),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 400, description = "`limit` outside 1 to 100 (`invalid_query`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such tenant (`tenant_not_found`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<TenantPath>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ListBody<OverrideView>>, ApiError> {
    // A tenant has at most one override per limit.
    let all = state
        .spine
        .list_limit_overrides(&operator, path.tenant_id)
        .await?;
    Ok(Json(ListBody::from_all(
        all,
        page.offset_page(),
        override_view,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use account_spine::types::PlanCode;

    #[test]
    fn the_limits_in_force_name_every_limit() {
        let view = serde_json::to_value(limits_view(
            PlanQuotas::built_in(&PlanCode::free()).unwrap(),
        ))
        .unwrap_or_default();
        let mut shown: Vec<&str> = view
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut limits: Vec<&str> = LimitName::ALL.iter().map(|l| l.as_str()).collect();
        shown.sort_unstable();
        limits.sort_unstable();
        assert_eq!(
            shown, limits,
            "LimitsView shows each limit an override can change"
        );
    }
}
