//! `identity_links`: which user an identity provider's subject is (issuer + subject → user).
//! Not tenant-scoped: a person's identity spans the tenants they belong to (like `users`).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `identity_links`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "identity_links";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(ColumnDef::new("issuer").text().not_null())
                    .col(ColumnDef::new("subject").text().not_null())
                    .col(uuid("user_id"))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "user_id",
                        "users",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_identity_links_issuer_subject",
                T,
                &["issuer", "subject"],
            ))
            .await?;
        manager
            .create_index(index("ix_identity_links_user_id", T, &["user_id"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
