//! `memory_pins`: a per-tenant key-value store; a pin expires `ttl_seconds` after the write that set it.

use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One pin.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MemoryPinId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Key, unique per tenant.
    pub key: String,
    /// Value: a JSON object.
    pub value: Json,
    /// Who wrote it (`api`, `seed`, `import`, ...).
    pub source: String,
    /// Lifetime from the last write, if any.
    pub ttl_seconds: Option<i32>,
    /// `updated_at + ttl_seconds`, if a TTL is set.
    pub expires_at: Option<DateTimeUtc>,
    /// First write.
    pub created_at: DateTimeUtc,
    /// Last write.
    pub updated_at: DateTimeUtc,
}

crate::schema::table!("memory_pins");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
