//! Webhook endpoints: where a tenant's events are sent, how far each endpoint got, every
//! attempt, and the events asked for again.
//!
//! `webhook_endpoints.delivered_seq` is the endpoint's cursor in its tenant's outbox stream
//! (`event_outbox.seq`): everything up to it was delivered or is of a type the endpoint does
//! not take. `attempts` counts the failed attempts at the event after it and
//! `next_attempt_at` says when the next one is due, so an endpoint that fails holds its own
//! stream back and no other. Dispatchers lease endpoints (`lease_owner`/`lease_until`) as
//! they lease streams. Secrets are sealed (AES-256-GCM under a key derived from the pepper,
//! bound to tenant and endpoint); the previous one stays valid until `previous_secret_until`
//! after a rotation.
//!
//! `webhook_attempts` logs every attempt (status or transport failure, latency, the start of
//! the answer), purged with the outbox. `webhook_replays` holds events asked for again (one
//! event, or every event of a time range), sent beside the stream, each with its own attempts.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `webhook_endpoints`, `webhook_attempts` and `webhook_replays`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const ENDPOINTS: &str = "webhook_endpoints";
const ATTEMPTS: &str = "webhook_attempts";
const REPLAYS: &str = "webhook_replays";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let big = |name: &'static str| {
            ColumnDef::new(name)
                .big_integer()
                .not_null()
                .default(0)
                .take()
        };
        let int = |name: &'static str| ColumnDef::new(name).integer().not_null().default(0).take();
        manager
            .create_table(
                Table::create()
                    .table(ENDPOINTS)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(varchar("url", 2048))
                    .col(varchar("description", 256))
                    .col(ColumnDef::new("event_types").text().not_null())
                    .col(ColumnDef::new("secret").binary().not_null())
                    .col(ColumnDef::new("previous_secret").binary().null())
                    .col(timestamp_null("previous_secret_until"))
                    .col(ColumnDef::new("enabled").boolean().not_null())
                    .col(varchar_null("disabled_reason", 32))
                    .col(big("delivered_seq"))
                    .col(int("attempts"))
                    .col(timestamp_null("next_attempt_at"))
                    .col(timestamp_null("failing_since"))
                    .col(varchar_null("lease_owner", 64))
                    .col(timestamp_null("lease_until"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .check(one_of(
                        ENDPOINTS,
                        "disabled_reason",
                        &["by_request", "failing", "gone"],
                    ))
                    .foreign_key(&mut foreign_key(
                        ENDPOINTS,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_webhook_endpoints_tenant_id_created_at",
                ENDPOINTS,
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ATTEMPTS)
                    .col(uuid_pk("id"))
                    .col(uuid("tenant_id"))
                    .col(uuid("endpoint_id"))
                    .col(uuid("event_id"))
                    .col(ColumnDef::new("seq").big_integer().not_null())
                    .col(varchar("event_type", 64))
                    .col(ColumnDef::new("attempt").integer().not_null())
                    .col(ColumnDef::new("replay").boolean().not_null())
                    .col(ColumnDef::new("status").integer().null())
                    .col(varchar_null("failure", 32))
                    .col(ColumnDef::new("latency_ms").integer().not_null())
                    .col(ColumnDef::new("snippet").text().not_null())
                    .col(timestamp("attempted_at"))
                    .foreign_key(&mut foreign_key(
                        ATTEMPTS,
                        "endpoint_id",
                        ENDPOINTS,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_webhook_attempts_tenant_id_endpoint_id_id",
                ATTEMPTS,
                &["tenant_id", "endpoint_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_webhook_attempts_attempted_at",
                ATTEMPTS,
                &["attempted_at"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(REPLAYS)
                    .col(uuid("tenant_id"))
                    .col(uuid("endpoint_id"))
                    .col(ColumnDef::new("seq").big_integer().not_null())
                    .col(int("attempts"))
                    .col(timestamp("next_attempt_at"))
                    .primary_key(Index::create().col("endpoint_id").col("seq"))
                    .foreign_key(&mut foreign_key(
                        REPLAYS,
                        "endpoint_id",
                        ENDPOINTS,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_webhook_replays_tenant_id_next_attempt_at",
                REPLAYS,
                &["tenant_id", "next_attempt_at"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [REPLAYS, ATTEMPTS, ENDPOINTS] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
