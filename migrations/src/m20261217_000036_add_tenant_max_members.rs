//! `tenants.max_members`: seats, the members plus pending invitations a tenant may have; an
//! invitation beyond them is refused. Existing tenants get their plan's (free 10, pro 50,
//! enterprise 1,000); a row written without the column (a host's own fixtures) gets 10,000.

use sea_orm_migration::prelude::*;

/// Adds `tenants.max_members`, filled from each tenant's plan.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "tenants";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new("max_members")
            .integer()
            .not_null()
            .default(10_000)
            .take();
        let alter = Table::alter().table(T).add_column(column).to_owned();
        manager.alter_table(alter).await?;
        // The plan table's values as of this migration, written out: a migration must not
        // follow later edits of the code's table.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE tenants SET max_members = CASE plan \
                 WHEN 'free' THEN 10 WHEN 'pro' THEN 50 ELSE 1000 END",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let alter = Table::alter()
            .table(T)
            .drop_column("max_members")
            .to_owned();
        manager.alter_table(alter).await
    }
}
