//! `cache_versions`: one row whose `version` every write that invalidates cached credentials
//! or roles (revocation, rotation, permission, membership and tenant status changes) bumps in
//! its own transaction, with a `pg_notify` carrying the new version. Instances listening
//! drop the named entries; an instance that finds a version it did not hear of (a gap in the
//! notifications, or a poll ahead of them) knows it missed one and drops everything.

use sea_orm_migration::prelude::*;

/// Creates `cache_versions` with its one row at version 0.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "cache_versions";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(
                        ColumnDef::new("id")
                            .small_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new("version")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO cache_versions (id, version) VALUES (1, 0)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
