//! `support_tickets`: support requests from a tenant's users.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One ticket.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TicketId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Who opened it.
    pub user_id: UserId,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub description: String,
    /// Category.
    pub category: TicketCategory,
    /// Priority.
    pub priority: TicketPriority,
    /// Status.
    pub status: TicketStatus,
    /// Resolution text.
    pub resolution: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Resolution time.
    pub resolved_at: Option<DateTimeUtc>,
}

crate::schema::table!("support_tickets");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
