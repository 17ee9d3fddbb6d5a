//! A host application's own schema, as a team embedding us would have it: its own `users`
//! table (a different shape from ours) and `orders`, applied by its own sea-orm migrator
//! recorded in sea-orm's default `seaql_migrations`, in the host's default schema.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::prelude::*;

/// The host's migrator (sea-orm's default migration table, `seaql_migrations`).
pub struct HostMigrator;

#[async_trait::async_trait]
impl MigratorTrait for HostMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUsersAndOrders)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateUsersAndOrders;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Login,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    Note,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUsersAndOrders {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).integer().not_null().primary_key())
                    .col(
                        ColumnDef::new(Users::Login)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(ColumnDef::new(Orders::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Orders::UserId).integer().null())
                    .col(ColumnDef::new(Orders::Note).string().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_host_orders_user")
                            .from(Orders::Table, Orders::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

/// Applies the host's migrations on `host` (a connection as the host holds it) and writes one
/// host user, so the host's `users` is never empty: a query of ours that reached it instead
/// of our own `users` would see a row it cannot parse.
pub async fn migrate(host: &DatabaseConnection) -> Result<(), DbErr> {
    HostMigrator::up(host, None).await?;
    host.execute_unprepared("INSERT INTO users (id, login) VALUES (1, 'host-admin')")
        .await
        .map(|_| ())
}
