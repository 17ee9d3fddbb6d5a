//! `api_keys`: keys stored as a keyed digest (unique) and a display prefix wide enough for it.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `api_keys`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "api_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(uuid_null("user_id"))
                    .col(varchar("name", 100))
                    .col(varchar("key_prefix", 32))
                    .col(varchar("key_digest", 128))
                    .col(json("permissions"))
                    .col(json_null("allowed_workers"))
                    .col(ColumnDef::new("rate_limit_rpm").integer().null())
                    .col(ColumnDef::new("max_concurrent_runs").integer().null())
                    .col(varchar("status", 50).default("active"))
                    .col(timestamp_null("expires_at"))
                    .col(timestamp_null("revoked_at"))
                    .col(varchar_null("revoked_reason", 255))
                    .col(timestamp_null("last_used_at"))
                    .col(
                        ColumnDef::new("total_requests")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new("is_frozen")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(timestamp_null("frozen_at"))
                    .col(varchar_null("frozen_by", 100))
                    .col(ColumnDef::new("freeze_reason").text().null())
                    .col(uuid_null("rotated_from_id"))
                    .col(timestamp("created_at"))
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
                        ForeignKeyAction::SetNull,
                    ))
                    .check(one_of(T, "status", &["active", "revoked", "expired"]))
                    .check((
                        "ck_api_keys_rate_limit_rpm",
                        Expr::col("rate_limit_rpm")
                            .is_null()
                            .or(Expr::col("rate_limit_rpm").between(1, 100_000)),
                    ))
                    .check((
                        "ck_api_keys_max_concurrent_runs",
                        Expr::col("max_concurrent_runs")
                            .is_null()
                            .or(Expr::col("max_concurrent_runs").between(1, 10_000)),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_api_keys_key_digest", T, &["key_digest"]))
            .await?;
        manager
            .create_index(index(
                "ix_api_keys_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_api_keys_tenant_id_status",
                T,
                &["tenant_id", "status"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
