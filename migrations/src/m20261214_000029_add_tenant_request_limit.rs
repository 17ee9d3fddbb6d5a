//! `tenants.max_requests_per_minute`: the plan's limit on the whole tenant's requests per
//! minute, every credential together, counted across instances (`rate_limit_states`, under the
//! tenant's own id); absent means no tenant-wide limit. Existing tenants get their plan's.

use sea_orm_migration::prelude::*;

/// Adds `tenants.max_requests_per_minute`, filled from each tenant's plan.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "tenants";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new("max_requests_per_minute")
            .integer()
            .null()
            .take();
        let alter = Table::alter().table(T).add_column(column).to_owned();
        manager.alter_table(alter).await?;
        // The plan table's values as of this migration (free 6,000, pro 60,000, enterprise
        // none), written out: a migration must not follow later edits of the code's table.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE tenants SET max_requests_per_minute = CASE plan \
                 WHEN 'free' THEN 6000 WHEN 'pro' THEN 60000 ELSE NULL END",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let alter = Table::alter()
            .table(T)
            .drop_column("max_requests_per_minute")
            .to_owned();
        manager.alter_table(alter).await
    }
}
