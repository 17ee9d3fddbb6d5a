//! `usage_records`: metered usage per tenant and hour, written idempotently.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One usage record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: UsageRecordId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Meter, e.g. `worker_runs`, `tokens_used`.
    pub meter_name: String,
    /// Quantity.
    pub amount: i64,
    /// Unit.
    pub unit: UsageUnit,
    /// Start of the hour it falls in.
    pub period_start: DateTimeUtc,
    /// End of that hour.
    pub period_end: DateTimeUtc,
    /// Worker involved.
    pub worker_id: Option<String>,
    /// Key involved.
    pub api_key_id: Option<ApiKeyId>,
    /// Run involved.
    pub run_id: Option<RunId>,
    /// Makes a retried write a no-op; unique per tenant.
    pub idempotency_key: Option<String>,
    /// Extra data.
    pub metadata: Option<Json>,
    /// Write time.
    pub recorded_at: DateTimeUtc,
}

crate::schema::table!("usage_records");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
