//! `support_tickets`: validated category, priority and status.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `support_tickets`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "support_tickets";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(uuid("user_id"))
                    .col(varchar("subject", 200))
                    .col(varchar("description", 4000))
                    .col(varchar("category", 50).default("general"))
                    .col(varchar("priority", 20).default("medium"))
                    .col(varchar("status", 50).default("open"))
                    .col(varchar_null("resolution", 4000))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .col(timestamp_null("resolved_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        T,
                        "user_id",
                        "users",
                        ForeignKeyAction::Cascade,
                    ))
                    .check(one_of(
                        T,
                        "category",
                        &["general", "billing", "technical", "feature_request"],
                    ))
                    .check(one_of(
                        T,
                        "priority",
                        &["low", "medium", "high", "critical"],
                    ))
                    .check(one_of(
                        T,
                        "status",
                        &["open", "in_progress", "resolved", "closed"],
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_support_tickets_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_support_tickets_tenant_id_status",
                T,
                &["tenant_id", "status"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
