//! `audit_log`: who did what, to which resource, and why.

use crate::{DriverError, OffsetPage, Page, TenantDriver};
use account_models::entities::audit_log;
use account_models::{ActorType, ApiKeyId, AuditEntryId, TenantId, UserId};
use sea_orm::prelude::{DateTimeUtc, Json};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

/// An audit entry to write.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    /// Tenant concerned.
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
    /// The actor's reason.
    pub reason: Option<String>,
    /// State before (an empty object is stored as nothing).
    pub old_value: Option<Json>,
    /// State after (an empty object is stored as nothing).
    pub new_value: Option<Json>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client agent.
    pub user_agent: Option<String>,
    /// Request correlation id.
    pub request_id: Option<String>,
}

/// An audit entry as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntrySnapshot {
    /// Id.
    pub id: AuditEntryId,
    /// Tenant concerned.
    pub tenant_id: Option<TenantId>,
    /// Kind of actor.
    pub actor_type: ActorType,
    /// Acting user.
    pub user_id: Option<UserId>,
    /// Acting key.
    pub api_key_id: Option<ApiKeyId>,
    /// What happened.
    pub action: String,
    /// Kind of resource.
    pub resource_type: String,
    /// Which resource.
    pub resource_id: Option<String>,
    /// The actor's reason.
    pub reason: Option<String>,
    /// State before.
    pub old_value: Option<Json>,
    /// State after.
    pub new_value: Option<Json>,
    /// When.
    pub created_at: DateTimeUtc,
}

/// The row `entry` is written as.
pub(crate) fn entry_model(entry: NewAuditEntry, now: DateTimeUtc) -> audit_log::ActiveModel {
    audit_log::ActiveModel {
        id: Set(AuditEntryId::new()),
        tenant_id: Set(entry.tenant_id),
        actor_type: Set(entry.actor_type),
        user_id: Set(entry.user_id),
        api_key_id: Set(entry.api_key_id),
        action: Set(entry.action),
        resource_type: Set(entry.resource_type),
        resource_id: Set(entry.resource_id),
        reason: Set(entry.reason),
        old_value: Set(non_empty(entry.old_value)),
        new_value: Set(non_empty(entry.new_value)),
        ip_address: Set(entry.ip_address),
        user_agent: Set(entry.user_agent),
        request_id: Set(entry.request_id),
        created_at: Set(now),
    }
}

fn non_empty(value: Option<Json>) -> Option<Json> {
    value.filter(|v| !(v.is_null() || v.as_object().is_some_and(|o| o.is_empty())))
}

fn snapshot(m: audit_log::Model) -> AuditEntrySnapshot {
    AuditEntrySnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        actor_type: m.actor_type,
        user_id: m.user_id,
        api_key_id: m.api_key_id,
        action: m.action,
        resource_type: m.resource_type,
        resource_id: m.resource_id,
        reason: m.reason,
        old_value: m.old_value,
        new_value: m.new_value,
        created_at: m.created_at,
    }
}

impl TenantDriver<'_> {
    /// Appends an entry.
    pub async fn insert_audit_log(
        &self,
        entry: NewAuditEntry,
        now: DateTimeUtc,
    ) -> Result<AuditEntrySnapshot, DriverError> {
        let model = entry_model(entry, now).insert(self.db.conn()).await?;
        Ok(snapshot(model))
    }

    /// The tenant's entries, newest first.
    pub async fn fetch_audit_log(
        &self,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<AuditEntrySnapshot>, DriverError> {
        let query = || audit_log::Entity::find().filter(audit_log::Column::TenantId.eq(tenant));
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_desc(audit_log::Column::CreatedAt)
            .order_by_desc(audit_log::Column::Id)
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
