//! `usage_hourly`: each tenant's usage per meter, unit and hour, kept by the write of every
//! usage record (in its transaction), so a summary reads at most one row per meter and hour
//! instead of every record. Filled here from the records already written.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `usage_hourly` and sums the existing records into it.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "usage_hourly";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid("tenant_id"))
                    .col(varchar("meter_name", 100))
                    .col(varchar("unit", 50))
                    .col(timestamp("hour_start"))
                    .col(ColumnDef::new("total").big_integer().not_null())
                    // The tenant first: one tenant's rows are one range (and one shard).
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("hour_start")
                            .col("meter_name")
                            .col("unit"),
                    )
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check(one_of(T, "unit", &["count", "tokens", "seconds"]))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO usage_hourly (tenant_id, meter_name, unit, hour_start, total) \
                 SELECT tenant_id, meter_name, unit, period_start, SUM(amount) \
                 FROM usage_records GROUP BY tenant_id, meter_name, unit, period_start",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
