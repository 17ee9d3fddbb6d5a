//! Tenants and their quotas (TenantEngine): creation with its owner, plan changes, and the
//! projects view members have of them (`projects`).

mod projects;

pub use projects::*;

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::memberships::MembershipSnapshot;
use account_drivers::tenants::{NewTenant, TenantCoreSnapshot};
use account_drivers::types::{
    Email, EmailError, MembershipRole, PlanCode, Slug, SlugError, TenantId, TenantName,
    TenantStatus, TextError, UserId,
};
use account_drivers::{get_accounts_facade_driver, get_tenant_driver, get_user_write_driver};
use chrono::{DateTime, Utc};

/// Longest usage summary period.
pub(crate) const MAX_SUMMARY_DAYS: i64 = 366;

/// Why a tenant operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// No such tenant.
    #[error("tenant not found; check the tenant id")]
    NotFound,
    /// The would-be owner has no user account.
    #[error("the owner {0} has no user account; create the user first or name an existing one")]
    OwnerNotFound(UserId),
    /// The name is empty, too long or has control characters.
    #[error(transparent)]
    InvalidName(#[from] TextError),
    /// The slug is malformed.
    #[error(transparent)]
    InvalidSlug(#[from] SlugError),
    /// The billing email is not an email address.
    #[error("billing_email: {0}")]
    InvalidBillingEmail(#[from] EmailError),
    /// Another tenant has the slug.
    #[error("slug `{0}` is taken; choose another")]
    SlugTaken(String),
    /// The plan is already the tenant's.
    #[error("the tenant is already on the newest version of the {0} plan; choose another plan")]
    SamePlan(PlanCode),
    /// Plans only change for live tenants.
    #[error(
        "the tenant is {0}; plans change only for active or suspended tenants, so resume it first"
    )]
    Inactive(TenantStatus),
    /// The project (tenant) does not exist or the caller is not one of its members; the two
    /// are deliberately indistinguishable.
    #[error("project not found")]
    ProjectNotFound,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// The period is empty, reversed or longer than a year.
    #[error("the period must start before it ends and span at most {MAX_SUMMARY_DAYS} days")]
    InvalidPeriod,
    /// The plan asked for does not exist, is retired, or is not a plan code.
    #[error("plan: {0}")]
    Plan(#[source] crate::plans::PlanError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<crate::plans::PlanError> for TenantError {
    fn from(error: crate::plans::PlanError) -> Self {
        match error {
            crate::plans::PlanError::Storage(e) => Self::Storage(e),
            other => Self::Plan(other),
        }
    }
}

impl From<DriverError> for TenantError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for TenantError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for TenantError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "tenant_not_found",
            Self::OwnerNotFound(_) => "owner_not_found",
            Self::InvalidName(_) => "invalid_name",
            Self::InvalidSlug(_) => "invalid_slug",
            Self::InvalidBillingEmail(_) => "invalid_billing_email",
            Self::SlugTaken(_) => "slug_taken",
            Self::SamePlan(_) => "same_plan",
            Self::Inactive(_) => "tenant_inactive",
            Self::InvalidPeriod => "invalid_period",
            Self::ProjectNotFound => "project_not_found",
            Self::InvalidPage => "invalid_page",
            Self::Plan(e) => e.code(),
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::NotFound | Self::OwnerNotFound(_) | Self::ProjectNotFound => 404,
            Self::InvalidName(_)
            | Self::InvalidSlug(_)
            | Self::InvalidBillingEmail(_)
            | Self::InvalidPeriod
            | Self::InvalidPage
            // A plan named in the request that cannot be had: the request's fault.
            | Self::Plan(_) => 422,
            Self::SlugTaken(_) | Self::SamePlan(_) | Self::Inactive(_) => 409,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidName(_) => Some("name"),
            Self::InvalidPage => Some("limit"),
            Self::Plan(_) => Some("plan"),
            _ => None,
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
    pub plan: PlanCode,
    /// The creator, who becomes its owner; an existing user.
    pub owner: UserId,
    /// Where invoices go; parsed and normalised as an email address.
    pub billing_email: Option<String>,
}

/// A created tenant and its owner's membership.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: TenantCoreSnapshot,
    /// The creator's owner membership.
    pub owner: MembershipSnapshot,
}

/// Creates a tenant with its plan's quotas and makes the creator its owner, in the caller's
/// transaction. A taken slug is reported as such (the unique index decides, not a pre-check);
/// an owner without a user account is [`TenantError::OwnerNotFound`], checked before anything
/// is written (and again by the foreign key, should the user vanish meanwhile).
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
    let billing_email = request
        .billing_email
        .as_deref()
        .map(Email::parse)
        .transpose()?;
    let plan = crate::plans::current(db, &request.plan).await?;
    if get_user_write_driver(db)
        .fetch_user_by_id(request.owner)
        .await?
        .is_none()
    {
        return Err(TenantError::OwnerNotFound(request.owner));
    }
    let inserted = get_tenant_driver(db)
        .insert_tenant(
            NewTenant {
                id: TenantId::new(),
                name: name.as_str().to_owned(),
                slug: slug.as_str().to_owned(),
                plan: request.plan,
                plan_version: plan.version,
                warn_at_percent: plan.warn_at_percent,
                quotas: plan.limits,
                external_org_id: None,
                billing_email: billing_email.map(String::from),
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
    let owner = match get_accounts_facade_driver(db)
        .insert_membership(tenant.id, request.owner, MembershipRole::Owner, None, now)
        .await
    {
        Err(DriverError::ForeignKey { .. }) => {
            return Err(TenantError::OwnerNotFound(request.owner));
        }
        other => other?,
    };
    // A user's first tenant becomes their default; a later one leaves it be.
    get_accounts_facade_driver(db)
        .update_default_tenant_if_unset(request.owner, tenant.id, now)
        .await?;
    Ok(CreatedTenant { tenant, owner })
}

/// Moves the tenant to the newest version on sale of `plan` (its own plan too, when that has a
/// newer version than the tenant's) and re-applies that version's limits under the tenant's
/// overrides.
pub async fn change_plan(
    db: Db<'_>,
    tenant: TenantId,
    plan: PlanCode,
    now: DateTime<Utc>,
) -> Result<(TenantCoreSnapshot, TenantCoreSnapshot), TenantError> {
    let driver = get_tenant_driver(db);
    let before = driver
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(TenantError::NotFound)?;
    let version = crate::plans::current(db, &plan).await?;
    if before.plan == plan && before.plan_version == version.version {
        return Err(TenantError::SamePlan(plan));
    }
    if !matches!(
        before.status,
        TenantStatus::Active | TenantStatus::Suspended
    ) {
        return Err(TenantError::Inactive(before.status));
    }
    // The tenant's overrides outlive a plan change.
    let quotas = crate::limits::effective(db, tenant, version.limits, now).await?;
    let after = driver
        .update_tenant_plan(
            tenant,
            &plan,
            account_drivers::tenants::PlanVersionRef {
                version: version.version,
                warn_at_percent: version.warn_at_percent,
            },
            quotas,
            now,
        )
        .await?
        .ok_or(TenantError::NotFound)?;
    Ok((before, after))
}

/// The tenant's lifecycle status, or `None` when there is no such tenant.
pub async fn status(db: Db<'_>, tenant: TenantId) -> Result<Option<TenantStatus>, StorageError> {
    // The status column alone: every use case's capability check runs this.
    Ok(account_drivers::get_tenant_lifecycle_driver(db)
        .fetch_tenant_status(tenant)
        .await?)
}

/// The tenant's quotas, counters and states.
pub async fn snapshot(db: Db<'_>, tenant: TenantId) -> Result<TenantCoreSnapshot, TenantError> {
    get_tenant_driver(db)
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(TenantError::NotFound)
}

/// The tenant's limit on its requests per minute (`None`: none, or no such tenant).
pub async fn request_limit(db: Db<'_>, tenant: TenantId) -> Result<Option<i32>, TenantError> {
    Ok(get_tenant_driver(db).fetch_request_limit(tenant).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            TenantError::NotFound,
            TenantError::OwnerNotFound(UserId::new()),
            TenantError::InvalidName(TextError::Empty {
                field: "tenant name",
            }),
            TenantError::InvalidSlug(SlugError::TooShort),
            TenantError::InvalidBillingEmail(EmailError::MissingAt),
            TenantError::SlugTaken("acme".into()),
            TenantError::SamePlan(PlanCode::pro()),
            TenantError::Inactive(TenantStatus::Terminated),
            TenantError::InvalidPeriod,
            TenantError::InvalidPage,
            TenantError::Plan(crate::plans::PlanError::NotFound),
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                TenantError::NotFound
                | TenantError::OwnerNotFound(_)
                | TenantError::InvalidName(_)
                | TenantError::InvalidSlug(_)
                | TenantError::InvalidBillingEmail(_)
                | TenantError::SlugTaken(_)
                | TenantError::SamePlan(_)
                | TenantError::Inactive(_)
                | TenantError::InvalidPeriod
                | TenantError::InvalidPage
                | TenantError::Plan(_) => {}
                // The seed's message, as short as its code: checked below.
                TenantError::ProjectNotFound => unreachable!("not listed"),
                TenantError::Storage(_) => unreachable!("not caller-caused"),
            }
        }
        crate::error::assert_caller_errors(&errors);
        let hidden = TenantError::ProjectNotFound;
        assert_eq!(
            (hidden.code(), hidden.http_status(), hidden.to_string()),
            ("project_not_found", 404, "project not found".to_owned())
        );
        assert_eq!(
            TenantError::InvalidBillingEmail(EmailError::MissingAt).to_string(),
            "billing_email: email must contain an `@`"
        );
    }
}
