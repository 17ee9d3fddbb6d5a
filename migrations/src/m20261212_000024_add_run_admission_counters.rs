//! Counters that let one statement admit a run: the tenant's queued-or-running runs, the
//! workers those runs are on, and the tokens reserved by runs not yet settled; each key's
//! queued-or-running runs; each run's reserved token estimate; and `tenant_workers`, one
//! row per worker a tenant has run, with its queued-or-running runs.
//!
//! Admission checks and bumps these in the rows it locks (PostgreSQL re-reads a locked row's
//! latest version, never a subquery's), so it needs no `COUNT(*)` and no separate lock. Filled
//! here from the runs already queued or running.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds the admission counters and `tenant_workers`, filled from the active runs.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const WORKERS: &str = "tenant_workers";

/// `(table, column, bigint?)` of every counter added to an existing table.
const COUNTERS: &[(&str, &str, bool)] = &[
    ("tenants", "active_runs", false),
    ("tenants", "active_workers", false),
    ("tenants", "tokens_reserved", true),
    ("api_keys", "active_runs", false),
    ("worker_runs", "token_estimate", true),
];

/// The fill, in order: workers first (the tenant's worker count is read from them).
const FILL: &[&str] = &[
    "INSERT INTO tenant_workers (tenant_id, worker_id, active_runs) \
     SELECT tenant_id, worker_id, COUNT(*) FROM worker_runs \
     WHERE status IN ('queued', 'running') GROUP BY tenant_id, worker_id",
    "UPDATE tenants SET \
     active_runs = (SELECT COUNT(*) FROM worker_runs r \
       WHERE r.tenant_id = tenants.id AND r.status IN ('queued', 'running')), \
     active_workers = (SELECT COUNT(*) FROM tenant_workers w \
       WHERE w.tenant_id = tenants.id AND w.active_runs > 0)",
    "UPDATE api_keys SET active_runs = (SELECT COUNT(*) FROM worker_runs r \
       WHERE r.tenant_id = api_keys.tenant_id AND r.api_key_id = api_keys.id \
       AND r.status IN ('queued', 'running'))",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for (table, column, big) in COUNTERS {
            let mut def = ColumnDef::new(*column);
            if *big {
                def.big_integer();
            } else {
                def.integer();
            }
            def.not_null().default(0);
            let alter = Table::alter().table(*table).add_column(def).to_owned();
            manager.alter_table(alter).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WORKERS)
                    .col(uuid("tenant_id"))
                    .col(varchar("worker_id", 100))
                    .col(ColumnDef::new("active_runs").integer().not_null())
                    .primary_key(Index::create().col("tenant_id").col("worker_id"))
                    .foreign_key(&mut foreign_key(
                        WORKERS,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check((
                        "ck_tenant_workers_active_runs".to_owned(),
                        Expr::col("active_runs").gte(0),
                    ))
                    .to_owned(),
            )
            .await?;
        let conn = manager.get_connection();
        for sql in FILL {
            conn.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WORKERS).to_owned())
            .await?;
        for (table, column, _) in COUNTERS.iter().rev() {
            let alter = Table::alter().table(*table).drop_column(*column).to_owned();
            manager.alter_table(alter).await?;
        }
        Ok(())
    }
}
