//! `users.locale`: the language a person wants messages and emails in, as a BCP 47 tag
//! (`fr-CA`, `de`); absent means the host's default.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `users.locale`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "users";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = varchar_null("locale", 35);
        let alter = Table::alter().table(T).add_column(column).to_owned();
        manager.alter_table(alter).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let alter = Table::alter().table(T).drop_column("locale").to_owned();
        manager.alter_table(alter).await
    }
}
