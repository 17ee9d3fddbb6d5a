//! `audit_log`: who did what, to which resource, and why; read newest first by keyset, and
//! purged past each tenant's retention.
//!
//! Rows are append-only: on PostgreSQL a trigger refuses every update, and every delete but in
//! a transaction where [`TenantDriver::purge_audit_log_before`] allowed them (migration 33);
//! on SQLite only updates are refused. Nothing here updates a row.

use crate::like::column_starts_with;
use crate::{DriverError, KeysetPage, TenantDriver};
use account_models::entities::{audit_log, tenants};
use account_models::{ActorType, ApiKeyId, AuditEntryId, TenantId, UserId};
use sea_orm::prelude::{DateTimeUtc, Json};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityName, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
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
    /// Client address.
    pub ip_address: Option<String>,
    /// Client agent.
    pub user_agent: Option<String>,
    /// Request correlation id.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTimeUtc,
}

/// Where a keyset read of the log continues: after the entry with this time and id (the
/// list's order is newest first, by time then id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditPosition {
    /// The last entry's time.
    pub created_at: DateTimeUtc,
    /// The last entry's id (the tie-breaker between entries of one instant).
    pub id: AuditEntryId,
}

impl AuditPosition {
    /// The position of `entry` in the log.
    pub fn of(entry: &AuditEntrySnapshot) -> Self {
        Self {
            created_at: entry.created_at,
            id: entry.id,
        }
    }
}

/// Which actions an audit read keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionMatch {
    /// Exactly this action.
    Exact(String),
    /// Every action starting with this text, taken literally (`api_key.` keeps
    /// `api_key.created`, `api_key.revoked`, ...).
    Prefix(String),
}

/// Which of a tenant's audit entries a read keeps; each field set narrows it, none keeps
/// every entry. Times are a half-open window: `from` inclusive, `to` exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditFilter {
    /// Only entries by this kind of actor.
    pub actor_type: Option<ActorType>,
    /// Only entries of this acting user.
    pub user_id: Option<UserId>,
    /// Only entries of this acting key.
    pub api_key_id: Option<ApiKeyId>,
    /// Only these actions.
    pub action: Option<ActionMatch>,
    /// Only entries about this kind of resource.
    pub resource_type: Option<String>,
    /// Only entries about the resource with this id.
    pub resource_id: Option<String>,
    /// Only entries at or after this time.
    pub from: Option<DateTimeUtc>,
    /// Only entries before this time.
    pub to: Option<DateTimeUtc>,
}

impl AuditFilter {
    /// The SQL condition of this filter (the tenant's is added by every read).
    fn condition(&self) -> Condition {
        use audit_log::Column as C;
        let mut all = Condition::all();
        if let Some(actor_type) = self.actor_type {
            all = all.add(C::ActorType.eq(actor_type));
        }
        if let Some(user) = self.user_id {
            all = all.add(C::UserId.eq(user));
        }
        if let Some(key) = self.api_key_id {
            all = all.add(C::ApiKeyId.eq(key));
        }
        match &self.action {
            Some(ActionMatch::Exact(action)) => all = all.add(C::Action.eq(action.as_str())),
            Some(ActionMatch::Prefix(prefix)) => {
                all = all.add(column_starts_with(C::Action, prefix));
            }
            None => {}
        }
        if let Some(resource_type) = &self.resource_type {
            all = all.add(C::ResourceType.eq(resource_type.as_str()));
        }
        if let Some(resource_id) = &self.resource_id {
            all = all.add(C::ResourceId.eq(resource_id.as_str()));
        }
        if let Some(from) = self.from {
            all = all.add(C::CreatedAt.gte(from));
        }
        if let Some(to) = self.to {
            all = all.add(C::CreatedAt.lt(to));
        }
        all
    }
}

/// A tenant whose audit rows have a retention, as the purge walks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRetention {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Days its audit rows are kept.
    pub days: i32,
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
        ip_address: m.ip_address,
        user_agent: m.user_agent,
        request_id: m.request_id,
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

    /// The tenant's entries matching `filter`, newest first (by time, then id), after
    /// `after`: one statement with no total, served by the index on `(tenant_id, created_at,
    /// id)`, so a deep page costs what the first does (within a time window; other filters
    /// are checked on the rows the index walks). `after` is only a position: another tenant's
    /// rows never match, whatever it names.
    pub async fn fetch_audit_log_after(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        after: Option<AuditPosition>,
        limit: u64,
    ) -> Result<KeysetPage<AuditEntrySnapshot, AuditPosition>, DriverError> {
        use audit_log::Column as C;
        let mut query = audit_log::Entity::find()
            .filter(C::TenantId.eq(tenant))
            .filter(filter.condition());
        if let Some(AuditPosition { created_at, id }) = after {
            // A row value, which both backends take as the index range's end.
            query = query.filter(
                Expr::tuple([Expr::col(C::CreatedAt), Expr::col(C::Id)])
                    .lt(Expr::tuple([Expr::value(created_at), Expr::value(id)])),
            );
        }
        let rows = query
            .order_by_desc(C::CreatedAt)
            .order_by_desc(C::Id)
            .limit(limit.saturating_add(1))
            .all(self.db.conn())
            .await?;
        let entries = rows.into_iter().map(snapshot).collect();
        Ok(KeysetPage::from_overfetched(
            entries,
            limit,
            AuditPosition::of,
        ))
    }

    /// Deletes at most `limit` of the tenant's entries written before `before`, oldest first,
    /// in one statement; returns how many. On PostgreSQL it first allows deletes for the rest
    /// of the caller's transaction (`account.audit_purge` set to the transaction's id,
    /// transaction-local: one statement more), which the append-only guard requires; on a
    /// pool handle that transaction is the setting's own statement, and the guard refuses
    /// the delete. The caller's transaction should do nothing else that deletes audit rows.
    pub async fn purge_audit_log_before(
        &self,
        tenant: TenantId,
        before: DateTimeUtc,
        limit: u64,
    ) -> Result<u64, DriverError> {
        use audit_log::Column as C;
        let conn = self.db.conn();
        if conn.get_database_backend() == DbBackend::Postgres {
            // The guard allows the transaction named here, and only for its own duration.
            let allow = "SELECT set_config('account.audit_purge', txid_current()::text, true)";
            conn.execute_raw(Statement::from_string(DbBackend::Postgres, allow))
                .await?;
        }
        let mut oldest = Query::select();
        oldest
            .column(C::Id)
            .from(audit_log::Entity.table_ref())
            .and_where(Expr::col(C::TenantId).eq(tenant))
            .and_where(Expr::col(C::CreatedAt).lt(before))
            .order_by(C::CreatedAt, sea_orm::Order::Asc)
            .order_by(C::Id, sea_orm::Order::Asc)
            .limit(limit);
        let deleted = audit_log::Entity::delete_many()
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.in_subquery(oldest))
            .exec(conn)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// The tenant's audit retention in days: `None` when its rows are kept forever, or when
    /// there is no such tenant (one column of its row; the purge reads it, nothing else).
    pub async fn fetch_audit_retention(
        &self,
        tenant: TenantId,
    ) -> Result<Option<i32>, DriverError> {
        let days: Option<Option<i32>> = tenants::Entity::find_by_id(tenant)
            .select_only()
            .column(tenants::Column::AuditRetentionDays)
            .into_tuple()
            .one(self.db.conn())
            .await?;
        Ok(days.flatten())
    }

    /// At most `limit` tenants whose audit rows have a retention, by id after `after`: the
    /// purge's walk over every tenant, a page at a time.
    pub async fn fetch_audit_retentions(
        &self,
        after: Option<TenantId>,
        limit: u64,
    ) -> Result<Vec<AuditRetention>, DriverError> {
        use tenants::Column as C;
        let mut query = tenants::Entity::find()
            .select_only()
            .column(C::Id)
            .column(C::AuditRetentionDays)
            .filter(C::AuditRetentionDays.is_not_null());
        if let Some(after) = after {
            query = query.filter(C::Id.gt(after));
        }
        let rows: Vec<(TenantId, i32)> = query
            .order_by_asc(C::Id)
            .limit(limit)
            .into_tuple()
            .all(self.db.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(tenant_id, days)| AuditRetention { tenant_id, days })
            .collect())
    }
}
