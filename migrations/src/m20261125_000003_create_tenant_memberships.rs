//! `tenant_memberships`: one membership per (tenant, user).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `tenant_memberships`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "tenant_memberships";

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
                    .col(varchar("role", 50).default("member"))
                    .col(uuid_null("invited_by"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
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
                    .check(one_of(T, "role", &["owner", "admin", "member", "viewer"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_tenant_memberships_tenant_id_user_id",
                T,
                &["tenant_id", "user_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_tenant_memberships_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_tenant_memberships_tenant_id_role",
                T,
                &["tenant_id", "role"],
            ))
            .await?;
        manager
            .create_index(index("ix_tenant_memberships_user_id", T, &["user_id"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
