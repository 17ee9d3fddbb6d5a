//! Self-service projects: a signed-in person creates a project and becomes its owner (at most
//! [`MAX_OWNED_PROJECTS`] owned at once), an owner or admin renames it, an owner deletes it
//! (soft: the tenant is gone to every request until restored) and restores it within the
//! window ([`RESTORE_WINDOW_DAYS`]), and the purge removes a deleted tenant's rows once the
//! window closed, one bounded batch per call.
//!
//! The purge deletes the tenant's audit rows too: they name its people (user ids, addresses,
//! user agents). What survives is the platform's own record that the tenant was purged,
//! written by the spine without a tenant and without personal data.

use crate::tenants::{CreateTenant, CreatedTenant, TenantError};
use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::projects::{self, DeletionRow, TENANT_OWNED_TABLES};
use account_drivers::types::{PlanCode, TenantId, TenantName, TextError, UserId};
use chrono::{DateTime, Duration, Utc};

pub use account_drivers::projects::DeletionRow as ProjectDeletion;

/// Days a deleted project can be restored before the purge may remove it.
pub const RESTORE_WINDOW_DAYS: i64 = 30;

/// Projects one person may own at once, deleted ones awaiting the purge included (they still
/// hold their rows): a bound on what one sign-in can make the platform store. An operator's
/// tenant creation is not bound by it.
pub const MAX_OWNED_PROJECTS: u64 = 10;

/// Why a self-service project operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// The person owns as many projects as one may.
    #[error(
        "you own {owned} projects, the most one person may; delete one (it counts until purged) or ask to join an existing one"
    )]
    ProjectLimit {
        /// Projects they own.
        owned: u64,
    },
    /// Restore was asked of a project that is not deleted.
    #[error("the project is not deleted; there is nothing to restore")]
    NotDeleted,
    /// The restore window closed: the project is (or is about to be) purged.
    #[error("the project's restore window closed at {0}; it can no longer be restored")]
    WindowClosed(DateTime<Utc>),
    /// The name is empty, too long or has control characters.
    #[error(transparent)]
    InvalidName(#[from] TextError),
    /// A tenant rule refused it (a taken slug, no such project).
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for ProjectError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for ProjectError {
    fn code(&self) -> &'static str {
        match self {
            Self::ProjectLimit { .. } => "project_limit",
            Self::NotDeleted => "project_not_deleted",
            Self::WindowClosed(_) => "restore_window_closed",
            Self::InvalidName(_) => "invalid_name",
            Self::Tenant(e) => e.code(),
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::ProjectLimit { .. } | Self::NotDeleted | Self::WindowClosed(_) => 409,
            Self::InvalidName(_) => 422,
            Self::Tenant(e) => e.http_status(),
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidName(_) => Some("name"),
            Self::Tenant(e) => e.field(),
            _ => None,
        }
    }
}

/// Creates a project owned by `owner` on the default plan (free): the tenant, with its
/// owner's membership, after locking the owner's row and counting what they own, so two
/// creations at once cannot both take the last place.
pub async fn create_project(
    db: Db<'_>,
    owner: UserId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<CreatedTenant, ProjectError> {
    TenantName::parse(name)?;
    if !projects::lock_user(db, owner).await? {
        return Err(TenantError::OwnerNotFound(owner).into());
    }
    let owned = projects::count_owned(db, owner).await?;
    if owned >= MAX_OWNED_PROJECTS {
        return Err(ProjectError::ProjectLimit { owned });
    }
    let request = CreateTenant {
        name: name.to_owned(),
        slug: None,
        plan: PlanCode::free(),
        owner,
        billing_email: None,
    };
    let created = match crate::tenants::create_tenant(db, request, now).await {
        // A name another tenant's slug already derives from: the handle takes the id's tail.
        Err(TenantError::SlugTaken(slug)) => {
            let request = CreateTenant {
                name: name.to_owned(),
                slug: Some(format!("{slug}-{}", short_suffix())),
                plan: PlanCode::free(),
                owner,
                billing_email: None,
            };
            crate::tenants::create_tenant(db, request, now).await?
        }
        other => other?,
    };
    Ok(created)
}

/// Eight characters of a fresh id, to make a taken slug unique.
fn short_suffix() -> String {
    let id = TenantId::new().as_uuid().simple().to_string();
    id.chars().rev().take(8).collect()
}

/// Renames the tenant; the names before and after. A deleted or missing project is
/// [`TenantError::ProjectNotFound`].
pub async fn rename_project(
    db: Db<'_>,
    tenant: TenantId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(String, String), ProjectError> {
    let name = TenantName::parse(name)?;
    let before = match crate::tenants::snapshot(db, tenant).await {
        Err(TenantError::NotFound) => return Err(TenantError::ProjectNotFound.into()),
        other => other?,
    };
    if !projects::update_tenant_name(db, tenant, name.as_str(), now).await? {
        return Err(TenantError::ProjectNotFound.into());
    }
    Ok((before.name, name.as_str().to_owned()))
}

/// Deletes the tenant softly: gone to every request from this transaction's commit, restorable
/// until `now` plus [`RESTORE_WINDOW_DAYS`]. Already deleted: [`TenantError::ProjectNotFound`]
/// (as every other request about it answers).
pub async fn delete_project(
    db: Db<'_>,
    tenant: TenantId,
    by: UserId,
    now: DateTime<Utc>,
) -> Result<DeletionRow, ProjectError> {
    let purge_after = now + Duration::days(RESTORE_WINDOW_DAYS);
    projects::insert_deletion(db, tenant, by, now, purge_after)
        .await?
        .ok_or(TenantError::ProjectNotFound.into())
}

/// The tenant's deletion, if it is deleted (for restore's checks, which must see it).
pub async fn deletion(db: Db<'_>, tenant: TenantId) -> Result<Option<DeletionRow>, ProjectError> {
    Ok(projects::fetch_deletion(db, tenant).await?)
}

/// Restores a deleted tenant while its window is open; the deletion taken back.
pub async fn restore_project(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<DeletionRow, ProjectError> {
    match projects::delete_deletion_before_purge(db, tenant, now).await? {
        Some(deletion) => Ok(deletion),
        None => match projects::fetch_deletion(db, tenant).await? {
            Some(deletion) => Err(ProjectError::WindowClosed(deletion.purge_after)),
            None => Err(ProjectError::NotDeleted),
        },
    }
}

/// Deleted tenants whose window closed at `now`, at most `limit`.
pub async fn due_for_purge(
    db: Db<'_>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DeletionRow>, ProjectError> {
    Ok(projects::deletions_due(db, now, limit).await?)
}

/// What one purge step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PurgeStep {
    /// Deleted `rows` of `table`.
    Rows {
        /// The table.
        table: &'static str,
        /// Rows deleted.
        rows: u64,
    },
    /// Cleared `users` rows' default tenant.
    DefaultTenants {
        /// Users changed.
        rows: u64,
    },
    /// Deleted the tenant row and its deletion: the purge is complete.
    Done,
    /// Nothing to do: the tenant is not due (restored, purged by another, or not deleted).
    NotDue,
}

/// One step of a due tenant's purge, at most `batch` rows in one statement: the first table
/// of [`TENANT_OWNED_TABLES`] still holding rows of the tenant (each step looks from the
/// first again, an index probe per empty table, so a row written meanwhile is not left
/// behind), then users' default tenant, then the tenant row. Checks first that the tenant is
/// deleted and due, so a purge never touches a tenant restored meanwhile.
pub async fn purge_step(
    db: Db<'_>,
    tenant: TenantId,
    batch: u64,
    now: DateTime<Utc>,
) -> Result<PurgeStep, ProjectError> {
    let batch = batch.max(1);
    match projects::fetch_deletion(db, tenant).await? {
        Some(deletion) if deletion.purge_after <= now => {}
        _ => return Ok(PurgeStep::NotDue),
    }
    for table in TENANT_OWNED_TABLES {
        let rows = projects::purge_rows(db, table, tenant, batch).await?;
        if rows > 0 {
            return Ok(PurgeStep::Rows { table, rows });
        }
    }
    let rows = projects::clear_default_tenants(db, tenant, batch).await?;
    if rows > 0 {
        return Ok(PurgeStep::DefaultTenants { rows });
    }
    if projects::delete_tenant(db, tenant, now).await? {
        Ok(PurgeStep::Done)
    } else {
        Ok(PurgeStep::NotDue)
    }
}

/// The tables a purge empties, in its order (for reports and tests).
pub fn purged_tables() -> &'static [&'static str] {
    TENANT_OWNED_TABLES
}

/// Checks that `user` owns the tenant, deleted or not (restore must see a deleted tenant's
/// memberships); anyone else meets [`TenantError::ProjectNotFound`], as for no such project.
pub async fn require_owner(db: Db<'_>, tenant: TenantId, user: UserId) -> Result<(), ProjectError> {
    let membership = account_drivers::get_accounts_facade_driver(db)
        .fetch_membership(tenant, user)
        .await?;
    match membership {
        Some(m) if m.role == account_drivers::types::MembershipRole::Owner => Ok(()),
        _ => Err(TenantError::ProjectNotFound.into()),
    }
}
