//! `idempotency_keys`: the `Idempotency-Key`s clients sent with writes, one row per tenant,
//! credential and key. A row is claimed in the transaction of the write it guards, with the
//! SHA-256 of the request; the write's response (status and sealed body: it may hold a
//! one-time secret) is stored in the same transaction before it commits, so a committed row
//! always has its response. Rows expire (`expires_at`, 24 h by default) and are purged in
//! batches through `ix_idempotency_keys_expires_at`. The key leads with `tenant_id`, so the
//! table distributes by tenant like the others.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `idempotency_keys`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "idempotency_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid("tenant_id"))
                    .col(varchar("credential", 255))
                    .col(varchar("key", 255))
                    .col(ColumnDef::new("request_hash").blob().not_null())
                    .col(ColumnDef::new("status_code").small_integer().null())
                    .col(ColumnDef::new("response").blob().null())
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("credential")
                            .col("key"),
                    )
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ix_idempotency_keys_expires_at", T, &["expires_at"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
