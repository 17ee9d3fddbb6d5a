//! `sdk_attestations`: one row per (tenant, attestation hash), refreshed on repeat.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `sdk_attestations`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "sdk_attestations";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("sdk_version", 100))
                    .col(varchar("sdk_language", 50))
                    .col(varchar_null("client_id", 200))
                    .col(varchar("attestation_hash", 64))
                    .col(timestamp("attested_at"))
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
            .create_index(unique(
                "uq_sdk_attestations_tenant_id_attestation_hash",
                T,
                &["tenant_id", "attestation_hash"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_sdk_attestations_tenant_id_attested_at",
                T,
                &["tenant_id", "attested_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
