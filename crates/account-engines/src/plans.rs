//! Plans as data: operators create plans, add versions and retire them; tenants are on one
//! version of one plan.
//!
//! A version is immutable once stored: changing a plan's limits adds a version, which new
//! tenants and plan changes get, while tenants already on the plan keep the version they
//! have until their plan changes (so a price or limit change never reaches a customer
//! unannounced). A retired version takes no new tenants. The default plan (`free`) cannot lose
//! its last version: every new tenant needs it.

use crate::limits::LimitName;
use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::plans::{self as store, PlanRow};
use account_drivers::types::{PlanCode, PlanQuotas};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most entitlements one plan version names.
pub const MAX_ENTITLEMENTS: usize = 100;
/// Longest display name, in characters.
pub const MAX_NAME_LENGTH: usize = 100;

/// What a plan grants beyond its limits: a feature switched on, or a feature with a number
/// (`"sso": true`, `"data_retention_exports": 12`). Absent means not granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Entitlement {
    /// Switched on (`true`; `false` is refused: leave the feature out).
    Enabled(bool),
    /// Granted with this number.
    Value(i64),
}

/// Entitlements by feature name (1 to 64 characters of `a-z`, `0-9`, `_`, `.`, `-`).
pub type Entitlements = BTreeMap<String, Entitlement>;

/// One version of one plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The plan's code.
    pub code: PlanCode,
    /// This version, from 1.
    pub version: i32,
    /// Display name.
    pub name: String,
    /// The limits it grants.
    pub limits: PlanQuotas,
    /// What it grants beyond limits.
    pub entitlements: Entitlements,
    /// Usage, in percent of a limit, at which a `limit.warning` event goes out, once per period.
    pub warn_at_percent: Option<i32>,
    /// When the version was created.
    pub created_at: DateTime<Utc>,
    /// When it was retired (no new tenants since); `None` while on sale.
    pub retired_at: Option<DateTime<Utc>>,
}

impl Plan {
    fn from_row(row: PlanRow) -> Self {
        // Stored by `create_version` only, so it parses; a hand-edited row that does not
        // grants nothing rather than failing every read of the plan.
        let entitlements = serde_json::from_str(&row.entitlements).unwrap_or_default();
        Self {
            code: row.code,
            version: row.version,
            name: row.name,
            limits: row.quotas,
            entitlements,
            warn_at_percent: row.warn_at_percent,
            created_at: row.created_at,
            retired_at: row.retired_at,
        }
    }
}

/// A plan version to create: the next version of `code` (version 1 of a new code).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct NewPlanVersion {
    /// The plan's code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// The limits it grants.
    pub limits: PlanQuotas,
    /// What it grants beyond limits.
    #[serde(default)]
    pub entitlements: Entitlements,
    /// Warning threshold, 1 to 99 percent of each limit.
    #[serde(default)]
    pub warn_at_percent: Option<i32>,
}

impl NewPlanVersion {
    /// A version of `code` named `name` granting `limits`, nothing more.
    pub fn new(code: impl Into<String>, name: impl Into<String>, limits: PlanQuotas) -> Self {
        Self {
            code: code.into(),
            name: name.into(),
            limits,
            entitlements: Entitlements::new(),
            warn_at_percent: None,
        }
    }

    /// The same, with `entitlements`.
    pub fn with_entitlements(mut self, entitlements: Entitlements) -> Self {
        self.entitlements = entitlements;
        self
    }

    /// The same, warning at `percent` of each limit.
    pub fn warning_at(mut self, percent: i32) -> Self {
        self.warn_at_percent = Some(percent);
        self
    }
}

/// Why a plan operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The code is not a plan code.
    #[error(transparent)]
    InvalidCode(#[from] account_drivers::types::PlanCodeError),
    /// The name is empty, too long or has control characters.
    #[error("name must be 1 to {MAX_NAME_LENGTH} characters without control characters")]
    InvalidName,
    /// A limit is out of its range.
    #[error("limits.{limit} must be {min} to {max}")]
    LimitOutOfRange {
        /// The limit.
        limit: LimitName,
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// An entitlement's name or value is not allowed.
    #[error(
        "entitlements: at most {MAX_ENTITLEMENTS}, names of 1 to 64 characters of a-z, 0-9, `_`, `.`, `-`, values true or a number (`{0}`)"
    )]
    InvalidEntitlement(String),
    /// The warning threshold is not 1 to 99.
    #[error("warn_at_percent must be 1 to 99")]
    InvalidWarning,
    /// No such plan (or version).
    #[error("plan not found")]
    NotFound,
    /// Every version of the plan is retired: it takes no tenants.
    #[error("plan `{0}` is retired; choose a plan on sale")]
    Retired(PlanCode),
    /// The last version on sale of the default plan cannot be retired.
    #[error("the last version on sale of the default plan `free` cannot be retired")]
    DefaultPlan,
    /// Another operator added a version of the plan at the same moment.
    #[error("another version of the plan was created at the same moment; retry")]
    VersionRace,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for PlanError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for PlanError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidCode(_) => "invalid_plan_code",
            Self::InvalidName => "invalid_name",
            Self::LimitOutOfRange { .. } => "invalid_limit_value",
            Self::InvalidEntitlement(_) => "invalid_entitlement",
            Self::InvalidWarning => "invalid_warning_threshold",
            Self::NotFound => "plan_not_found",
            Self::Retired(_) => "plan_retired",
            Self::DefaultPlan => "default_plan",
            Self::VersionRace => "conflict_retry",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InvalidCode(_)
            | Self::InvalidName
            | Self::LimitOutOfRange { .. }
            | Self::InvalidEntitlement(_)
            | Self::InvalidWarning
            | Self::Retired(_) => 422,
            Self::NotFound => 404,
            Self::DefaultPlan | Self::VersionRace => 409,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidCode(_) | Self::Retired(_) => Some("code"),
            Self::InvalidName => Some("name"),
            Self::LimitOutOfRange { limit, .. } => Some(match limit {
                LimitName::MaxWorkers => "limits.max_workers",
                LimitName::MaxRunsPerDay => "limits.max_runs_per_day",
                LimitName::MaxConcurrentRuns => "limits.max_concurrent_runs",
                LimitName::MaxTokensPerMonth => "limits.max_tokens_per_month",
                LimitName::MaxApiKeys => "limits.max_api_keys",
                LimitName::MaxRequestsPerMinute => "limits.max_requests_per_minute",
                LimitName::AuditRetentionDays => "limits.audit_retention_days",
                LimitName::MaxMembers => "limits.max_members",
                LimitName::MaxMemoryPins => "limits.max_memory_pins",
                LimitName::MaxPinValueBytes => "limits.max_pin_value_bytes",
            }),
            Self::InvalidEntitlement(_) => Some("entitlements"),
            Self::InvalidWarning => Some("warn_at_percent"),
            _ => None,
        }
    }
}

fn valid_feature_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// Checks `request` and stores it as the next version of its plan.
pub async fn create_version(
    db: Db<'_>,
    request: &NewPlanVersion,
    now: DateTime<Utc>,
) -> Result<Plan, PlanError> {
    let code = PlanCode::parse(&request.code)?;
    let name = request.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_LENGTH
        || name.chars().any(char::is_control)
    {
        return Err(PlanError::InvalidName);
    }
    for limit in LimitName::ALL {
        let (min, max) = limit.range();
        if let Some(value) = limit.value_in(&request.limits)
            && !(min..=max).contains(&value)
        {
            return Err(PlanError::LimitOutOfRange { limit, min, max });
        }
    }
    if request.entitlements.len() > MAX_ENTITLEMENTS {
        return Err(PlanError::InvalidEntitlement(format!(
            "{} entitlements",
            request.entitlements.len()
        )));
    }
    for (feature, value) in &request.entitlements {
        if !valid_feature_name(feature) || *value == Entitlement::Enabled(false) {
            return Err(PlanError::InvalidEntitlement(
                feature.chars().take(64).collect(),
            ));
        }
    }
    if request
        .warn_at_percent
        .is_some_and(|percent| !(1..=99).contains(&percent))
    {
        return Err(PlanError::InvalidWarning);
    }
    let mut row = PlanRow {
        code,
        version: 0,
        name: name.to_owned(),
        quotas: request.limits,
        entitlements: serde_json::to_string(&request.entitlements)
            .map_err(|e| PlanError::InvalidEntitlement(e.to_string()))?,
        warn_at_percent: request.warn_at_percent,
        // Microseconds, as PostgreSQL keeps them: the plan returned is the one stored.
        created_at: chrono::SubsecRound::trunc_subsecs(now, 6),
        retired_at: None,
    };
    row.version = match store::insert_next_version(db, &row).await {
        Err(DriverError::Conflict { .. }) => return Err(PlanError::VersionRace),
        other => other?,
    };
    Ok(Plan::from_row(row))
}

/// Retires version `version` of `code`: it takes no new tenants; tenants on it keep it.
pub async fn retire(
    db: Db<'_>,
    code: &PlanCode,
    version: i32,
    now: DateTime<Utc>,
) -> Result<Plan, PlanError> {
    let row = store::fetch_plan_version(db, code, version)
        .await?
        .ok_or(PlanError::NotFound)?;
    if row.retired_at.is_some() {
        return Ok(Plan::from_row(row));
    }
    if *code == PlanCode::free() {
        let on_sale = store::list_plans(db)
            .await?
            .into_iter()
            .filter(|p| p.code == *code && p.retired_at.is_none())
            .count();
        if on_sale <= 1 {
            return Err(PlanError::DefaultPlan);
        }
    }
    let at = chrono::SubsecRound::trunc_subsecs(now, 6);
    store::retire_version(db, code, version, at).await?;
    Ok(Plan::from_row(PlanRow {
        retired_at: Some(at),
        ..row
    }))
}

/// Every version of every plan, by code then version.
pub async fn list(db: Db<'_>) -> Result<Vec<Plan>, PlanError> {
    Ok(store::list_plans(db)
        .await?
        .into_iter()
        .map(Plan::from_row)
        .collect())
}

/// The version of `code` a tenant joining or moving to it gets: its newest on sale.
pub async fn current(db: Db<'_>, code: &PlanCode) -> Result<Plan, PlanError> {
    match store::fetch_current_plan(db, code).await? {
        Some(row) => Ok(Plan::from_row(row)),
        None if store::list_plans(db).await?.iter().any(|p| p.code == *code) => {
            Err(PlanError::Retired(code.clone()))
        }
        None => Err(PlanError::NotFound),
    }
}

/// Version `version` of `code`, retired or not (what a tenant on it has).
pub async fn version(db: Db<'_>, code: &PlanCode, version: i32) -> Result<Plan, PlanError> {
    store::fetch_plan_version(db, code, version)
        .await?
        .map(Plan::from_row)
        .ok_or(PlanError::NotFound)
}

/// One of a tenant's limits: its value in force, its plan's, and what the tenant uses of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LimitUsage {
    /// The limit.
    pub limit: LimitName,
    /// In force: the plan's, or the tenant's override (`None`: no limit).
    pub value: Option<i64>,
    /// The tenant's plan version's value.
    pub plan_value: Option<i64>,
    /// Used now, in the current period for per-period limits (`None`: not a count, e.g.
    /// the audit retention or the per-minute request rate).
    pub used: Option<i64>,
}

/// What a tenant has: its plan version, that version's entitlements, and every limit with its
/// usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TenantEntitlements {
    /// The plan's code.
    pub plan: PlanCode,
    /// The version the tenant is on.
    pub plan_version: i32,
    /// The plan's display name.
    pub plan_name: String,
    /// What the plan grants beyond limits.
    pub features: Entitlements,
    /// Every limit, in [`LimitName::ALL`] order.
    pub limits: Vec<LimitUsage>,
    /// The plan's warning threshold, in percent.
    pub warn_at_percent: Option<i32>,
}

/// `tenant`'s entitlements and usage at `now`, in three statements.
pub async fn tenant_entitlements(
    db: Db<'_>,
    tenant: account_drivers::types::TenantId,
    now: DateTime<Utc>,
) -> Result<TenantEntitlements, PlanError> {
    let snapshot = account_drivers::get_tenant_driver(db)
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(PlanError::NotFound)?;
    let plan = version(db, &snapshot.plan, snapshot.plan_version).await?;
    let rows = store::fetch_row_usage(db, tenant, now)
        .await?
        .unwrap_or_default();
    let counters = crate::billing::current_usage(&snapshot, now);
    let used = |limit: LimitName| -> Option<i64> {
        Some(match limit {
            LimitName::MaxWorkers => i64::from(counters.active_workers),
            LimitName::MaxRunsPerDay => i64::from(counters.runs_today),
            LimitName::MaxConcurrentRuns => i64::from(counters.active_runs),
            LimitName::MaxTokensPerMonth => counters.tokens_this_month + counters.tokens_reserved,
            LimitName::MaxApiKeys => rows.api_keys,
            LimitName::MaxMembers => rows.seats,
            LimitName::MaxMemoryPins => rows.memory_pins,
            _ => return None,
        })
    };
    let limits = LimitName::ALL
        .into_iter()
        .map(|limit| LimitUsage {
            limit,
            value: limit.value_in(&snapshot.quotas),
            plan_value: limit.value_in(&plan.limits),
            used: used(limit),
        })
        .collect();
    Ok(TenantEntitlements {
        plan: plan.code,
        plan_version: plan.version,
        plan_name: plan.name,
        features: plan.entitlements,
        limits,
        warn_at_percent: plan.warn_at_percent,
    })
}
