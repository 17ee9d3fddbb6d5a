//! Layer: L7 — migrations. The account schema as frozen, ordered sea-orm migrations.
//!
//! Applied migrations never change: `cargo xtask tidy` checks each file against the hash list
//! in `migrations/frozen.txt`. A schema change is a new file.

use sea_orm_migration::MigrationTrait;
pub use sea_orm_migration::MigratorTrait;

/// Every migration of the account schema, in the order they apply.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![]
    }
}
