//! `api_keys.metadata`: an optional JSON object the tenant attaches to a key (at most 4 KiB,
//! checked by the engine), returned by verification to the host's services.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `api_keys.metadata`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "api_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = json_null("metadata");
        let alter = Table::alter().table(T).add_column(column).to_owned();
        manager.alter_table(alter).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let alter = Table::alter().table(T).drop_column("metadata").to_owned();
        manager.alter_table(alter).await
    }
}
