//! `audit_log`: who did what to which resource; no foreign keys, so entries outlive what they describe.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AuditEntryId,
    /// Tenant concerned (none for platform-wide actions).
    pub tenant_id: Option<TenantId>,
    /// Kind of actor.
    pub actor_type: ActorType,
    /// Acting user.
    pub user_id: Option<UserId>,
    /// Acting key.
    pub api_key_id: Option<ApiKeyId>,
    /// What happened, e.g. `api_key.revoked`.
    pub action: String,
    /// Kind of resource.
    pub resource_type: String,
    /// Which resource.
    pub resource_id: Option<String>,
    /// Why, when the actor gave a reason.
    pub reason: Option<String>,
    /// State before.
    pub old_value: Option<Json>,
    /// State after.
    pub new_value: Option<Json>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client agent.
    pub user_agent: Option<String>,
    /// Request correlation id.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTimeUtc,
}

crate::schema::table!("audit_log");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
