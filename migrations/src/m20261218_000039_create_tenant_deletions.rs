//! `tenant_deletions`: projects (tenants) their owner deleted, awaiting the purge. A row here
//! makes the tenant gone to every request (its keys, its members, its status read) until the
//! owner restores it (the row is deleted) or the purge removes every row of the tenant once
//! `purge_after` passed (this row last but the tenant's own). A table of its own rather than
//! columns on `tenants`, so the hot tenant row and its entity stay as they are; the checks
//! that a tenant is not deleted are one primary-key probe inside the statements that already
//! read the tenant. The purge finds its work through `ix_tenant_deletions_purge_after`.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `tenant_deletions`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "tenant_deletions";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("tenant_id"))
                    .col(uuid_null("deleted_by"))
                    .col(timestamp("deleted_at"))
                    .col(timestamp("purge_after"))
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
                "ix_tenant_deletions_purge_after",
                T,
                &["purge_after"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
