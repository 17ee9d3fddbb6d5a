//! `lifecycle_events`: every lifecycle transition with actor, reason and time.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `lifecycle_events`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "lifecycle_events";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("from_status", 50))
                    .col(varchar("to_status", 50))
                    .col(varchar("action", 50))
                    .col(varchar("actor_type", 20))
                    .col(varchar("actor_id", 100))
                    .col(varchar_null("reason", 500))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check(one_of(
                        T,
                        "from_status",
                        &["active", "suspended", "terminated", "archived"],
                    ))
                    .check(one_of(
                        T,
                        "to_status",
                        &["active", "suspended", "terminated", "archived"],
                    ))
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
                "ix_lifecycle_events_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
