//! Tenants and their quotas (TenantEngine): reads the spine needs for authority checks.

use crate::{Db, StorageError};
use account_drivers::get_tenant_driver;
use account_drivers::types::{TenantId, TenantStatus};

/// The tenant's lifecycle status, or `None` when there is no such tenant.
pub async fn status(db: Db<'_>, tenant: TenantId) -> Result<Option<TenantStatus>, StorageError> {
    Ok(get_tenant_driver(db)
        .fetch_tenant_by_id(tenant)
        .await?
        .map(|t| t.status))
}
