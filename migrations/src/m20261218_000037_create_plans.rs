//! `plans`: plans as data. Each row is one version of one plan (code, version): its limits,
//! its entitlements (named features with optional numeric values, a JSON object) and its
//! soft-limit threshold; a retired version takes no new tenants. Version 1 of the three
//! built-in plans is seeded with the values the code held until now.
//!
//! Tenants gain `plan_version` (the version whose limits they hold), its warning threshold,
//! and the memory-pin limits, which were read from the code's table at every pin write and are
//! now copied onto the row like the others. The CHECKs that held `tenants.plan` and `subscriptions.plan` to the three
//! built-in codes go: any plan an operator created is a plan. The overrides' CHECK on
//! `limit_name` widens to the two pin limits.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Creates `plans`, seeds the built-in three, and moves tenants onto them.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "plans";

/// The limit names an override may name after this migration.
const LIMIT_NAMES: &[&str] = &[
    "max_workers",
    "max_runs_per_day",
    "max_concurrent_runs",
    "max_tokens_per_month",
    "max_api_keys",
    "max_requests_per_minute",
    "audit_retention_days",
    "max_members",
    "max_memory_pins",
    "max_pin_value_bytes",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let int = |name: &'static str| ColumnDef::new(name).integer().not_null().take();
        let big = |name: &'static str| ColumnDef::new(name).big_integer().not_null().take();
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(varchar("code", 50))
                    .col(int("version"))
                    .col(varchar("name", 100))
                    .col(int("max_workers"))
                    .col(int("max_runs_per_day"))
                    .col(int("max_concurrent_runs"))
                    .col(big("max_tokens_per_month"))
                    .col(int("max_api_keys"))
                    .col(ColumnDef::new("max_requests_per_minute").integer().null())
                    .col(ColumnDef::new("audit_retention_days").integer().null())
                    .col(int("max_members"))
                    .col(big("max_memory_pins"))
                    .col(int("max_pin_value_bytes"))
                    .col(
                        ColumnDef::new("entitlements")
                            .text()
                            .not_null()
                            .default("{}"),
                    )
                    .col(ColumnDef::new("warn_at_percent").integer().null())
                    .col(timestamp("created_at"))
                    .col(timestamp_null("retired_at"))
                    .primary_key(Index::create().col("code").col("version"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // The code's table as of this migration, written out: a migration must not follow
        // later edits of the code.
        db.execute_unprepared(
            "INSERT INTO plans (code, version, name, max_workers, max_runs_per_day, \
               max_concurrent_runs, max_tokens_per_month, max_api_keys, max_requests_per_minute, \
               audit_retention_days, max_members, max_memory_pins, max_pin_value_bytes, \
               entitlements, warn_at_percent, created_at) VALUES \
             ('free', 1, 'Free', 3, 100, 5, 1000000, 5, 6000, 30, 10, 1000, 16384, \
               '{}', 80, CURRENT_TIMESTAMP), \
             ('pro', 1, 'Pro', 10, 1000, 20, 10000000, 20, 60000, 365, 50, 10000, 65536, \
               '{}', 80, CURRENT_TIMESTAMP), \
             ('enterprise', 1, 'Enterprise', 100, 100000, 100, 1000000000, 100, NULL, 2555, \
               1000, 100000, 65536, '{}', 80, CURRENT_TIMESTAMP)",
        )
        .await?;
        for column in [
            ColumnDef::new("plan_version")
                .integer()
                .not_null()
                .default(1)
                .take(),
            // A row written without these (a host's own fixtures) gets enterprise's.
            ColumnDef::new("max_memory_pins")
                .big_integer()
                .not_null()
                .default(100_000)
                .take(),
            ColumnDef::new("max_pin_value_bytes")
                .integer()
                .not_null()
                .default(65_536)
                .take(),
            // The plan version's soft-limit threshold, copied like its limits so the writes
            // that count usage see it in the row they already read (80: the built-in plans').
            ColumnDef::new("warn_at_percent")
                .integer()
                .null()
                .default(80)
                .take(),
        ] {
            let alter = Table::alter()
                .table("tenants")
                .add_column(column)
                .to_owned();
            manager.alter_table(alter).await?;
        }
        db.execute_unprepared(
            "UPDATE tenants SET \
               max_memory_pins = CASE plan WHEN 'free' THEN 1000 WHEN 'pro' THEN 10000 ELSE 100000 END, \
               max_pin_value_bytes = CASE plan WHEN 'free' THEN 16384 ELSE 65536 END",
        )
        .await?;
        drop_check(manager, "tenants", "ck_tenants_plan").await?;
        drop_check(manager, "subscriptions", "ck_subscriptions_plan").await?;
        let overrides = "tenant_limit_overrides";
        let check = "ck_tenant_limit_overrides_limit_name";
        let list = LIMIT_NAMES
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let clause = format!("CONSTRAINT \"{check}\" CHECK (\"limit_name\" IN ({list}))");
        match manager.get_database_backend() {
            // SQLite cannot add a table constraint: the widened one replaces the old.
            DbBackend::Sqlite => {
                rewrite_sqlite_table(manager, overrides, check, Some(&clause)).await?
            }
            _ => {
                drop_check(manager, overrides, check).await?;
                db.execute_unprepared(&format!("ALTER TABLE {overrides} ADD {clause}"))
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Going back to the closed three only works while every tenant is on one of them.
        for column in [
            "plan_version",
            "max_memory_pins",
            "max_pin_value_bytes",
            "warn_at_percent",
        ] {
            let alter = Table::alter()
                .table("tenants")
                .drop_column(column)
                .to_owned();
            manager.alter_table(alter).await?;
        }
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
