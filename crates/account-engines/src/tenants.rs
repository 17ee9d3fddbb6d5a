//! Tenants and their quotas (TenantEngine): creation with its owner, plan changes, usage.

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::memberships::MembershipSnapshot;
use account_drivers::tenants::{NewTenant, TenantCoreSnapshot};
use account_drivers::types::{
    MembershipRole, Plan, Slug, SlugError, TenantId, TenantName, TenantStatus, TextError, UserId,
};
pub use account_drivers::usage_records::MeterTotal;
use account_drivers::{get_accounts_facade_driver, get_tenant_driver};
use chrono::{DateTime, TimeDelta, Utc};

/// Longest usage summary period.
const MAX_SUMMARY_DAYS: i64 = 366;

/// Why a tenant operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// No such tenant.
    #[error("tenant not found")]
    NotFound,
    /// The name is empty, too long or has control characters.
    #[error(transparent)]
    InvalidName(#[from] TextError),
    /// The slug is malformed.
    #[error(transparent)]
    InvalidSlug(#[from] SlugError),
    /// Another tenant has the slug.
    #[error("slug `{0}` is taken; choose another")]
    SlugTaken(String),
    /// The plan is already the tenant's.
    #[error("the tenant is already on the {0} plan")]
    SamePlan(Plan),
    /// Plans only change for live tenants.
    #[error("the tenant is {0}; plans change only for active or suspended tenants")]
    Inactive(TenantStatus),
    /// The period is empty, reversed or longer than a year.
    #[error("the period must start before it ends and span at most {MAX_SUMMARY_DAYS} days")]
    InvalidPeriod,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for TenantError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for TenantError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "tenant_not_found",
            Self::InvalidName(_) => "invalid_name",
            Self::InvalidSlug(_) => "invalid_slug",
            Self::SlugTaken(_) => "slug_taken",
            Self::SamePlan(_) => "same_plan",
            Self::Inactive(_) => "tenant_inactive",
            Self::InvalidPeriod => "invalid_period",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::InvalidName(_) | Self::InvalidSlug(_) | Self::InvalidPeriod => 422,
            Self::SlugTaken(_) | Self::SamePlan(_) | Self::Inactive(_) => 409,
            Self::Storage(e) => e.http_status(),
        }
    }
}

/// A tenant to create.
#[derive(Clone, Debug)]
pub struct CreateTenant {
    /// Display name (1 to 255 characters).
    pub name: String,
    /// Handle; derived from the name when absent.
    pub slug: Option<String>,
    /// Plan; free by default.
    pub plan: Plan,
    /// The creator, who becomes its owner.
    pub owner: UserId,
    /// Where invoices go.
    pub billing_email: Option<String>,
}

/// A created tenant and its owner's membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: TenantCoreSnapshot,
    /// The creator's owner membership.
    pub owner: MembershipSnapshot,
}

/// Creates a tenant with its plan's quotas and makes the creator its owner, in the caller's
/// transaction. A taken slug is reported as such (the unique index decides, not a pre-check).
pub async fn create_tenant(
    db: Db<'_>,
    request: CreateTenant,
    now: DateTime<Utc>,
) -> Result<CreatedTenant, TenantError> {
    let name = TenantName::parse(&request.name)?;
    let slug = match request.slug.as_deref() {
        Some(slug) => Slug::parse(slug)?,
        None => Slug::from_name(name.as_str())?,
    };
    let inserted = get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id: TenantId::new(),
                name: name.as_str().to_owned(),
                slug: slug.as_str().to_owned(),
                plan: request.plan,
                quotas: request.plan.quotas(),
                external_org_id: None,
                billing_email: request.billing_email,
            },
            now,
        )
        .await;
    let tenant = match inserted {
        Err(error) if error.conflicting_constraint() == Some("uq_tenants_slug") => {
            return Err(TenantError::SlugTaken(slug.as_str().to_owned()));
        }
        other => other?,
    };
    let owner = get_accounts_facade_driver(db)
        .insert_membership(tenant.id, request.owner, MembershipRole::Owner, None, now)
        .await?;
    Ok(CreatedTenant { tenant, owner })
}

/// Moves the tenant to `plan` and re-applies that plan's quotas.
pub async fn change_plan(
    db: Db<'_>,
    tenant: TenantId,
    plan: Plan,
    now: DateTime<Utc>,
) -> Result<(TenantCoreSnapshot, TenantCoreSnapshot), TenantError> {
    let driver = get_tenant_driver(db);
    let before = driver
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(TenantError::NotFound)?;
    if before.plan == plan {
        return Err(TenantError::SamePlan(plan));
    }
    if !matches!(
        before.status,
        TenantStatus::Active | TenantStatus::Suspended
    ) {
        return Err(TenantError::Inactive(before.status));
    }
    let after = driver
        .update_tenant_plan(tenant, plan, plan.quotas(), now)
        .await?
        .ok_or(TenantError::NotFound)?;
    Ok((before, after))
}

/// Usage per meter over `[start, end)`, summed by the database.
pub async fn usage_summary(
    db: Db<'_>,
    tenant: TenantId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<MeterTotal>, TenantError> {
    if start >= end || end - start > TimeDelta::days(MAX_SUMMARY_DAYS) {
        return Err(TenantError::InvalidPeriod);
    }
    Ok(get_tenant_driver(db)
        .summarize_usage(tenant, start, end)
        .await?)
}

/// The tenant's lifecycle status, or `None` when there is no such tenant.
pub async fn status(db: Db<'_>, tenant: TenantId) -> Result<Option<TenantStatus>, StorageError> {
    Ok(get_tenant_driver(db)
        .fetch_tenant_by_id(tenant)
        .await?
        .map(|t| t.status))
}

/// The tenant's quotas, counters and states.
pub async fn snapshot(db: Db<'_>, tenant: TenantId) -> Result<TenantCoreSnapshot, TenantError> {
    get_tenant_driver(db)
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(TenantError::NotFound)
}
