//! `usage_records`: hourly usage per meter; an idempotency key per tenant makes retried writes no-ops.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `usage_records`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "usage_records";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("meter_name", 100))
                    .col(ColumnDef::new("amount").big_integer().not_null())
                    .col(varchar("unit", 50).default("count"))
                    .col(timestamp("period_start"))
                    .col(timestamp("period_end"))
                    .col(varchar_null("worker_id", 100))
                    .col(uuid_null("api_key_id"))
                    .col(uuid_null("run_id"))
                    .col(varchar_null("idempotency_key", 200))
                    .col(json_null("metadata"))
                    .col(timestamp("recorded_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check(one_of(T, "unit", &["count", "tokens", "seconds"]))
                    .check((
                        "ck_usage_records_period",
                        Expr::col("period_end").gt(Expr::col("period_start")),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_usage_records_tenant_id_idempotency_key",
                T,
                &["tenant_id", "idempotency_key"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_usage_records_tenant_id_period_start_meter_name",
                T,
                &["tenant_id", "period_start", "meter_name"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
