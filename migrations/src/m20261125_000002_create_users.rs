//! `users`: global accounts with their profile and preferences. Email is stored normalised
//! and unique, so one person is one user across tenants.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `users`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "users";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("id"))
                    .col(varchar_null("external_user_id", 100))
                    .col(varchar("email", 255))
                    .col(varchar_null("name", 255))
                    .col(varchar_null("avatar_url", 500))
                    .col(varchar_null("oauth_provider", 50))
                    .col(varchar_null("oauth_provider_id", 255))
                    .col(
                        ColumnDef::new("email_verified")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(timestamp_null("email_verified_at"))
                    .col(uuid_null("default_tenant_id"))
                    .col(varchar("status", 50).default("active"))
                    .col(varchar_null("time_zone", 64))
                    .col(json_null("preferences"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .col(timestamp_null("last_login_at"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "default_tenant_id",
                        "tenants",
                        ForeignKeyAction::SetNull,
                    ))
                    .check(one_of(T, "status", &["active", "suspended", "deleted"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_users_email", T, &["email"]))
            .await?;
        manager
            .create_index(unique(
                "uq_users_external_user_id",
                T,
                &["external_user_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_users_oauth_provider",
                T,
                &["oauth_provider", "oauth_provider_id"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
