//! `tenants`: plan quotas copied onto the row, usage counters with the day and month they
//! count, lifecycle status and onboarding state.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `tenants`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "tenants";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(varchar("name", 255))
                    .col(varchar("slug", 100))
                    .col(varchar_null("external_org_id", 100))
                    .col(varchar("plan", 50).default("free"))
                    .col(varchar_null("billing_email", 255))
                    .col(varchar_null("billing_customer_id", 100))
                    .col(ColumnDef::new("max_workers").integer().not_null())
                    .col(ColumnDef::new("max_runs_per_day").integer().not_null())
                    .col(ColumnDef::new("max_concurrent_runs").integer().not_null())
                    .col(
                        ColumnDef::new("max_tokens_per_month")
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new("max_api_keys").integer().not_null())
                    .col(ColumnDef::new("runs_today").integer().not_null().default(0))
                    .col(
                        ColumnDef::new("runs_this_month")
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new("tokens_this_month")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new("usage_day").date().null())
                    .col(ColumnDef::new("usage_month").date().null())
                    .col(timestamp_null("last_run_reset_at"))
                    .col(varchar("status", 50).default("active"))
                    .col(ColumnDef::new("suspended_reason").text().null())
                    .col(
                        ColumnDef::new("onboarding_state")
                            .small_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(one_of(T, "plan", &["free", "pro", "enterprise"]))
                    .check(one_of(
                        T,
                        "status",
                        &["active", "suspended", "terminated", "archived"],
                    ))
                    .check((
                        "ck_tenants_onboarding_state",
                        Expr::col("onboarding_state").between(0, 4),
                    ))
                    .check((
                        "ck_tenants_counters",
                        Expr::col("runs_today")
                            .gte(0)
                            .and(Expr::col("runs_this_month").gte(0))
                            .and(Expr::col("tokens_this_month").gte(0)),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_tenants_slug", T, &["slug"]))
            .await?;
        manager
            .create_index(unique(
                "uq_tenants_external_org_id",
                T,
                &["external_org_id"],
            ))
            .await?;
        manager
            .create_index(index("ix_tenants_status", T, &["status"]))
            .await?;
        manager
            .create_index(index(
                "ix_tenants_onboarding_state",
                T,
                &["onboarding_state", "created_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
