//! Layer: L7 — migrations. The account schema as frozen, ordered sea-orm migrations.
//!
//! Applied migrations never change: `cargo xtask tidy` checks each file against the hash list
//! in `migrations/frozen.txt`. A schema change is a new file.

#![deny(missing_docs)]

mod columns;
mod m20261125_000001_create_tenants;
mod m20261125_000002_create_users;
mod m20261125_000003_create_tenant_memberships;
mod m20261125_000004_create_api_keys;
mod m20261125_000005_create_worker_runs;
mod m20261125_000006_create_usage_records;
mod m20261125_000007_create_audit_log;
mod m20261125_000008_create_subscriptions;
mod m20261125_000009_create_invoices;
mod m20261125_000010_create_invitations;
mod m20261125_000011_create_support_tickets;
mod m20261125_000012_create_memory_pins;
mod m20261125_000013_create_memory_pin_audit;
mod m20261125_000014_create_sdk_attestations;
mod m20261125_000015_create_lifecycle_events;
mod m20261125_000016_guard_finished_runs;
mod m20261125_000017_guard_finished_runs_allow_detach;
mod m20261201_000018_create_operator_keys;
mod m20261204_000019_add_user_locale;

use sea_orm_migration::MigrationTrait;
pub use sea_orm_migration::MigratorTrait;

/// Every migration of the account schema, in the order they apply.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tenants::Migration),
            Box::new(m20261125_000002_create_users::Migration),
            Box::new(m20261125_000003_create_tenant_memberships::Migration),
            Box::new(m20261125_000004_create_api_keys::Migration),
            Box::new(m20261125_000005_create_worker_runs::Migration),
            Box::new(m20261125_000006_create_usage_records::Migration),
            Box::new(m20261125_000007_create_audit_log::Migration),
            Box::new(m20261125_000008_create_subscriptions::Migration),
            Box::new(m20261125_000009_create_invoices::Migration),
            Box::new(m20261125_000010_create_invitations::Migration),
            Box::new(m20261125_000011_create_support_tickets::Migration),
            Box::new(m20261125_000012_create_memory_pins::Migration),
            Box::new(m20261125_000013_create_memory_pin_audit::Migration),
            Box::new(m20261125_000014_create_sdk_attestations::Migration),
            Box::new(m20261125_000015_create_lifecycle_events::Migration),
            Box::new(m20261125_000016_guard_finished_runs::Migration),
            Box::new(m20261125_000017_guard_finished_runs_allow_detach::Migration),
            Box::new(m20261201_000018_create_operator_keys::Migration),
            Box::new(m20261204_000019_add_user_locale::Migration),
        ]
    }
}
