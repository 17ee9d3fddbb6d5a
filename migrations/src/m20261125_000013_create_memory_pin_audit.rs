//! `memory_pin_audit`: the audit trail of memory pin operations.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `memory_pin_audit`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "memory_pin_audit";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("operation", 20))
                    .col(varchar("key", 512))
                    .col(varchar_null("source", 64))
                    .col(varchar_null("agent_id", 100))
                    .col(ColumnDef::new("success").boolean().not_null().default(true))
                    .col(ColumnDef::new("error_message").text().null())
                    .col(varchar_null("old_value_hash", 64))
                    .col(varchar_null("new_value_hash", 64))
                    .col(timestamp("created_at"))
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
            .create_index(index(
                "ix_memory_pin_audit_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
