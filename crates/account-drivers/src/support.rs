//! `support_tickets`: support requests from a tenant's users.

use crate::{AccountsFacadeDriver, DriverError, OffsetPage, Page};
use account_models::entities::support_tickets;
use account_models::{TenantId, TicketCategory, TicketId, TicketPriority, TicketStatus, UserId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

/// A support ticket as the engines see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TicketSnapshot {
    /// Id.
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

/// A ticket to open; it starts `open`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTicket {
    /// Id to create it with.
    pub id: TicketId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Who opens it.
    pub user_id: UserId,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub description: String,
    /// Category.
    pub category: TicketCategory,
    /// Priority.
    pub priority: TicketPriority,
}

fn snapshot(m: support_tickets::Model) -> TicketSnapshot {
    TicketSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        user_id: m.user_id,
        subject: m.subject,
        description: m.description,
        category: m.category,
        priority: m.priority,
        status: m.status,
        resolution: m.resolution,
        created_at: m.created_at,
        updated_at: m.updated_at,
        resolved_at: m.resolved_at,
    }
}

impl AccountsFacadeDriver<'_> {
    /// Opens a ticket and returns the written row (`INSERT ... RETURNING`).
    pub async fn insert_support_ticket(
        &self,
        ticket: NewTicket,
        now: DateTimeUtc,
    ) -> Result<TicketSnapshot, DriverError> {
        let model = support_tickets::ActiveModel {
            id: Set(ticket.id),
            tenant_id: Set(ticket.tenant_id),
            user_id: Set(ticket.user_id),
            subject: Set(ticket.subject),
            description: Set(ticket.description),
            category: Set(ticket.category),
            priority: Set(ticket.priority),
            status: Set(TicketStatus::Open),
            resolution: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            resolved_at: Set(None),
        }
        .insert(self.db.conn())
        .await?;
        Ok(snapshot(model))
    }

    /// The tenant's tickets, newest first (ties by id), optionally with one status. Two
    /// statements: the count and the page.
    pub async fn fetch_support_tickets(
        &self,
        tenant: TenantId,
        status: Option<TicketStatus>,
        page: OffsetPage,
    ) -> Result<Page<TicketSnapshot>, DriverError> {
        let query = || {
            let query = support_tickets::Entity::find()
                .filter(support_tickets::Column::TenantId.eq(tenant));
            match status {
                Some(status) => query.filter(support_tickets::Column::Status.eq(status)),
                None => query,
            }
        };
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_desc(support_tickets::Column::CreatedAt)
            .order_by_desc(support_tickets::Column::Id)
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

    /// Sets the status, resolution and resolution time of the tenant's ticket (and
    /// `updated_at`) in one statement and returns the row; `None` when the tenant has no such
    /// ticket. The engine decides the values.
    pub async fn update_support_ticket_status(
        &self,
        tenant: TenantId,
        id: TicketId,
        status: TicketStatus,
        resolution: Option<String>,
        resolved_at: Option<DateTimeUtc>,
        now: DateTimeUtc,
    ) -> Result<Option<TicketSnapshot>, DriverError> {
        let rows = support_tickets::Entity::update_many()
            .set(support_tickets::ActiveModel {
                status: Set(status),
                resolution: Set(resolution),
                resolved_at: Set(resolved_at),
                updated_at: Set(now),
                ..Default::default()
            })
            .filter(support_tickets::Column::TenantId.eq(tenant))
            .filter(support_tickets::Column::Id.eq(id))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// The tenant's ticket with this id.
    pub async fn fetch_support_ticket(
        &self,
        tenant: TenantId,
        id: TicketId,
    ) -> Result<Option<TicketSnapshot>, DriverError> {
        let row = support_tickets::Entity::find()
            .filter(support_tickets::Column::TenantId.eq(tenant))
            .filter(support_tickets::Column::Id.eq(id))
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }
}
