//! `subscriptions`: written by the billing integration, unique per (tenant, external id).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `subscriptions`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "subscriptions";

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
                    .col(varchar("plan", 50))
                    .col(varchar("status", 50).default("active"))
                    .col(varchar("billing_period", 20).default("monthly"))
                    .col(timestamp_null("current_period_start"))
                    .col(timestamp_null("current_period_end"))
                    .col(timestamp_null("trial_ends_at"))
                    .col(timestamp_null("canceled_at"))
                    .col(
                        ColumnDef::new("cancel_at_period_end")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check(one_of(T, "plan", &["free", "pro", "enterprise"]))
                    .check(one_of(
                        T,
                        "status",
                        &["active", "canceled", "past_due", "trialing"],
                    ))
                    .check(one_of(T, "billing_period", &["monthly", "annual"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_subscriptions_tenant_id_external_id",
                T,
                &["tenant_id", "external_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_subscriptions_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
