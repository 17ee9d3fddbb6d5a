//! `invitations`: one pending invitation per (tenant, lower(email)); the token only as a keyed digest.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `invitations`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "invitations";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("email", 255))
                    .col(varchar("role", 50).default("member"))
                    .col(varchar("status", 50).default("pending"))
                    .col(varchar("token_digest", 128))
                    .col(uuid("invited_by"))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("accepted_at"))
                    .col(uuid_null("accepted_by"))
                    .col(timestamp_null("revoked_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        T,
                        "invited_by",
                        "users",
                        ForeignKeyAction::Cascade,
                    ))
                    .check(one_of(T, "role", &["owner", "admin", "member", "viewer"]))
                    .check(one_of(
                        T,
                        "status",
                        &["pending", "accepted", "expired", "revoked"],
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_invitations_tenant_id_token_digest",
                T,
                &["tenant_id", "token_digest"],
            ))
            .await?;
        // An expression index with a predicate: the same SQL on both backends.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_invitations_pending_email \
                 ON invitations (tenant_id, lower(email)) WHERE status = 'pending'",
            )
            .await?;
        manager
            .create_index(index(
                "ix_invitations_tenant_id_created_at",
                T,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_invitations_tenant_id_status",
                T,
                &["tenant_id", "status"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
