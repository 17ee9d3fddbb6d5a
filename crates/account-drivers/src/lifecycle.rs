//! Tenant lifecycle status and its transition history.
//!
//! A transition is one conditional `UPDATE ... WHERE status = :expected`: when two operators
//! race, one changes the row and the other changes nothing (the original read, then wrote).

use crate::tenants::update_returning;
use crate::{Db, DriverError, OffsetPage, Page};
use account_models::entities::{lifecycle_events, tenants};
use account_models::{ActorType, LifecycleEventId, TenantId, TenantStatus};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityName, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

/// Tenant lifecycle data access, bound to one handle.
#[derive(Clone, Copy, Debug)]
pub struct TenantLifecycleDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The lifecycle driver on `db`.
pub fn get_tenant_lifecycle_driver(db: Db<'_>) -> TenantLifecycleDriver<'_> {
    TenantLifecycleDriver { db }
}

/// A status change that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// Status before.
    pub previous: TenantStatus,
    /// Status after.
    pub current: TenantStatus,
}

/// A transition to record in the history.
#[derive(Clone, Debug)]
pub struct NewLifecycleEvent {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Status before.
    pub from: TenantStatus,
    /// Status after.
    pub to: TenantStatus,
    /// Action name, e.g. `suspend_tenant`.
    pub action: String,
    /// Kind of actor.
    pub actor_type: ActorType,
    /// The actor's id.
    pub actor_id: String,
    /// Why.
    pub reason: Option<String>,
}

/// A recorded transition.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleEventSnapshot {
    /// Id.
    pub id: LifecycleEventId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Status before.
    pub from: TenantStatus,
    /// Status after.
    pub to: TenantStatus,
    /// Action name.
    pub action: String,
    /// Kind of actor.
    pub actor_type: ActorType,
    /// The actor's id.
    pub actor_id: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTimeUtc,
}

fn snapshot(m: lifecycle_events::Model) -> LifecycleEventSnapshot {
    LifecycleEventSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        from: m.from_status,
        to: m.to_status,
        action: m.action,
        actor_type: m.actor_type,
        actor_id: m.actor_id,
        reason: m.reason,
        created_at: m.created_at,
    }
}

impl TenantLifecycleDriver<'_> {
    /// The tenant's status, or `None` when there is no such tenant.
    ///
    /// Every tenant use case's capability check runs this, so it is built lean (BENCHMARKS.md,
    /// issue 20): the one column, where `find_by_id` first built the entity's whole column
    /// list and then cleared it; and no `LIMIT` (the key is the primary key), where `.one()`
    /// binds `LIMIT ?`, which SQLite 3.51 plans with and so recompiles the statement on every
    /// execution, at the cost of more instructions than the rest of a read call.
    pub async fn fetch_tenant_status(
        &self,
        tenant: TenantId,
    ) -> Result<Option<TenantStatus>, DriverError> {
        let mut query = Query::select();
        query
            .column((tenants::Entity, tenants::Column::Status))
            .from(tenants::Entity.table_ref())
            .and_where(tenants::Column::Id.eq(tenant))
            // A deleted project is gone to every use case (restore and purge read it apart).
            .and_where(crate::projects::not_deleted((
                tenants::Entity,
                tenants::Column::Id,
            )));
        let row = self.db.conn().query_one(&query).await?;
        Ok(row
            .map(|row| row.try_get::<TenantStatus>("", "status"))
            .transpose()?)
    }

    /// Moves the tenant from `expected` to `status` in one conditional statement; `None`
    /// (nothing changed) when the tenant is missing or not in `expected`. The suspension
    /// reason is set when given and cleared otherwise (resuming clears it).
    pub async fn update_lifecycle_status(
        &self,
        tenant: TenantId,
        expected: TenantStatus,
        status: TenantStatus,
        suspended_reason: Option<&str>,
        now: DateTimeUtc,
    ) -> Result<Option<StatusChange>, DriverError> {
        let update = tenants::Entity::update_many()
            .col_expr(tenants::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                tenants::Column::SuspendedReason,
                Expr::value(suspended_reason.map(str::to_owned)),
            )
            .col_expr(tenants::Column::UpdatedAt, Expr::value(now))
            .filter(tenants::Column::Id.eq(tenant))
            .filter(tenants::Column::Status.eq(expected));
        Ok(update_returning(self.db, update)
            .await?
            .map(|row| StatusChange {
                previous: expected,
                current: row.status,
            }))
    }

    /// Appends a transition to the history.
    pub async fn insert_lifecycle_event(
        &self,
        event: NewLifecycleEvent,
        now: DateTimeUtc,
    ) -> Result<LifecycleEventSnapshot, DriverError> {
        let model = lifecycle_events::ActiveModel {
            id: Set(LifecycleEventId::new()),
            tenant_id: Set(event.tenant_id),
            from_status: Set(event.from),
            to_status: Set(event.to),
            action: Set(event.action),
            actor_type: Set(event.actor_type),
            actor_id: Set(event.actor_id),
            reason: Set(event.reason),
            created_at: Set(now),
        }
        .insert(self.db.conn())
        .await?;
        Ok(snapshot(model))
    }

    /// The tenant's transitions, newest first.
    pub async fn fetch_lifecycle_history(
        &self,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<LifecycleEventSnapshot>, DriverError> {
        let query = || {
            lifecycle_events::Entity::find().filter(lifecycle_events::Column::TenantId.eq(tenant))
        };
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_desc(lifecycle_events::Column::CreatedAt)
            .order_by_desc(lifecycle_events::Column::Id)
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
}
