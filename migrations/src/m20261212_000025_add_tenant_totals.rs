//! Totals that do not grow with the tenant, and the members-by-email index.
//!
//! - `tenants.member_count`, `tenants.api_key_count`, `tenants.run_count`: the tenant's
//!   memberships, keys not revoked, and runs (any status). Drivers keep them in the
//!   transaction of every write that adds or removes such a row, so an unfiltered list reads
//!   its total from the tenant row instead of counting. Filled here from `COUNT(*)`.
//! - `tenant_memberships.member_email`: the member's email, copied from `users.email` when the
//!   membership is written (emails never change), so that one index,
//!   `ix_tenant_memberships_tenant_id_member_email` on `(tenant_id, member_email, user_id)`,
//!   serves a tenant's members in list order (email, then id) and a member found by email. A
//!   sort that spans two tables has no index otherwise. On SQLite the column keeps the
//!   `DEFAULT ''` that `ADD COLUMN ... NOT NULL` requires there; the drivers always set it.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds the tenant totals and the members' email copy with its index.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const TOTALS: [&str; 3] = ["member_count", "api_key_count", "run_count"];

const INDEX: &str = "ix_tenant_memberships_tenant_id_member_email";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for total in TOTALS {
            let column = ColumnDef::new(total)
                .big_integer()
                .not_null()
                .default(0)
                .take();
            let alter = Table::alter()
                .table("tenants")
                .add_column(column)
                .to_owned();
            manager.alter_table(alter).await?;
        }
        let email = varchar("member_email", 255).default("").take();
        let alter = Table::alter()
            .table("tenant_memberships")
            .add_column(email)
            .to_owned();
        manager.alter_table(alter).await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE tenants SET \
             member_count = (SELECT COUNT(*) FROM tenant_memberships m WHERE m.tenant_id = tenants.id), \
             api_key_count = (SELECT COUNT(*) FROM api_keys k \
                 WHERE k.tenant_id = tenants.id AND k.status <> 'revoked'), \
             run_count = (SELECT COUNT(*) FROM worker_runs r WHERE r.tenant_id = tenants.id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE tenant_memberships SET member_email = \
             (SELECT users.email FROM users WHERE users.id = tenant_memberships.user_id)",
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // Every writer names the email: a row that does not is a bug, refused here.
            db.execute_unprepared(
                "ALTER TABLE tenant_memberships ALTER COLUMN member_email DROP DEFAULT",
            )
            .await?;
        }
        manager
            .create_index(index(
                INDEX,
                "tenant_memberships",
                &["tenant_id", "member_email", "user_id"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table("tenant_memberships")
                    .to_owned(),
            )
            .await?;
        let alter = Table::alter()
            .table("tenant_memberships")
            .drop_column("member_email")
            .to_owned();
        manager.alter_table(alter).await?;
        for total in TOTALS {
            let alter = Table::alter()
                .table("tenants")
                .drop_column(total)
                .to_owned();
            manager.alter_table(alter).await?;
        }
        Ok(())
    }
}
