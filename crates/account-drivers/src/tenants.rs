//! Tenant data access: the tenant row, its quotas and usage counters.

use crate::Db;

/// Tenant data access: the tenant row, its quotas and usage counters.
#[derive(Clone, Copy, Debug)]
pub struct TenantDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The driver on `db`.
pub fn get_tenant_driver(db: Db<'_>) -> TenantDriver<'_> {
    TenantDriver { db }
}
