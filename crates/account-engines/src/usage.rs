//! Usage: what a tenant consumed per meter, summed by the database.

use crate::Db;
use crate::tenants::{MAX_SUMMARY_DAYS, TenantError};
use account_drivers::get_tenant_driver;
use account_drivers::types::TenantId;
pub use account_drivers::usage::MeterTotal;
use chrono::{DateTime, TimeDelta, Utc};

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
