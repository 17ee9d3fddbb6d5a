//! `rate_limit_states`: the shared state of request rate limits, one row per limited subject
//! (an API key, under its tenant). `tat_us` is the GCRA's theoretical arrival time in
//! microseconds since the Unix epoch by the database's clock: the subject's allowance is full
//! again at that instant. Instances lease batches of allowance from the row with one
//! conditional upsert; `granted` is what the last lease got. The key leads with `tenant_id`,
//! so the table distributes by tenant like the others.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `rate_limit_states`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "rate_limit_states";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid("tenant_id"))
                    .col(uuid("subject_id"))
                    .col(ColumnDef::new("tat_us").big_integer().not_null())
                    .col(
                        ColumnDef::new("granted")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .primary_key(Index::create().col("tenant_id").col("subject_id"))
                    .foreign_key(&mut foreign_key(
                        T,
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
