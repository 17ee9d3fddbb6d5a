//! `api_keys.successor_id`: the key that replaced this one by rotation. Set by the one
//! conditional update that rotates (only while it is null), so a key is rotated at most once.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `api_keys.successor_id`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "api_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = uuid_null("successor_id");
        let alter = Table::alter().table(T).add_column(column).to_owned();
        manager.alter_table(alter).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let alter = Table::alter()
            .table(T)
            .drop_column("successor_id")
            .to_owned();
        manager.alter_table(alter).await
    }
}
