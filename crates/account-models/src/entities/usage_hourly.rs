//! `usage_hourly`: usage per tenant, meter, unit and hour, the sum of that hour's records,
//! kept by every record's write.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One tenant's total of one meter in one hour.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Owning tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: TenantId,
    /// Start of the hour.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour_start: DateTimeUtc,
    /// Meter.
    #[sea_orm(primary_key, auto_increment = false)]
    pub meter_name: String,
    /// Unit.
    #[sea_orm(primary_key, auto_increment = false)]
    pub unit: UsageUnit,
    /// Sum of the hour's records.
    pub total: i64,
}

crate::schema::table!("usage_hourly");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
