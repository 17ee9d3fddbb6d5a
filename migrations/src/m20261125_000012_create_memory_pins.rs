//! `memory_pins`: one pin per (tenant, key); expiry indexed for cleanup.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `memory_pins`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "memory_pins";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("key", 512))
                    .col(json("value"))
                    .col(varchar("source", 64).default("api"))
                    .col(ColumnDef::new("ttl_seconds").integer().null())
                    .col(timestamp_null("expires_at"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check((
                        "ck_memory_pins_ttl_seconds",
                        Expr::col("ttl_seconds")
                            .is_null()
                            .or(Expr::col("ttl_seconds").between(0, 31_536_000)),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_memory_pins_tenant_id_key",
                T,
                &["tenant_id", "key"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_memory_pins_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_memory_pins_tenant_id_expires_at",
                T,
                &["tenant_id", "expires_at"],
            ))
            .await?;
        manager
            .create_index(index("ix_memory_pins_expires_at", T, &["expires_at"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
