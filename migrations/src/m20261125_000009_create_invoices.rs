//! `invoices`: written by the billing integration, unique per (tenant, external id).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `invoices`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "invoices";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("external_id", 100))
                    .col(varchar_null("number", 64))
                    .col(varchar("status", 20))
                    .col(varchar("currency", 3))
                    .col(ColumnDef::new("amount_due_cents").big_integer().not_null())
                    .col(
                        ColumnDef::new("amount_paid_cents")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp("period_start"))
                    .col(timestamp("period_end"))
                    .col(timestamp("issued_at"))
                    .col(timestamp_null("due_at"))
                    .col(timestamp_null("paid_at"))
                    .col(varchar_null("hosted_url", 500))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check(one_of(
                        T,
                        "status",
                        &["draft", "open", "paid", "void", "uncollectible"],
                    ))
                    .check((
                        "ck_invoices_amounts",
                        Expr::col("amount_due_cents")
                            .gte(0)
                            .and(Expr::col("amount_paid_cents").gte(0)),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_invoices_tenant_id_external_id",
                T,
                &["tenant_id", "external_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_invoices_tenant_id_issued_at",
                T,
                &["tenant_id", "issued_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
