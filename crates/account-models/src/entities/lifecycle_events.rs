//! `lifecycle_events`: the history of a tenant's lifecycle transitions, with actor and reason.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One transition.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: LifecycleEventId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Status before.
    pub from_status: TenantStatus,
    /// Status after.
    pub to_status: TenantStatus,
    /// Action name, e.g. `suspend_tenant`.
    pub action: String,
    /// Kind of actor.
    pub actor_type: ActorType,
    /// The actor's id (user id, or a system name).
    pub actor_id: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTimeUtc,
}

crate::schema::table!("lifecycle_events");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
