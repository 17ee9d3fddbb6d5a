//! Per-tenant limit overrides: an operator gives one tenant a different limit than its plan's
//! (a larger customer, a trial of more seats), optionally until a time.
//!
//! The limits in force are the plan's with the live overrides laid over them ([`apply`]),
//! written to the tenant row whenever the plan or an override changes, and when an override
//! expires (the job deletes it and rewrites the row: [`expire`]). The writes that check
//! limits read that row in the statements they already run, so an override costs them
//! nothing and takes effect on every instance with the commit that sets it. Every change
//! locks the tenant row first, so two operators' changes never compute from stale overrides.

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::get_tenant_driver;
use account_drivers::limits::{self as store, OverrideRow};
use account_drivers::types::{PlanQuotas, TenantId};
use chrono::{DateTime, Utc};

/// Longest reason, in characters.
pub const MAX_REASON_LENGTH: usize = 500;

/// A limit an override can change: the plan quotas the tenant row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LimitName {
    /// Distinct workers with runs at once.
    MaxWorkers,
    /// Runs admitted per UTC day.
    MaxRunsPerDay,
    /// Runs at once.
    MaxConcurrentRuns,
    /// Tokens per UTC month.
    MaxTokensPerMonth,
    /// Active API keys.
    MaxApiKeys,
    /// Requests per minute over the whole tenant.
    MaxRequestsPerMinute,
    /// Days the audit log is kept.
    AuditRetentionDays,
    /// Seats: members plus pending invitations.
    MaxMembers,
    /// Live memory pins.
    MaxMemoryPins,
    /// Bytes of one pin's value.
    MaxPinValueBytes,
}

impl LimitName {
    /// Every limit, in a stable order.
    pub const ALL: [LimitName; 10] = [
        Self::MaxWorkers,
        Self::MaxRunsPerDay,
        Self::MaxConcurrentRuns,
        Self::MaxTokensPerMonth,
        Self::MaxApiKeys,
        Self::MaxRequestsPerMinute,
        Self::AuditRetentionDays,
        Self::MaxMembers,
        Self::MaxMemoryPins,
        Self::MaxPinValueBytes,
    ];

    /// Its name, as the API and the audit log spell it (the tenant row's column).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxWorkers => "max_workers",
            Self::MaxRunsPerDay => "max_runs_per_day",
            Self::MaxConcurrentRuns => "max_concurrent_runs",
            Self::MaxTokensPerMonth => "max_tokens_per_month",
            Self::MaxApiKeys => "max_api_keys",
            Self::MaxRequestsPerMinute => "max_requests_per_minute",
            Self::AuditRetentionDays => "audit_retention_days",
            Self::MaxMembers => "max_members",
            Self::MaxMemoryPins => "max_memory_pins",
            Self::MaxPinValueBytes => "max_pin_value_bytes",
        }
    }

    /// The limit named `name`.
    pub fn parse(name: &str) -> Result<Self, LimitError> {
        Self::ALL
            .into_iter()
            .find(|limit| limit.as_str() == name)
            .ok_or(LimitError::UnknownLimit)
    }

    /// The values an override of it may take: the smallest and the largest.
    pub fn range(self) -> (i64, i64) {
        match self {
            Self::MaxTokensPerMonth | Self::MaxMemoryPins => (0, i64::MAX),
            // A pin always fits the API's 128 KiB request body with its envelope.
            Self::MaxPinValueBytes => (1, 64 * 1024),
            Self::AuditRetentionDays | Self::MaxRequestsPerMinute | Self::MaxMembers => {
                (1, i64::from(i32::MAX))
            }
            _ => (0, i64::from(i32::MAX)),
        }
    }
}

impl LimitName {
    /// Its value in `quotas` (`None`: no limit, e.g. no tenant-wide request limit).
    pub fn value_in(self, quotas: &PlanQuotas) -> Option<i64> {
        match self {
            Self::MaxWorkers => Some(i64::from(quotas.max_workers)),
            Self::MaxRunsPerDay => Some(i64::from(quotas.max_runs_per_day)),
            Self::MaxConcurrentRuns => Some(i64::from(quotas.max_concurrent_runs)),
            Self::MaxTokensPerMonth => Some(quotas.max_tokens_per_month),
            Self::MaxApiKeys => Some(i64::from(quotas.max_api_keys)),
            Self::MaxRequestsPerMinute => quotas.max_requests_per_minute.map(i64::from),
            Self::AuditRetentionDays => quotas.audit_retention_days.map(i64::from),
            Self::MaxMembers => Some(i64::from(quotas.max_members)),
            Self::MaxMemoryPins => Some(quotas.max_memory_pins),
            Self::MaxPinValueBytes => Some(i64::from(quotas.max_pin_value_bytes)),
        }
    }
}

impl serde::Serialize for LimitName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for LimitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an override was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Not a limit an override can change.
    #[error(
        "unknown limit; one of max_workers, max_runs_per_day, max_concurrent_runs, max_tokens_per_month, max_api_keys, max_requests_per_minute, audit_retention_days, max_members, max_memory_pins, max_pin_value_bytes"
    )]
    UnknownLimit,
    /// The value is out of the limit's range.
    #[error("value must be {min} to {max} for {limit}")]
    ValueOutOfRange {
        /// The limit.
        limit: LimitName,
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// The expiry is not in the future.
    #[error("expires_at must be in the future")]
    ExpiryInPast,
    /// The reason is empty, too long or holds a NUL character.
    #[error("reason must be 1 to {MAX_REASON_LENGTH} characters without NUL characters")]
    InvalidReason,
    /// No such tenant.
    #[error("tenant not found; check the tenant id")]
    TenantNotFound,
    /// The tenant has no override of this limit.
    #[error("the tenant has no override of this limit")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for LimitError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for LimitError {
    fn code(&self) -> &'static str {
        match self {
            Self::UnknownLimit => "unknown_limit",
            Self::ValueOutOfRange { .. } => "invalid_limit_value",
            Self::ExpiryInPast => "invalid_expiry",
            Self::InvalidReason => "invalid_reason",
            Self::TenantNotFound => "tenant_not_found",
            Self::NotFound => "limit_override_not_found",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::UnknownLimit
            | Self::ValueOutOfRange { .. }
            | Self::ExpiryInPast
            | Self::InvalidReason => 422,
            Self::TenantNotFound | Self::NotFound => 404,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::UnknownLimit => Some("limit"),
            Self::ValueOutOfRange { .. } => Some("value"),
            Self::ExpiryInPast => Some("expires_at"),
            Self::InvalidReason => Some("reason"),
            _ => None,
        }
    }
}

/// An override in force (or expired and not yet reverted).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitOverride {
    /// The limit.
    pub limit: LimitName,
    /// Its value for this tenant.
    pub value: i64,
    /// Until when (`None`: until removed).
    pub expires_at: Option<DateTime<Utc>>,
    /// Why.
    pub reason: String,
    /// The operator who set it.
    pub set_by: String,
    /// When it was set.
    pub created_at: DateTime<Utc>,
}

impl LimitOverride {
    fn from_row(row: OverrideRow) -> Option<Self> {
        Some(Self {
            limit: LimitName::parse(&row.limit_name).ok()?,
            value: row.value,
            expires_at: row.expires_at,
            reason: row.reason,
            set_by: row.set_by,
            created_at: row.created_at,
        })
    }

    /// Whether it is in force at `now`.
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|until| until > now)
    }
}

/// `quotas` with each override laid over its limit (the overrides must be live).
pub fn apply(mut quotas: PlanQuotas, overrides: &[LimitOverride]) -> PlanQuotas {
    let narrow = |value: i64| i32::try_from(value).unwrap_or(i32::MAX);
    for o in overrides {
        match o.limit {
            LimitName::MaxWorkers => quotas.max_workers = narrow(o.value),
            LimitName::MaxRunsPerDay => quotas.max_runs_per_day = narrow(o.value),
            LimitName::MaxConcurrentRuns => quotas.max_concurrent_runs = narrow(o.value),
            LimitName::MaxTokensPerMonth => quotas.max_tokens_per_month = o.value,
            LimitName::MaxApiKeys => quotas.max_api_keys = narrow(o.value),
            LimitName::MaxRequestsPerMinute => {
                quotas.max_requests_per_minute = Some(narrow(o.value));
            }
            LimitName::AuditRetentionDays => quotas.audit_retention_days = Some(narrow(o.value)),
            LimitName::MaxMembers => quotas.max_members = narrow(o.value),
            LimitName::MaxMemoryPins => quotas.max_memory_pins = o.value,
            LimitName::MaxPinValueBytes => quotas.max_pin_value_bytes = narrow(o.value),
        }
    }
    quotas
}

/// An override to set.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SetOverride {
    /// The limit.
    pub limit: LimitName,
    /// Its value for this tenant.
    pub value: i64,
    /// Until when (`None`: until removed).
    pub expires_at: Option<DateTime<Utc>>,
    /// Why (kept with it and in the audit log).
    pub reason: String,
}

impl SetOverride {
    /// `limit` at `value` until removed, for `reason`.
    pub fn new(limit: LimitName, value: i64, reason: impl Into<String>) -> Self {
        Self {
            limit,
            value,
            expires_at: None,
            reason: reason.into(),
        }
    }

    /// The same, until `expires_at`.
    pub fn until(mut self, expires_at: DateTime<Utc>) -> Self {
        self.expires_at = Some(expires_at);
        self
    }
}

/// The limits in force before and after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitsChange {
    /// Before.
    pub before: PlanQuotas,
    /// After.
    pub after: PlanQuotas,
    /// The override the change stored, as stored (setting one; `None` for a removal or an
    /// expiry).
    pub set: Option<LimitOverride>,
}

/// The limits of the tenant's plan version, its limits in force, and its live overrides at
/// `now`, with the row locked until the caller's transaction ends.
async fn locked(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<(PlanQuotas, PlanQuotas, Vec<LimitOverride>), LimitError> {
    let driver = get_tenant_driver(db);
    if !driver.lock_tenant(tenant).await? {
        return Err(LimitError::TenantNotFound);
    }
    let snapshot = driver
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(LimitError::TenantNotFound)?;
    let live = live_overrides(db, tenant, now).await?;
    let plan = plan_quotas(db, &snapshot.plan, snapshot.plan_version).await?;
    Ok((plan, snapshot.quotas, live))
}

/// The limits of version `version` of `code`, as the plans table holds them (read here, not
/// through `plans`, which names its limits by `LimitName`). A tenant's plan version always
/// exists: versions are never deleted.
async fn plan_quotas(
    db: Db<'_>,
    code: &account_drivers::types::PlanCode,
    version: i32,
) -> Result<PlanQuotas, StorageError> {
    match account_drivers::plans::fetch_plan_version(db, code, version).await? {
        Some(row) => Ok(row.quotas),
        None => Err(StorageError(DriverError::NotFound { entity: "plan" })),
    }
}

async fn live_overrides(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<Vec<LimitOverride>, LimitError> {
    let rows = store::list_overrides(db, tenant).await?;
    Ok(rows
        .into_iter()
        .filter_map(LimitOverride::from_row)
        .filter(|o| o.live_at(now))
        .collect())
}

async fn write(
    db: Db<'_>,
    tenant: TenantId,
    quotas: PlanQuotas,
    now: DateTime<Utc>,
) -> Result<PlanQuotas, LimitError> {
    let after = get_tenant_driver(db)
        .update_tenant_quotas(tenant, quotas, now)
        .await?
        .ok_or(LimitError::TenantNotFound)?;
    Ok(after.quotas)
}

/// Sets the tenant's override of `request.limit` (replacing one it had) and applies it.
pub async fn set(
    db: Db<'_>,
    tenant: TenantId,
    request: &SetOverride,
    set_by: &str,
    now: DateTime<Utc>,
) -> Result<LimitsChange, LimitError> {
    let (min, max) = request.limit.range();
    if !(min..=max).contains(&request.value) {
        return Err(LimitError::ValueOutOfRange {
            limit: request.limit,
            min,
            max,
        });
    }
    if request.expires_at.is_some_and(|until| until <= now) {
        return Err(LimitError::ExpiryInPast);
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_LENGTH || reason.contains('\0') {
        return Err(LimitError::InvalidReason);
    }
    let (plan, before, mut live) = locked(db, tenant, now).await?;
    let row = OverrideRow {
        tenant_id: tenant,
        limit_name: request.limit.as_str().to_owned(),
        value: request.value,
        expires_at: request
            .expires_at
            .map(|until| chrono::SubsecRound::trunc_subsecs(until, 6)),
        reason: reason.to_owned(),
        set_by: set_by.chars().take(200).collect(),
        // Microseconds, as PostgreSQL keeps them: the override returned is the one stored.
        created_at: chrono::SubsecRound::trunc_subsecs(now, 6),
    };
    store::upsert_override(db, &row).await?;
    let set = LimitOverride::from_row(row);
    live.retain(|o| o.limit != request.limit);
    live.extend(set.clone());
    let after = write(db, tenant, apply(plan, &live), now).await?;
    Ok(LimitsChange { before, after, set })
}

/// Removes the tenant's override of `limit`: its plan's value applies again.
pub async fn remove(
    db: Db<'_>,
    tenant: TenantId,
    limit: LimitName,
    now: DateTime<Utc>,
) -> Result<LimitsChange, LimitError> {
    let (plan, before, mut live) = locked(db, tenant, now).await?;
    if !store::delete_override(db, tenant, limit.as_str()).await? {
        return Err(LimitError::NotFound);
    }
    live.retain(|o| o.limit != limit);
    let after = write(db, tenant, apply(plan, &live), now).await?;
    Ok(LimitsChange {
        before,
        after,
        set: None,
    })
}

/// The tenant's overrides, live or expired and not yet reverted.
pub async fn list(db: Db<'_>, tenant: TenantId) -> Result<Vec<LimitOverride>, LimitError> {
    if get_tenant_driver(db)
        .fetch_tenant_snapshot(tenant)
        .await?
        .is_none()
    {
        return Err(LimitError::TenantNotFound);
    }
    let rows = store::list_overrides(db, tenant).await?;
    Ok(rows
        .into_iter()
        .filter_map(LimitOverride::from_row)
        .collect())
}

/// `plan` (a plan version's limits) with the tenant's live overrides laid over them (a plan
/// change keeps the tenant's overrides).
pub async fn effective(
    db: Db<'_>,
    tenant: TenantId,
    plan: PlanQuotas,
    now: DateTime<Utc>,
) -> Result<PlanQuotas, StorageError> {
    let rows = store::list_overrides(db, tenant).await?;
    let live: Vec<LimitOverride> = rows
        .into_iter()
        .filter_map(LimitOverride::from_row)
        .filter(|o| o.live_at(now))
        .collect();
    Ok(apply(plan, &live))
}

/// Deletes the tenant's overrides that expired at `now` and applies what is left: the
/// overrides it deleted and the change, or `None` when another job got there first.
pub async fn expire(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<Option<(Vec<LimitOverride>, LimitsChange)>, LimitError> {
    let (plan, before, live) = locked(db, tenant, now).await?;
    let expired: Vec<LimitOverride> = store::delete_expired(db, tenant, now)
        .await?
        .into_iter()
        .filter_map(LimitOverride::from_row)
        .collect();
    if expired.is_empty() {
        return Ok(None);
    }
    let after = write(db, tenant, apply(plan, &live), now).await?;
    let change = LimitsChange {
        before,
        after,
        set: None,
    };
    Ok(Some((expired, change)))
}

/// Up to `limit` tenants with an override that expired at `now`.
pub async fn tenants_with_expired(
    db: Db<'_>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<TenantId>, LimitError> {
    Ok(store::tenants_with_expired(db, now, limit).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use account_drivers::types::PlanCode;

    fn live(limit: LimitName, value: i64) -> LimitOverride {
        LimitOverride {
            limit,
            value,
            expires_at: None,
            reason: "test".into(),
            set_by: "op".into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn an_override_replaces_only_its_limit() {
        let plan = PlanQuotas::built_in(&PlanCode::enterprise()).unwrap();
        let after = apply(plan, &[live(LimitName::MaxConcurrentRuns, 500)]);
        assert_eq!(after.max_concurrent_runs, 500);
        assert_eq!(
            PlanQuotas {
                max_concurrent_runs: plan.max_concurrent_runs,
                ..after
            },
            plan
        );
        let rpm = apply(plan, &[live(LimitName::MaxRequestsPerMinute, 10)]);
        assert_eq!(rpm.max_requests_per_minute, Some(10));
    }

    #[test]
    fn names_read_back_and_unknown_ones_are_refused() {
        for limit in LimitName::ALL {
            assert_eq!(LimitName::parse(limit.as_str()).unwrap(), limit);
        }
        assert!(matches!(
            LimitName::parse("max_everything"),
            Err(LimitError::UnknownLimit)
        ));
    }

    #[test]
    fn an_override_expiring_now_is_no_longer_live() {
        let now = Utc::now();
        let mut o = live(LimitName::MaxApiKeys, 3);
        o.expires_at = Some(now);
        assert!(!o.live_at(now));
        assert!(o.live_at(now - chrono::Duration::seconds(1)));
    }
}
