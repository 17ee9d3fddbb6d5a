//! `usage_records`: metered usage by the hour, written idempotently; `usage_hourly`: their
//! sums per hour, kept by the same write, which summaries read.

use crate::{DriverError, OffsetPage, Page, TenantDriver};
use account_models::entities::{usage_hourly, usage_records};
use account_models::{ApiKeyId, RunId, TenantId, UsageRecordId, UsageUnit};
use chrono::{DurationRound, TimeDelta};
use sea_orm::prelude::{DateTimeUtc, Json};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// A usage record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecordSnapshot {
    /// Id.
    pub id: UsageRecordId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Meter.
    pub meter_name: String,
    /// Quantity.
    pub amount: i64,
    /// Unit.
    pub unit: UsageUnit,
    /// Start of its hour.
    pub period_start: DateTimeUtc,
    /// End of its hour.
    pub period_end: DateTimeUtc,
}

/// A usage record to write.
#[derive(Clone, Debug)]
pub struct NewUsageRecord {
    /// Id to create it with.
    pub id: UsageRecordId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Meter.
    pub meter_name: String,
    /// Quantity.
    pub amount: i64,
    /// Unit.
    pub unit: UsageUnit,
    /// Worker involved.
    pub worker_id: Option<String>,
    /// Key involved.
    pub api_key_id: Option<ApiKeyId>,
    /// Run involved.
    pub run_id: Option<RunId>,
    /// Makes a retried write a no-op (unique per tenant).
    pub idempotency_key: Option<String>,
    /// Extra data.
    pub metadata: Option<Json>,
}

/// The total of one meter over a period.
#[derive(Clone, Debug, PartialEq, Eq, sea_orm::FromQueryResult)]
#[non_exhaustive]
pub struct MeterTotal {
    /// Meter.
    pub meter_name: String,
    /// Unit.
    pub unit: UsageUnit,
    /// Sum of the amounts.
    pub total: i64,
}

fn snapshot(m: usage_records::Model) -> UsageRecordSnapshot {
    UsageRecordSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        meter_name: m.meter_name,
        amount: m.amount,
        unit: m.unit,
        period_start: m.period_start,
        period_end: m.period_end,
    }
}

/// The row `record` is written as, in the hour of `now`.
pub(crate) fn record_model(record: NewUsageRecord, now: DateTimeUtc) -> usage_records::ActiveModel {
    let (period_start, period_end) = hour_of(now);
    usage_records::ActiveModel {
        id: Set(record.id),
        tenant_id: Set(record.tenant_id),
        meter_name: Set(record.meter_name),
        amount: Set(record.amount),
        unit: Set(record.unit),
        period_start: Set(period_start),
        period_end: Set(period_end),
        worker_id: Set(record.worker_id),
        api_key_id: Set(record.api_key_id),
        run_id: Set(record.run_id),
        idempotency_key: Set(record.idempotency_key),
        metadata: Set(record.metadata),
        recorded_at: Set(now),
    }
}

/// The hourly total a record just written adds to.
pub(crate) fn hourly_row(record: &usage_records::Model) -> usage_hourly::ActiveModel {
    usage_hourly::ActiveModel {
        tenant_id: Set(record.tenant_id),
        hour_start: Set(record.period_start),
        meter_name: Set(record.meter_name.clone()),
        unit: Set(record.unit),
        total: Set(record.amount),
    }
}

/// `ON CONFLICT` of an hourly row: add to the hour's total.
pub(crate) fn add_to_hourly_total() -> OnConflict {
    use usage_hourly::Column as C;
    OnConflict::columns([C::TenantId, C::HourStart, C::MeterName, C::Unit])
        .value(
            C::Total,
            Expr::col((Alias::new("usage_hourly"), C::Total))
                .add(Expr::col((Alias::new("excluded"), C::Total))),
        )
        .to_owned()
}

/// The hour `at` falls in: `[start, start + 1h)`.
pub fn hour_of(at: DateTimeUtc) -> (DateTimeUtc, DateTimeUtc) {
    let start = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
    (start, start + TimeDelta::hours(1))
}

impl TenantDriver<'_> {
    /// Writes a record in the hour of `now`. A record whose idempotency key the tenant
    /// already used is not written again: `None` then.
    pub async fn insert_usage_record(
        &self,
        record: NewUsageRecord,
        now: DateTimeUtc,
    ) -> Result<Option<UsageRecordSnapshot>, DriverError> {
        let model = record_model(record, now);
        let inserted = usage_records::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([
                    usage_records::Column::TenantId,
                    usage_records::Column::IdempotencyKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_with_returning(self.db.conn())
            .await;
        match inserted {
            Ok(model) => {
                self.add_to_hour(&model).await?;
                Ok(Some(snapshot(model)))
            }
            // ON CONFLICT DO NOTHING returned no row: the key was used already.
            Err(DbErr::RecordNotInserted | DbErr::RecordNotFound(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Adds a record just written to its hour's total: one upsert, only after the record's
    /// own insert happened, so a retried (idempotent) record is never counted twice.
    async fn add_to_hour(&self, record: &usage_records::Model) -> Result<(), DriverError> {
        usage_hourly::Entity::insert(hourly_row(record))
            .on_conflict(add_to_hourly_total())
            .exec_without_returning(self.db.conn())
            .await?;
        Ok(())
    }

    /// Records of hours starting in `[start, end)`, oldest first.
    pub async fn fetch_usage_records(
        &self,
        tenant: TenantId,
        start: DateTimeUtc,
        end: DateTimeUtc,
        page: OffsetPage,
    ) -> Result<Page<UsageRecordSnapshot>, DriverError> {
        let query = || {
            usage_records::Entity::find()
                .filter(usage_records::Column::TenantId.eq(tenant))
                .filter(usage_records::Column::PeriodStart.gte(hour_of(start).0))
                .filter(usage_records::Column::PeriodStart.lt(end))
        };
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_asc(usage_records::Column::PeriodStart)
            .order_by_asc(usage_records::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(snapshot).collect(),
            total,
            page,
        ))
    }

    /// Totals per meter over `[start, end)`, summed by the database from the hourly totals
    /// (one row per meter and hour, whatever the number of records). The hour containing
    /// `start` counts whole, and so does the current, partial hour when `end` is now.
    pub async fn summarize_usage(
        &self,
        tenant: TenantId,
        start: DateTimeUtc,
        end: DateTimeUtc,
    ) -> Result<Vec<MeterTotal>, DriverError> {
        use usage_hourly::Column as C;
        Ok(usage_hourly::Entity::find()
            .select_only()
            .column(C::MeterName)
            .column(C::Unit)
            .column_as(Expr::col(C::Total).sum().cast_as("bigint"), "total")
            .filter(C::TenantId.eq(tenant))
            .filter(C::HourStart.gte(hour_of(start).0))
            .filter(C::HourStart.lt(end))
            .group_by(C::MeterName)
            .group_by(C::Unit)
            .order_by_asc(C::MeterName)
            .order_by_asc(C::Unit)
            .into_model::<MeterTotal>()
            .all(self.db.conn())
            .await?)
    }
}
