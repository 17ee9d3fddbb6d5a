//! Tenant lifecycle status and its transition history.

use crate::Db;

/// Tenant lifecycle status and its transition history.
#[derive(Clone, Copy, Debug)]
pub struct TenantLifecycleDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The driver on `db`.
pub fn get_tenant_lifecycle_driver(db: Db<'_>) -> TenantLifecycleDriver<'_> {
    TenantLifecycleDriver { db }
}
