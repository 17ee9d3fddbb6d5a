//! `worker_runs`: admitted runs; indexes serve listing by time, the concurrency count by status and the per-key count.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `worker_runs`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "worker_runs";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("worker_id", 100))
                    .col(uuid_null("api_key_id"))
                    .col(uuid_null("user_id"))
                    .col(ColumnDef::new("task").text().not_null())
                    .col(json_null("input"))
                    .col(varchar("status", 50).default("queued"))
                    .col(ColumnDef::new("success").boolean().null())
                    .col(ColumnDef::new("error").text().null())
                    .col(json_null("output"))
                    .col(json_null("replay_token"))
                    .col(
                        ColumnDef::new("total_tokens")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new("total_latency_ms")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new("stages_completed")
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new("recoveries").integer().not_null().default(0))
                    .col(
                        ColumnDef::new("policy_violations")
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new("cost_cents")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(uuid_null("parent_run_id"))
                    .col(ColumnDef::new("attempt").integer().not_null().default(1))
                    .col(timestamp("created_at"))
                    .col(timestamp_null("started_at"))
                    .col(timestamp_null("completed_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        T,
                        "api_key_id",
                        "api_keys",
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        T,
                        "user_id",
                        "users",
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut foreign_key(
                        T,
                        "parent_run_id",
                        "worker_runs",
                        ForeignKeyAction::SetNull,
                    ))
                    .check(one_of(
                        T,
                        "status",
                        &["queued", "running", "completed", "failed", "crashed"],
                    ))
                    .check((
                        "ck_worker_runs_metrics",
                        Expr::col("total_tokens")
                            .gte(0)
                            .and(Expr::col("total_latency_ms").gte(0))
                            .and(Expr::col("cost_cents").gte(0))
                            .and(Expr::col("attempt").gte(1)),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_worker_runs_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_worker_runs_tenant_id_status",
                T,
                &["tenant_id", "status"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_worker_runs_tenant_id_api_key_id_status",
                T,
                &["tenant_id", "api_key_id", "status"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_worker_runs_tenant_id_worker_id",
                T,
                &["tenant_id", "worker_id"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
