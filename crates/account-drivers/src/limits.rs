//! `limits`: per-tenant overrides of plan limits, set by operators, optionally until a time.
//!
//! The limits in force stay on the tenant row (`tenants.max_*`), where the writes that check
//! them already read them; the engines rewrite those columns from the plan and the live
//! overrides whenever either changes ([`crate::TenantDriver::update_tenant_quotas`]).

use crate::db::{execute_raw, our_table, params, query_raw};
use crate::{Db, DriverError};
use account_models::TenantId;
use sea_orm::prelude::DateTimeUtc;
use sea_orm::{ConnectionTrait, QueryResult, Value};

fn overrides() -> String {
    our_table("tenant_limit_overrides")
}

/// An override as stored (and as written: engines build it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideRow {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The limit: a `tenants` column name (`max_concurrent_runs`, ...).
    pub limit_name: String,
    /// Its value for this tenant.
    pub value: i64,
    /// Until when (`None`: until removed).
    pub expires_at: Option<DateTimeUtc>,
    /// Why, as the operator said.
    pub reason: String,
    /// The operator who set it.
    pub set_by: String,
    /// When it was set.
    pub created_at: DateTimeUtc,
}

fn override_row(row: &QueryResult) -> Result<OverrideRow, DriverError> {
    Ok(OverrideRow {
        tenant_id: TenantId::from_uuid(row.try_get("", "tenant_id")?),
        limit_name: row.try_get("", "limit_name")?,
        value: row.try_get("", "value")?,
        expires_at: row.try_get("", "expires_at")?,
        reason: row.try_get("", "reason")?,
        set_by: row.try_get("", "set_by")?,
        created_at: row.try_get("", "created_at")?,
    })
}

const COLUMNS: &str = "tenant_id, limit_name, value, expires_at, reason, set_by, created_at";

/// Sets (or replaces) `row`'s override.
pub async fn upsert_override(db: Db<'_>, row: &OverrideRow) -> Result<(), DriverError> {
    let [p1, p2, p3, p4, p5, p6, p7] = params(db.conn().get_database_backend());
    let sql = format!(
        "INSERT INTO {} ({COLUMNS}) VALUES ({p1}, {p2}, {p3}, {p4}, {p5}, {p6}, {p7}) \
         ON CONFLICT (tenant_id, limit_name) DO UPDATE SET value = excluded.value, \
           expires_at = excluded.expires_at, reason = excluded.reason, \
           set_by = excluded.set_by, created_at = excluded.created_at",
        overrides()
    );
    let values = vec![
        Value::from(row.tenant_id.as_uuid()),
        Value::from(row.limit_name.as_str()),
        Value::from(row.value),
        Value::ChronoDateTimeUtc(row.expires_at),
        Value::from(row.reason.as_str()),
        Value::from(row.set_by.as_str()),
        Value::from(row.created_at),
    ];
    execute_raw(db, sql, values).await?;
    Ok(())
}

/// Removes the tenant's override of `limit`; whether there was one.
pub async fn delete_override(
    db: Db<'_>,
    tenant: TenantId,
    limit: &str,
) -> Result<bool, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "DELETE FROM {} WHERE tenant_id = {p1} AND limit_name = {p2}",
        overrides()
    );
    let values = vec![Value::from(tenant.as_uuid()), Value::from(limit)];
    Ok(execute_raw(db, sql, values).await? == 1)
}

/// The tenant's overrides, by limit name (expired ones too, until the job removes them).
pub async fn list_overrides(db: Db<'_>, tenant: TenantId) -> Result<Vec<OverrideRow>, DriverError> {
    let [p1] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE tenant_id = {p1} ORDER BY limit_name",
        overrides()
    );
    let rows = query_raw(db, sql, vec![Value::from(tenant.as_uuid())]).await?;
    rows.iter().map(override_row).collect()
}

/// Deletes the tenant's overrides that expired at `now`; the ones it deleted.
pub async fn delete_expired(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTimeUtc,
) -> Result<Vec<OverrideRow>, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "DELETE FROM {} WHERE tenant_id = {p1} AND expires_at <= {p2} RETURNING {COLUMNS}",
        overrides()
    );
    let rows = query_raw(
        db,
        sql,
        vec![Value::from(tenant.as_uuid()), Value::from(now)],
    )
    .await?;
    rows.iter().map(override_row).collect()
}

/// Up to `limit` tenants with an override that expired at `now`.
pub async fn tenants_with_expired(
    db: Db<'_>,
    now: DateTimeUtc,
    limit: u64,
) -> Result<Vec<TenantId>, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT DISTINCT tenant_id FROM {} WHERE expires_at <= {p1} LIMIT {p2}",
        overrides()
    );
    let values = vec![
        Value::from(now),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    let rows = query_raw(db, sql, values).await?;
    rows.iter()
        .map(|row| Ok(TenantId::from_uuid(row.try_get("", "tenant_id")?)))
        .collect()
}
