//! `audit_log`: no foreign keys, so entries outlive the rows they describe.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `audit_log`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "audit_log";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid_null("tenant_id"))
                    .col(varchar("actor_type", 20))
                    .col(uuid_null("user_id"))
                    .col(uuid_null("api_key_id"))
                    .col(varchar("action", 100))
                    .col(varchar("resource_type", 50))
                    .col(varchar_null("resource_id", 100))
                    .col(varchar_null("reason", 500))
                    .col(json_null("old_value"))
                    .col(json_null("new_value"))
                    .col(varchar_null("ip_address", 50))
                    .col(varchar_null("user_agent", 500))
                    .col(varchar_null("request_id", 100))
                    .col(timestamp("created_at"))
                    .check(one_of(
                        T,
                        "actor_type",
                        &["user", "api_key", "founder", "system", "operator"],
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_audit_log_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_audit_log_tenant_id_resource",
                T,
                &["tenant_id", "resource_type", "resource_id"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
