//! The transactional outbox: `event_outbox` holds every domain event, written by the use case's
//! own transaction, and `event_streams` one row per tenant that ever had one.
//!
//! `event_streams.last_seq` numbers a tenant's events: a writer moves it by the number of
//! events it appends, which locks the row until its commit, so a tenant's events commit in
//! `seq` order and a dispatcher that reads them in that order never finds a gap filled later.
//! `dispatched_seq` is how far the dispatchers got (delivered to the in-process sink and
//! handed to the webhook endpoints); `lease_owner`/`lease_until` say which dispatcher works on
//! the tenant now. The partial index holds only the streams with work, so a dispatcher's scan
//! costs what is pending, not the number of tenants (both backends allow a predicate comparing
//! two columns of the row).
//!
//! Outbox rows lead with `tenant_id` like every tenant-owned table (distributable by tenant).
//! `payload` is the event's data as JSON text, kept byte for byte so a redelivery signs the
//! same body; `sealed` holds a one-time secret some events carry (an invitation's token),
//! encrypted, never in clear. Rows are deleted some time after dispatch (`occurred_at` index).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `event_streams` and `event_outbox`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const STREAMS: &str = "event_streams";
const OUTBOX: &str = "event_outbox";
const PENDING: &str = "ix_event_streams_pending";
const PURGE: &str = "ix_event_outbox_occurred_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let counter = |name: &'static str| {
            ColumnDef::new(name)
                .big_integer()
                .not_null()
                .default(0)
                .take()
        };
        manager
            .create_table(
                Table::create()
                    .table(STREAMS)
                    .col(uuid("tenant_id").primary_key())
                    .col(counter("last_seq"))
                    .col(counter("dispatched_seq"))
                    .col(varchar_null("lease_owner", 64))
                    .col(timestamp_null("lease_until"))
                    .foreign_key(&mut foreign_key(
                        STREAMS,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        let mut pending = index(PENDING, STREAMS, &["tenant_id"]);
        pending.and_where(Expr::col("last_seq").gt(Expr::col("dispatched_seq")));
        manager.create_index(pending).await?;
        manager
            .create_table(
                Table::create()
                    .table(OUTBOX)
                    .col(uuid("tenant_id"))
                    .col(ColumnDef::new("seq").big_integer().not_null())
                    .col(uuid("event_id"))
                    .col(varchar("event_type", 64))
                    .col(ColumnDef::new("payload").text().not_null())
                    .col(ColumnDef::new("sealed").binary().null())
                    .col(timestamp("occurred_at"))
                    .primary_key(Index::create().col("tenant_id").col("seq"))
                    .foreign_key(&mut foreign_key(
                        OUTBOX,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(PURGE, OUTBOX, &["occurred_at"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OUTBOX).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(STREAMS).to_owned())
            .await
    }
}
