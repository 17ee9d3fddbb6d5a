//! `operator_keys`: platform operator keys, stored as a keyed digest (unique) and a display
//! prefix. Platform-wide, so no `tenant_id` (like `users`).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `operator_keys`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "operator_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(varchar("name", 100))
                    .col(varchar("key_prefix", 20))
                    .col(varchar("key_digest", 64))
                    .col(timestamp("created_at"))
                    .col(timestamp_null("revoked_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_operator_keys_key_digest", T, &["key_digest"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
