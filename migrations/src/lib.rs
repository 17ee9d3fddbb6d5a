//! Layer: L7 — migrations. The account schema as frozen, ordered sea-orm migrations, and
//! [`migrate`], which applies them inside a host's database.
//!
//! Our tables live in a schema of their own (default `account`; on SQLite a database file of
//! its own that the spine attaches under that name) and our migrations record themselves in
//! [`MIGRATION_TABLE`] there, so a host's own tables and its own sea-orm migrator (with its
//! `seaql_migrations`) never meet ours, whichever migrates first, and a host's `fresh` or
//! `refresh` leaves ours alone. Run ours with [`migrate`] (or `account_spine::migrate`) beside
//! your own migrator; do not list our migrations in yours.
//!
//! Applied migrations never change: `cargo xtask tidy` checks each file against the hash list
//! in `migrations/frozen.txt`. A schema change is a new file.
//!
//! ```
//! use account_migrations::{SchemaName, migrate};
//! use sea_orm_migration::sea_orm::Database;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // On SQLite, connect to the account database itself (here a private in-memory one).
//! let db = Database::connect("sqlite::memory:").await.unwrap();
//! let applied = migrate(&db, &SchemaName::default()).await.unwrap();
//! assert_eq!(applied.migrations[0], "m20261125_000001_create_tenants");
//! // A second run has nothing left to apply.
//! assert!(migrate(&db, &SchemaName::default()).await.unwrap().migrations.is_empty());
//! # });
//! ```

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
mod m20261210_000020_add_api_key_successor;
mod m20261210_000021_add_api_key_metadata;
mod m20261210_000022_create_identity_links;
mod m20261211_000023_create_usage_hourly;
mod m20261212_000024_add_run_admission_counters;
mod m20261212_000025_add_tenant_totals;
mod m20261212_000026_add_run_leases;
mod m20261213_000027_create_cache_versions;
mod m20261214_000028_create_rate_limit_states;
mod m20261214_000029_add_tenant_request_limit;
mod m20261215_000030_create_event_outbox;
mod m20261215_000032_create_idempotency_keys;
mod m20261215_000033_audit_log_retention_and_guard;
mod m20261216_000034_create_webhook_endpoints;
mod m20261217_000035_create_tenant_limit_overrides;
mod m20261217_000036_add_tenant_max_members;
mod m20261218_000037_create_plans;
mod m20261218_000038_create_user_erasures;
mod m20261218_000039_create_tenant_deletions;
mod m20261218_000040_add_subscription_grace;
mod run;
mod sqlite;

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("account-migrations needs a backend: enable the `postgres` or `sqlite` feature");

pub use account_values::SchemaName;
pub use run::{Applied, MigrationError, migrate, pending};
use sea_orm_migration::MigrationTrait;
pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_query::{Alias, DynIden, IntoIden};
pub use sqlite::shared_memory_url;
#[cfg(feature = "sqlite")]
pub use sqlite::sqlite_attachment;

/// The table our migrations record themselves in, inside our schema (0.0.0 used sea-orm's
/// default `seaql_migrations`, which a host's own sea-orm migrator uses too).
pub const MIGRATION_TABLE: &str = "account_migrations";

/// Every table our migrations create, in our schema.
pub const OUR_TABLES: &[&str] = &[
    "tenants",
    "users",
    "tenant_memberships",
    "api_keys",
    "worker_runs",
    "usage_records",
    "audit_log",
    "subscriptions",
    "invoices",
    "invitations",
    "support_tickets",
    "memory_pins",
    "memory_pin_audit",
    "sdk_attestations",
    "lifecycle_events",
    "operator_keys",
    "identity_links",
    "usage_hourly",
    "tenant_workers",
    "cache_versions",
    "rate_limit_states",
    "event_streams",
    "event_outbox",
    "idempotency_keys",
    "webhook_endpoints",
    "webhook_attempts",
    "webhook_replays",
    "tenant_limit_overrides",
    "user_erasures",
    "plans",
    "tenant_deletions",
];

/// Every migration of the account schema, in the order they apply.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        Alias::new(MIGRATION_TABLE).into_iden()
    }

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
            Box::new(m20261210_000020_add_api_key_successor::Migration),
            Box::new(m20261210_000021_add_api_key_metadata::Migration),
            Box::new(m20261210_000022_create_identity_links::Migration),
            Box::new(m20261211_000023_create_usage_hourly::Migration),
            Box::new(m20261212_000024_add_run_admission_counters::Migration),
            Box::new(m20261212_000025_add_tenant_totals::Migration),
            Box::new(m20261212_000026_add_run_leases::Migration),
            Box::new(m20261213_000027_create_cache_versions::Migration),
            Box::new(m20261214_000028_create_rate_limit_states::Migration),
            Box::new(m20261214_000029_add_tenant_request_limit::Migration),
            Box::new(m20261215_000030_create_event_outbox::Migration),
            Box::new(m20261215_000032_create_idempotency_keys::Migration),
            Box::new(m20261215_000033_audit_log_retention_and_guard::Migration),
            Box::new(m20261216_000034_create_webhook_endpoints::Migration),
            Box::new(m20261217_000035_create_tenant_limit_overrides::Migration),
            Box::new(m20261217_000036_add_tenant_max_members::Migration),
            Box::new(m20261218_000037_create_plans::Migration),
            Box::new(m20261218_000038_create_user_erasures::Migration),
            Box::new(m20261218_000039_create_tenant_deletions::Migration),
            Box::new(m20261218_000040_add_subscription_grace::Migration),
        ]
    }
}
