//! The host's own migrations, tracked in a table of their own (`host_seaql_migrations`), so
//! they and ours (`seaql_migrations`) apply independently on one database.

use sea_orm_migration::prelude::*;

/// Every migration of the host's schema, in order.
#[derive(Debug)]
pub struct HostMigrator;

#[async_trait::async_trait]
impl MigratorTrait for HostMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOrders)]
    }

    fn migration_table_name() -> DynIden {
        "host_seaql_migrations".into_iden()
    }
}

/// Creates `orders`.
#[derive(DeriveMigrationName)]
struct CreateOrders;

#[async_trait::async_trait]
impl MigrationTrait for CreateOrders {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("orders")
                    .col(ColumnDef::new("id").string_len(36).not_null().primary_key())
                    .col(ColumnDef::new("tenant_id").string_len(36).not_null())
                    .col(ColumnDef::new("item").string_len(200).not_null())
                    .col(ColumnDef::new("quantity").integer().not_null())
                    .col(ColumnDef::new("run_id").string_len(36).not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("orders").to_owned())
            .await
    }
}
