//! Plans as data: platform operators list every plan version, create a plan or its next
//! version, and retire a version (`/v1/platform/plans...`); a tenant reads what its plan
//! grants and how much of each limit it uses (`GET /v1/entitlements`).
//!
//! `/v1/platform/...` routes take a platform operator key (`acc_op_...`, created with
//! `account-api operator-key create`); a tenant key is refused with 403. A new version does
//! not move the tenants already on the plan: `PUT /v1/platform/tenants/{tenant_id}/plan`
//! does.
//!
//! No `Idempotency-Key` on the two writes: keys are kept per tenant and credential, and a plan
//! belongs to no tenant. Retiring is idempotent as it is (a retired version answers as
//! retired); a retried creation adds another version, which the operator sees in the list.

use crate::AppState;
use crate::auth::{Authenticated, Operator};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, FieldErrors, Validate};
use crate::openapi::plan;
use crate::routes::limits::LimitNameSchema;
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::SpineError;
use account_spine::limits::LimitName;
use account_spine::plans::{
    Entitlement, Entitlements, LimitUsage, MAX_ENTITLEMENTS, NewPlanVersion, Plan, PlanError,
    TenantEntitlements,
};
use account_spine::types::{PlanCode, PlanQuotas};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema, SchemaFormat};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// A plan's entitlements as the document shows them: feature names mapped to `true` or a
/// number.
fn entitlements_schema() -> Object {
    let value = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        );
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z0-9_.-]{1,64}$")),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
            value.build(),
        )))))
        .max_properties(Some(MAX_ENTITLEMENTS))
        .examples([serde_json::json!({"sso": true, "audit_exports": 12})])
        .build()
}

/// [`entitlements_schema`] as a type, so a field using it keeps its description
/// (`schema_with` would drop it).
struct EntitlementsSchema;

impl PartialSchema for EntitlementsSchema {
    fn schema() -> RefOr<Schema> {
        entitlements_schema().into()
    }
}

impl ToSchema for EntitlementsSchema {}

/// The plan code as the document shows it ([`plan`]), as a type, so a field or path parameter
/// using it keeps its description (`schema_with` would drop it, and a parameter's
/// `required`).
struct PlanCodeSchema;

impl PartialSchema for PlanCodeSchema {
    fn schema() -> RefOr<Schema> {
        plan().into()
    }
}

impl ToSchema for PlanCodeSchema {}

/// Deserializes an `Option` that must be present (`null` allowed): serde takes a missing
/// `Option` field as `None` unless told otherwise, and every plan states every limit.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Option::<i64>::deserialize(deserializer)
}

/// The limits a plan version grants: every limit, each in its range (`invalid_limit_value`
/// naming `limits.<limit>` otherwise).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanLimits {
    /// Distinct workers with runs at once (0 to 2147483647).
    #[schema(minimum = 0, maximum = 2_147_483_647)]
    max_workers: i64,
    /// Runs admitted per UTC day (0 to 2147483647).
    #[schema(minimum = 0, maximum = 2_147_483_647)]
    max_runs_per_day: i64,
    /// Runs queued or running at once (0 to 2147483647).
    #[schema(minimum = 0, maximum = 2_147_483_647)]
    max_concurrent_runs: i64,
    /// Tokens per UTC calendar month (0 or more).
    #[schema(minimum = 0)]
    max_tokens_per_month: i64,
    /// Active API keys (0 to 2147483647).
    #[schema(minimum = 0, maximum = 2_147_483_647)]
    max_api_keys: i64,
    /// Requests per minute of the whole tenant, every credential together (1 to
    /// 2147483647; `null`: no tenant-wide limit).
    #[serde(deserialize_with = "present")]
    #[schema(required = true, minimum = 1, maximum = 2_147_483_647)]
    max_requests_per_minute: Option<i64>,
    /// Days the tenant's audit log is kept (1 to 2147483647; `null`: forever).
    #[serde(deserialize_with = "present")]
    #[schema(required = true, minimum = 1, maximum = 2_147_483_647)]
    audit_retention_days: Option<i64>,
    /// Seats: members plus pending invitations (1 to 2147483647).
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    max_members: i64,
    /// Live memory pins held at once (0 or more).
    #[schema(minimum = 0)]
    max_memory_pins: i64,
    /// Bytes of one pin's JSON value (1 to 65536).
    #[schema(minimum = 1, maximum = 65_536)]
    max_pin_value_bytes: i64,
}

impl PlanLimits {
    fn of(quotas: &PlanQuotas) -> Self {
        Self {
            max_workers: quotas.max_workers.into(),
            max_runs_per_day: quotas.max_runs_per_day.into(),
            max_concurrent_runs: quotas.max_concurrent_runs.into(),
            max_tokens_per_month: quotas.max_tokens_per_month,
            max_api_keys: quotas.max_api_keys.into(),
            max_requests_per_minute: quotas.max_requests_per_minute.map(i64::from),
            audit_retention_days: quotas.audit_retention_days.map(i64::from),
            max_members: quotas.max_members.into(),
            max_memory_pins: quotas.max_memory_pins,
            max_pin_value_bytes: quotas.max_pin_value_bytes.into(),
        }
    }

    /// The limits as the engines hold them, or 422 `invalid_limit_value` naming every limit
    /// out of its range (the engine checks the ranges again; here they also guard the
    /// narrowing to the 32-bit columns).
    fn quotas(&self) -> Result<PlanQuotas, ApiError> {
        let mut check = RangeCheck::default();
        let quotas = PlanQuotas {
            max_workers: check.int(LimitName::MaxWorkers, self.max_workers),
            max_runs_per_day: check.int(LimitName::MaxRunsPerDay, self.max_runs_per_day),
            max_concurrent_runs: check.int(LimitName::MaxConcurrentRuns, self.max_concurrent_runs),
            max_tokens_per_month: check
                .long(LimitName::MaxTokensPerMonth, self.max_tokens_per_month),
            max_api_keys: check.int(LimitName::MaxApiKeys, self.max_api_keys),
            max_requests_per_minute: self
                .max_requests_per_minute
                .map(|v| check.int(LimitName::MaxRequestsPerMinute, v)),
            audit_retention_days: self
                .audit_retention_days
                .map(|v| check.int(LimitName::AuditRetentionDays, v)),
            max_members: check.int(LimitName::MaxMembers, self.max_members),
            max_memory_pins: check.long(LimitName::MaxMemoryPins, self.max_memory_pins),
            max_pin_value_bytes: check.int(LimitName::MaxPinValueBytes, self.max_pin_value_bytes),
        };
        if check.errors.is_empty() {
            Ok(quotas)
        } else {
            Err(ApiError::invalid_fields(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_limit_value",
                check.errors,
            ))
        }
    }
}

/// Collects the limits out of their range, each under `limits.<limit>`.
#[derive(Default)]
struct RangeCheck {
    errors: BTreeMap<String, String>,
}

impl RangeCheck {
    fn long(&mut self, limit: LimitName, value: i64) -> i64 {
        let (min, max) = limit.range();
        if !(min..=max).contains(&value) {
            self.errors.insert(
                format!("limits.{limit}"),
                format!("must be {min} to {max} (got {value})"),
            );
        }
        value
    }

    fn int(&mut self, limit: LimitName, value: i64) -> i32 {
        let value = self.long(limit, value);
        // Every 32-bit limit's range fits 32 bits; one that did not would be refused here
        // rather than cut.
        i32::try_from(value).unwrap_or_else(|_| {
            self.errors
                .entry(format!("limits.{limit}"))
                .or_insert_with(|| format!("must be at most {} (got {value})", i32::MAX));
            0
        })
    }
}

/// `POST /v1/platform/plans`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePlanBody {
    /// The plan's code: a new code creates version 1, an existing one its next version
    /// (`invalid_plan_code` otherwise).
    #[schema(value_type = PlanCodeSchema, inline)]
    code: String,
    /// Display name (1 to 100 characters without control characters, surrounding spaces
    /// dropped; `invalid_name` otherwise).
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Every limit the version grants.
    limits: PlanLimits,
    /// Features granted beyond limits: each name (1 to 64 characters of `a-z`, `0-9`, `_`,
    /// `.`, `-`) maps to `true` or a number; at most 100 (`invalid_entitlement` otherwise).
    /// Absent: none.
    #[serde(default)]
    #[schema(value_type = EntitlementsSchema, inline)]
    entitlements: BTreeMap<String, serde_json::Value>,
    /// Usage, in percent of each limit, at which a `limit.warning` event goes out once per
    /// period (1 to 99; `invalid_warning_threshold` otherwise). Absent or `null`: no warning.
    #[schema(minimum = 1, maximum = 99)]
    warn_at_percent: Option<i64>,
}

impl Validate for CreatePlanBody {
    /// Nothing here: the checks answer with their own codes (`invalid_limit_value`,
    /// `invalid_entitlement`, ...), in the handler and the engine.
    fn validate(&self, _errors: &mut FieldErrors) {}
}

impl CreatePlanBody {
    /// The version to create, or the refusal naming the field at fault.
    fn request(self) -> Result<NewPlanVersion, ApiError> {
        let limits = self.limits.quotas()?;
        let refused = |error: PlanError| ApiError::from(SpineError::from(error));
        let mut entitlements = Entitlements::new();
        for (feature, value) in self.entitlements {
            let granted = match &value {
                serde_json::Value::Bool(true) => Entitlement::Enabled(true),
                serde_json::Value::Number(n) if n.is_i64() => {
                    Entitlement::Value(n.as_i64().unwrap_or_default())
                }
                _ => {
                    return Err(refused(PlanError::InvalidEntitlement(
                        feature.chars().take(64).collect(),
                    )));
                }
            };
            entitlements.insert(feature, granted);
        }
        let mut request =
            NewPlanVersion::new(self.code, self.name, limits).with_entitlements(entitlements);
        if let Some(percent) = self.warn_at_percent {
            let percent = i32::try_from(percent)
                .ok()
                .filter(|p| (1..=99).contains(p))
                .ok_or_else(|| refused(PlanError::InvalidWarning))?;
            request = request.warning_at(percent);
        }
        Ok(request)
    }
}

/// One version of one plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanVersionView {
    /// The plan's code.
    #[schema(value_type = PlanCodeSchema, inline)]
    code: PlanCode,
    /// This version, from 1.
    #[schema(minimum = 1)]
    version: i32,
    /// Display name.
    name: String,
    /// The limits it grants.
    limits: PlanLimits,
    /// Features it grants beyond limits: `true` or a number by feature name.
    #[schema(value_type = EntitlementsSchema, inline)]
    entitlements: Entitlements,
    /// Usage, in percent of each limit, at which a `limit.warning` event goes out (`null`:
    /// none).
    #[schema(required = true)]
    warn_at_percent: Option<i32>,
    /// When the version was created.
    created_at: DateTime<Utc>,
    /// When it was retired (it takes no new tenants since; tenants on it keep it); `null`
    /// while on sale.
    #[schema(required = true)]
    retired_at: Option<DateTime<Utc>>,
}

fn plan_view(plan: Plan) -> PlanVersionView {
    PlanVersionView {
        limits: PlanLimits::of(&plan.limits),
        code: plan.code,
        version: plan.version,
        name: plan.name,
        entitlements: plan.entitlements,
        warn_at_percent: plan.warn_at_percent,
        created_at: plan.created_at,
        retired_at: plan.retired_at,
    }
}

/// Every version of every plan, by code then version, retired ones included (platform
/// operators only).
#[utoipa::path(
    get,
    path = "/v1/platform/plans",
    tag = "platform",
    operation_id = "platform_list_plans",
    security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of plan versions.", body = ListBody<PlanVersionView>),
        (status = 400, description = "`limit` outside 1 to 100, or an unknown parameter (`invalid_query`).", body = crate::error::ErrorBody),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list_plans(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ListBody<PlanVersionView>>, ApiError> {
    // Plans are few (an operator's catalogue).
    let all = state.spine.list_plans(&operator).await?;
    Ok(Json(ListBody::from_all(all, page.offset_page(), plan_view)))
}

/// Creates a plan (version 1 of a new code) or the next version of an existing one; audited.
/// Tenants already on the plan keep their version until their plan is changed (platform
/// operators only).
#[utoipa::path(
    post,
    path = "/v1/platform/plans",
    tag = "platform",
    operation_id = "platform_create_plan_version",
    security(("bearer" = []), ("api_key" = [])),
    request_body = CreatePlanBody,
    responses(
        (status = 201, description = "Created: the new version, on sale.", body = PlanVersionView),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 409, description = "Another version of the plan was created at the same moment (`conflict_retry`): retry.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_plan_code` (field `code`), `invalid_name` (field \
            `name`), `invalid_limit_value` (field `limits.<limit>`, each limit out of its \
            range), `invalid_entitlement` (field `entitlements`), `invalid_warning_threshold` \
            (field `warn_at_percent`) or `invalid_request` (a field missing, unknown or of the \
            wrong type, named).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create_plan_version(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiJson(body): ApiJson<CreatePlanBody>,
) -> Result<(StatusCode, Json<PlanVersionView>), ApiError> {
    let request = body.request()?;
    let plan = state.spine.create_plan_version(&operator, request).await?;
    Ok((StatusCode::CREATED, Json(plan_view(plan))))
}

/// A plan version in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct PlanVersionPath {
    /// The plan's code (`invalid_plan_code` when it is not one).
    #[param(value_type = PlanCodeSchema, inline)]
    code: String,
    /// The version.
    #[param(minimum = 1)]
    version: i32,
}

/// Retires one version of a plan: no new tenant or plan change gets it; tenants on it keep it.
/// Retiring a retired version answers with it unchanged. Audited (platform operators only).
#[utoipa::path(
    post,
    path = "/v1/platform/plans/{code}/versions/{version}/retire",
    tag = "platform",
    operation_id = "platform_retire_plan",
    security(("bearer" = []), ("api_key" = [])),
    params(PlanVersionPath),
    responses(
        (status = 200, description = "Retired: the version, with `retired_at`.", body = PlanVersionView),
        (status = 400, description = "The version is not an integer (`invalid_path`).", body = crate::error::ErrorBody),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such plan version (`plan_not_found`).", body = crate::error::ErrorBody),
        (status = 409, description = "The last version on sale of the default plan `free` (`default_plan`): new tenants need it.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_plan_code` (field `code`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn retire_plan(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<PlanVersionPath>,
) -> Result<Json<PlanVersionView>, ApiError> {
    let code = PlanCode::parse(&path.code)
        .map_err(|error| ApiError::from(SpineError::from(PlanError::from(error))))?;
    let plan = state
        .spine
        .retire_plan(&operator, code, path.version)
        .await?;
    Ok(Json(plan_view(plan)))
}

/// One of the tenant's limits and its usage.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LimitUsageView {
    /// The limit.
    #[schema(value_type = LimitNameSchema, inline)]
    limit: &'static str,
    /// In force for the tenant: its plan version's, or an operator's override (`null`: no
    /// limit).
    #[schema(required = true)]
    value: Option<i64>,
    /// The tenant's plan version's value (`null`: no limit).
    #[schema(required = true)]
    plan_value: Option<i64>,
    /// Used now, or in the current period for a per-period limit (`null`: not a count, as
    /// the audit retention, the request rate and a pin's size).
    #[schema(required = true)]
    used: Option<i64>,
}

fn usage_view(usage: LimitUsage) -> LimitUsageView {
    LimitUsageView {
        limit: usage.limit.as_str(),
        value: usage.value,
        plan_value: usage.plan_value,
        used: usage.used,
    }
}

/// What the tenant has: its plan version, the features it grants, and every limit with its
/// usage.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EntitlementsView {
    /// The plan's code.
    #[schema(value_type = PlanCodeSchema, inline)]
    plan: PlanCode,
    /// The plan version the tenant is on.
    #[schema(minimum = 1)]
    plan_version: i32,
    /// The plan's display name.
    plan_name: String,
    /// Features granted beyond limits: `true` or a number by feature name; a feature absent
    /// is not granted.
    #[schema(value_type = EntitlementsSchema, inline)]
    features: Entitlements,
    /// Every limit, in a stable order.
    limits: Vec<LimitUsageView>,
    /// Usage, in percent of a limit, at which a `limit.warning` event goes out (`null`: none).
    #[schema(required = true)]
    warn_at_percent: Option<i32>,
}

fn entitlements_view(e: TenantEntitlements) -> EntitlementsView {
    EntitlementsView {
        plan: e.plan,
        plan_version: e.plan_version,
        plan_name: e.plan_name,
        features: e.features,
        limits: e.limits.into_iter().map(usage_view).collect(),
        warn_at_percent: e.warn_at_percent,
    }
}

/// The calling tenant's plan version, the features it grants, and every limit in force with
/// its plan's value and the tenant's usage.
#[utoipa::path(
    get,
    path = "/v1/entitlements",
    tag = "usage",
    operation_id = "tenant_entitlements",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The tenant's plan, features, limits and usage.", body = EntitlementsView),
        (status = 403, description = "A key without `read:*`, or a tenant whose status forbids reads (`forbidden`, `tenant_status_forbids`).", body = crate::error::ErrorBody),
        (status = 404, description = "The tenant's plan version is gone (`plan_not_found`): a host removed it by hand.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn entitlements(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<EntitlementsView>, ApiError> {
    let found = state.spine.entitlements(&principal).await?;
    Ok(Json(entitlements_view(found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_limits_name_every_limit() {
        let free = PlanQuotas::built_in(&PlanCode::free()).unwrap();
        let view = serde_json::to_value(PlanLimits::of(&free)).unwrap_or_default();
        let mut shown: Vec<&str> = view
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut limits: Vec<&str> = LimitName::ALL.iter().map(|l| l.as_str()).collect();
        shown.sort_unstable();
        limits.sort_unstable();
        assert_eq!(shown, limits);
        assert_eq!(PlanLimits::of(&free).quotas().ok(), Some(free));
    }

    #[test]
    fn limits_out_of_range_are_each_named() {
        let free = PlanQuotas::built_in(&PlanCode::free()).unwrap();
        let mut limits = PlanLimits::of(&free);
        limits.max_workers = -1;
        limits.max_api_keys = 3_000_000_000;
        limits.max_pin_value_bytes = 70_000;
        let refused = limits.quotas().err().map(|e| (e.status(), e.code()));
        assert_eq!(
            refused,
            Some((StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit_value"))
        );
    }
}
