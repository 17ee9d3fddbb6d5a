//! Memory pins: the per-tenant key-value store with TTL, and its audit trail.
//!
//! Expiry is computed here, the same way on both backends: `expires_at = now + ttl` at every
//! write that sets a TTL (so re-saving renews the pin, as Redis `SET ... EX` does), cleared when
//! the write has none. Expired pins are invisible unless asked for, and are deleted in bounded
//! batches. Prefix search escapes `LIKE` wildcards and is case-sensitive on both backends.

use crate::like::column_starts_with;
use crate::{Db, DriverError, KeysetPage, OffsetPage, Page};
use account_models::entities::{memory_pin_audit, memory_pins};
use account_models::{MemoryPinAuditId, MemoryPinId, TenantId};
use chrono::TimeDelta;
use sea_orm::prelude::{DateTimeUtc, Json};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

/// Memory pin data access, bound to one handle.
#[derive(Clone, Copy, Debug)]
pub struct MemoryPinsDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The memory pins driver on `db`.
pub fn get_memory_pins_driver(db: Db<'_>) -> MemoryPinsDriver<'_> {
    MemoryPinsDriver { db }
}

/// A pin as stored (the seed's `MemoryPinRow`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryPinRow {
    /// Id.
    pub id: MemoryPinId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Key.
    pub key: String,
    /// A JSON object.
    pub value: Json,
    /// Who wrote it.
    pub source: String,
    /// First write.
    pub created_at: DateTimeUtc,
    /// Last write.
    pub updated_at: DateTimeUtc,
    /// Lifetime from the last write.
    pub ttl_seconds: Option<i32>,
    /// When it stops being visible.
    pub expires_at: Option<DateTimeUtc>,
}

/// An audit entry to write.
#[derive(Clone, Debug)]
pub struct NewPinAudit {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// `upsert`, `get`, `delete`.
    pub operation: String,
    /// The pin's key.
    pub key: String,
    /// Who wrote.
    pub source: Option<String>,
    /// Calling agent.
    pub agent_id: Option<String>,
    /// Whether it succeeded.
    pub success: bool,
    /// Error text.
    pub error_message: Option<String>,
    /// Digest of the previous value.
    pub old_value_hash: Option<String>,
    /// Digest of the new value.
    pub new_value_hash: Option<String>,
}

/// An audit entry as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPinAuditEntry {
    /// Id.
    pub id: MemoryPinAuditId,
    /// Operation.
    pub operation: String,
    /// Key.
    pub key: String,
    /// Digest of the new value.
    pub new_value_hash: Option<String>,
    /// When.
    pub created_at: DateTimeUtc,
}

fn row(m: memory_pins::Model) -> MemoryPinRow {
    MemoryPinRow {
        id: m.id,
        tenant_id: m.tenant_id,
        key: m.key,
        value: m.value,
        source: m.source,
        created_at: m.created_at,
        updated_at: m.updated_at,
        ttl_seconds: m.ttl_seconds,
        expires_at: m.expires_at,
    }
}

fn audit_entry(m: memory_pin_audit::Model) -> MemoryPinAuditEntry {
    MemoryPinAuditEntry {
        id: m.id,
        operation: m.operation,
        key: m.key,
        new_value_hash: m.new_value_hash,
        created_at: m.created_at,
    }
}

/// Pins visible at `now`.
fn live(now: DateTimeUtc) -> Condition {
    Condition::any()
        .add(memory_pins::Column::ExpiresAt.is_null())
        .add(memory_pins::Column::ExpiresAt.gt(now))
}

impl MemoryPinsDriver<'_> {
    fn listed(
        &self,
        tenant: TenantId,
        prefix: Option<&str>,
        include_expired: bool,
        now: DateTimeUtc,
    ) -> sea_orm::Select<memory_pins::Entity> {
        let mut query =
            memory_pins::Entity::find().filter(memory_pins::Column::TenantId.eq(tenant));
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            query = query.filter(column_starts_with(memory_pins::Column::Key, prefix));
        }
        if !include_expired {
            query = query.filter(live(now));
        }
        query
    }

    /// Inserts or replaces the tenant's pin `key` in one statement and returns it.
    pub async fn upsert_pin(
        &self,
        tenant: TenantId,
        key: &str,
        value: Json,
        source: &str,
        ttl_seconds: Option<i32>,
        now: DateTimeUtc,
    ) -> Result<MemoryPinRow, DriverError> {
        let expires_at = ttl_seconds.map(|ttl| now + TimeDelta::seconds(i64::from(ttl)));
        let model = memory_pins::ActiveModel {
            id: Set(MemoryPinId::new()),
            tenant_id: Set(tenant),
            key: Set(key.to_owned()),
            value: Set(value),
            source: Set(source.to_owned()),
            ttl_seconds: Set(ttl_seconds),
            expires_at: Set(expires_at),
            created_at: Set(now),
            updated_at: Set(now),
        };
        use memory_pins::Column as C;
        let saved = memory_pins::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([C::TenantId, C::Key])
                    .update_columns([
                        C::Value,
                        C::Source,
                        C::TtlSeconds,
                        C::ExpiresAt,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(row(saved))
    }

    /// The tenant's live pin `key`.
    pub async fn get_pin(
        &self,
        tenant: TenantId,
        key: &str,
        now: DateTimeUtc,
    ) -> Result<Option<MemoryPinRow>, DriverError> {
        let found = memory_pins::Entity::find()
            .filter(memory_pins::Column::TenantId.eq(tenant))
            .filter(memory_pins::Column::Key.eq(key))
            .filter(live(now))
            .one(self.db.conn())
            .await?;
        Ok(found.map(row))
    }

    /// The tenant's pins, newest first, optionally by key prefix and with expired ones.
    pub async fn list_pins(
        &self,
        tenant: TenantId,
        prefix: Option<&str>,
        include_expired: bool,
        now: DateTimeUtc,
        page: OffsetPage,
    ) -> Result<Page<MemoryPinRow>, DriverError> {
        let total = self
            .listed(tenant, prefix, include_expired, now)
            .count(self.db.conn())
            .await?;
        let rows = self
            .listed(tenant, prefix, include_expired, now)
            .order_by_desc(memory_pins::Column::CreatedAt)
            .order_by_desc(memory_pins::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(rows.into_iter().map(row).collect(), total, page))
    }

    /// The same list by keyset: continues after `after` (no total; constant cost per page).
    pub async fn list_pins_after(
        &self,
        tenant: TenantId,
        prefix: Option<&str>,
        include_expired: bool,
        now: DateTimeUtc,
        after: Option<(DateTimeUtc, MemoryPinId)>,
        limit: u64,
    ) -> Result<KeysetPage<MemoryPinRow, (DateTimeUtc, MemoryPinId)>, DriverError> {
        use memory_pins::Column as C;
        let mut query = self.listed(tenant, prefix, include_expired, now);
        if let Some((created_at, id)) = after {
            query = query.filter(
                Condition::any().add(C::CreatedAt.lt(created_at)).add(
                    Condition::all()
                        .add(C::CreatedAt.eq(created_at))
                        .add(C::Id.lt(id)),
                ),
            );
        }
        let rows = query
            .order_by_desc(C::CreatedAt)
            .order_by_desc(C::Id)
            .limit(limit.saturating_add(1))
            .all(self.db.conn())
            .await?;
        Ok(KeysetPage::from_overfetched(rows, limit, |r| (r.created_at, r.id)).map(row))
    }

    /// Deletes the tenant's pin `key`; whether one was deleted.
    pub async fn delete_pin(&self, tenant: TenantId, key: &str) -> Result<bool, DriverError> {
        let result = memory_pins::Entity::delete_many()
            .filter(memory_pins::Column::TenantId.eq(tenant))
            .filter(memory_pins::Column::Key.eq(key))
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes pins expired at `now` (one tenant's, or every tenant's when `None`: callers
    /// restrict that to the platform), `batch_size` rows per statement; returns how many.
    pub async fn cleanup_expired(
        &self,
        tenant: Option<TenantId>,
        now: DateTimeUtc,
        batch_size: u64,
    ) -> Result<u64, DriverError> {
        let mut deleted = 0;
        loop {
            let mut batch = Query::select();
            batch
                .column(memory_pins::Column::Id)
                .from(sea_orm::EntityName::table_ref(&memory_pins::Entity))
                .and_where(Expr::col(memory_pins::Column::ExpiresAt).lte(now))
                .limit(batch_size);
            if let Some(tenant) = tenant {
                batch.and_where(Expr::col(memory_pins::Column::TenantId).eq(tenant));
            }
            let result = memory_pins::Entity::delete_many()
                .filter(memory_pins::Column::Id.in_subquery(batch))
                .exec(self.db.conn())
                .await?;
            deleted += result.rows_affected;
            if result.rows_affected < batch_size {
                return Ok(deleted);
            }
        }
    }

    /// Appends an audit entry (errors are returned, never swallowed).
    pub async fn write_audit(
        &self,
        entry: NewPinAudit,
        now: DateTimeUtc,
    ) -> Result<MemoryPinAuditEntry, DriverError> {
        let model = memory_pin_audit::ActiveModel {
            id: Set(MemoryPinAuditId::new()),
            tenant_id: Set(entry.tenant_id),
            operation: Set(entry.operation),
            key: Set(entry.key),
            source: Set(entry.source),
            agent_id: Set(entry.agent_id),
            success: Set(entry.success),
            error_message: Set(entry.error_message),
            old_value_hash: Set(entry.old_value_hash),
            new_value_hash: Set(entry.new_value_hash),
            created_at: Set(now),
        }
        .insert(self.db.conn())
        .await?;
        Ok(audit_entry(model))
    }

    /// The tenant's pin audit trail, newest first.
    pub async fn fetch_audit(
        &self,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<MemoryPinAuditEntry>, DriverError> {
        let query = || {
            memory_pin_audit::Entity::find().filter(memory_pin_audit::Column::TenantId.eq(tenant))
        };
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_desc(memory_pin_audit::Column::CreatedAt)
            .order_by_desc(memory_pin_audit::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(audit_entry).collect(),
            total,
            page,
        ))
    }
}
