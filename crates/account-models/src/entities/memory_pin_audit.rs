//! `memory_pin_audit`: the audit trail of memory pin operations.

use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One audited operation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MemoryPinAuditId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// `upsert`, `get`, `delete`.
    pub operation: String,
    /// The pin's key.
    pub key: String,
    /// Who wrote (for writes).
    pub source: Option<String>,
    /// Calling agent, if known.
    pub agent_id: Option<String>,
    /// Whether the operation succeeded.
    pub success: bool,
    /// Error text of a failed operation.
    pub error_message: Option<String>,
    /// Digest of the previous value.
    pub old_value_hash: Option<String>,
    /// Digest of the new value.
    pub new_value_hash: Option<String>,
    /// When.
    pub created_at: DateTimeUtc,
}

crate::schema::table!("memory_pin_audit");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
