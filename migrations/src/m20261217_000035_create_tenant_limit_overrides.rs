//! `tenant_limit_overrides`: limits an operator set for one tenant over its plan's, each
//! optionally until a time. The tenant row keeps holding the limits in force (its `max_*`
//! columns, which admission and the other writes read in the statements they already run);
//! setting, removing or outliving an override rewrites them from the plan and the overrides
//! left. An expired override is deleted by the job that reverts it (`expires_at` index).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `tenant_limit_overrides`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "tenant_limit_overrides";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid("tenant_id"))
                    .col(varchar("limit_name", 40))
                    .col(ColumnDef::new("value").big_integer().not_null())
                    .col(timestamp_null("expires_at"))
                    .col(varchar("reason", 500))
                    .col(varchar("set_by", 200))
                    .col(timestamp("created_at"))
                    .primary_key(Index::create().col("tenant_id").col("limit_name"))
                    .check(one_of(
                        T,
                        "limit_name",
                        &[
                            "max_workers",
                            "max_runs_per_day",
                            "max_concurrent_runs",
                            "max_tokens_per_month",
                            "max_api_keys",
                            "max_requests_per_minute",
                            "audit_retention_days",
                            "max_members",
                        ],
                    ))
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
                "ix_tenant_limit_overrides_expires_at",
                T,
                &["expires_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
