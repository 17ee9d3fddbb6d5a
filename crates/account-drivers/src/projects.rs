//! `projects`: what self-service projects need beyond the tenant row: the soft delete
//! (`tenant_deletions`), a project's rename, the per-person project count, and the purge
//! that removes a deleted tenant's rows table by table in bounded batches.
//!
//! [`TENANT_OWNED_TABLES`] is the one list of the tables holding a tenant's rows, in the
//! order the purge empties them (children before the tables their foreign keys name); a test
//! compares it with every table of the schema that has a `tenant_id` column, so a new table
//! cannot be forgotten by the purge.

use crate::db::{execute_raw, our_table, params, query_raw};
use crate::{Db, DriverError};
use account_models::{TenantId, UserId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, IntoColumnRef, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};

/// Every table holding a tenant's rows by a `tenant_id` column, but `tenants` itself and
/// `tenant_deletions` (the purge removes those two last, together), in purge order: a table
/// comes before every table its foreign keys point to, so no delete cascades a large set of
/// rows in one statement (`worker_runs` before `api_keys`, whose delete would set the runs'
/// key to null; attempts and replays before their endpoints).
pub const TENANT_OWNED_TABLES: &[&str] = &[
    "webhook_attempts",
    "webhook_replays",
    "webhook_endpoints",
    "event_outbox",
    "event_streams",
    "idempotency_keys",
    "memory_pin_audit",
    "memory_pins",
    "sdk_attestations",
    "usage_records",
    "usage_hourly",
    "worker_runs",
    "tenant_workers",
    "api_keys",
    "invitations",
    "support_tickets",
    "invoices",
    "subscriptions",
    "lifecycle_events",
    "rate_limit_states",
    "tenant_limit_overrides",
    "tenant_memberships",
    "audit_log",
];

fn deletions() -> String {
    our_table("tenant_deletions")
}

/// A soft-deleted tenant, as its `tenant_deletions` row holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeletionRow {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The owner who deleted it (`None` once that user is gone).
    pub deleted_by: Option<UserId>,
    /// When.
    pub deleted_at: DateTimeUtc,
    /// From when the purge may remove it; a restore is refused from then on.
    pub purge_after: DateTimeUtc,
}

fn deletion_row(row: &QueryResult) -> Result<DeletionRow, DriverError> {
    let deleted_by: Option<sea_orm::prelude::Uuid> = row.try_get("", "deleted_by")?;
    Ok(DeletionRow {
        tenant_id: TenantId::from_uuid(row.try_get("", "tenant_id")?),
        deleted_by: deleted_by.map(UserId::from_uuid),
        deleted_at: row.try_get("", "deleted_at")?,
        purge_after: row.try_get("", "purge_after")?,
    })
}

const COLUMNS: &str = "tenant_id, deleted_by, deleted_at, purge_after";

/// `NOT EXISTS (a tenant_deletions row for <tenant column>)`: the condition that keeps a
/// deleted tenant out of a statement that reads it (its status, its keys, its members, its
/// projects list), one primary-key probe inside that statement.
pub(crate) fn not_deleted(tenant_column: impl IntoColumnRef) -> SimpleExpr {
    let table = Alias::new("tenant_deletions");
    let mut probe = Query::select();
    probe
        .expr(Expr::val(1))
        .from((Alias::new(crate::schema::current().as_str()), table.clone()))
        .and_where(Expr::col((table, Alias::new("tenant_id"))).equals(tenant_column));
    Expr::exists(probe).not()
}

/// Marks the tenant deleted until `purge_after`; `None` (nothing written) when it already is.
pub async fn insert_deletion(
    db: Db<'_>,
    tenant: TenantId,
    by: UserId,
    now: DateTimeUtc,
    purge_after: DateTimeUtc,
) -> Result<Option<DeletionRow>, DriverError> {
    let [p1, p2, p3, p4] = params(db.conn().get_database_backend());
    let sql = format!(
        "INSERT INTO {} ({COLUMNS}) VALUES ({p1}, {p2}, {p3}, {p4}) \
         ON CONFLICT (tenant_id) DO NOTHING RETURNING {COLUMNS}",
        deletions()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(by.as_uuid()),
        Value::from(now),
        Value::from(purge_after),
    ];
    let rows = query_raw(db, sql, values).await?;
    rows.first().map(deletion_row).transpose()
}

/// The tenant's deletion, if it is deleted.
pub async fn fetch_deletion(
    db: Db<'_>,
    tenant: TenantId,
) -> Result<Option<DeletionRow>, DriverError> {
    let [p1] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE tenant_id = {p1}",
        deletions()
    );
    let rows = query_raw(db, sql, vec![Value::from(tenant.as_uuid())]).await?;
    rows.first().map(deletion_row).transpose()
}

/// Takes the tenant's deletion back while its window is open (`purge_after` after `now`);
/// the deletion removed, or `None` (nothing changed) when there is none or its window closed.
pub async fn delete_deletion_before_purge(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTimeUtc,
) -> Result<Option<DeletionRow>, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "DELETE FROM {} WHERE tenant_id = {p1} AND purge_after > {p2} RETURNING {COLUMNS}",
        deletions()
    );
    let values = vec![Value::from(tenant.as_uuid()), Value::from(now)];
    let rows = query_raw(db, sql, values).await?;
    rows.first().map(deletion_row).transpose()
}

/// Up to `limit` deleted tenants whose window closed at `now`, oldest deadline first.
pub async fn deletions_due(
    db: Db<'_>,
    now: DateTimeUtc,
    limit: u64,
) -> Result<Vec<DeletionRow>, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE purge_after <= {p1} ORDER BY purge_after, tenant_id \
         LIMIT {p2}",
        deletions()
    );
    let values = vec![
        Value::from(now),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    let rows = query_raw(db, sql, values).await?;
    rows.iter().map(deletion_row).collect()
}

/// Renames the tenant (not deleted); whether it exists.
pub async fn update_tenant_name(
    db: Db<'_>,
    tenant: TenantId,
    name: &str,
    now: DateTimeUtc,
) -> Result<bool, DriverError> {
    let [p1, p2, p3] = params(db.conn().get_database_backend());
    let sql = format!(
        "UPDATE {} SET name = {p1}, updated_at = {p2} WHERE id = {p3} \
         AND NOT EXISTS (SELECT 1 FROM {} d WHERE d.tenant_id = {p3})",
        our_table("tenants"),
        deletions()
    );
    let values = vec![
        Value::from(name),
        Value::from(now),
        Value::from(tenant.as_uuid()),
    ];
    Ok(execute_raw(db, sql, values).await? == 1)
}

/// Locks the user's row for the rest of the transaction (PostgreSQL; SQLite's writer is
/// alone anyway), so a count of their projects made next is not raced by their own second
/// creation; whether the user exists.
pub async fn lock_user(db: Db<'_>, user: UserId) -> Result<bool, DriverError> {
    let [p1] = params(db.conn().get_database_backend());
    let sql = format!(
        "UPDATE {} SET updated_at = updated_at WHERE id = {p1}",
        our_table("users")
    );
    Ok(execute_raw(db, sql, vec![Value::from(user.as_uuid())]).await? == 1)
}

/// How many tenants, deleted ones included (they still hold their rows), the user owns.
pub async fn count_owned(db: Db<'_>, user: UserId) -> Result<u64, DriverError> {
    let [p1] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT COUNT(*) AS n FROM {} WHERE user_id = {p1} AND role = 'owner'",
        our_table("tenant_memberships")
    );
    let rows = query_raw(db, sql, vec![Value::from(user.as_uuid())]).await?;
    let n: i64 = match rows.first() {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or_default())
}

/// Deletes at most `limit` of the tenant's rows of `table` (one of
/// [`TENANT_OWNED_TABLES`]) in one statement; how many. Rows are picked by their physical
/// address (`ctid` on PostgreSQL, `rowid` on SQLite) through the table's `tenant_id` index,
/// so every table takes the same statement whatever its key. `audit_log` rows are deleted
/// only in a transaction that allowed it for itself (the append-only guard, PostgreSQL; one
/// statement more), as the retention purge does.
pub async fn purge_rows(
    db: Db<'_>,
    table: &'static str,
    tenant: TenantId,
    limit: u64,
) -> Result<u64, DriverError> {
    if !TENANT_OWNED_TABLES.contains(&table) {
        return Ok(0);
    }
    let backend = db.conn().get_database_backend();
    if table == "audit_log" && backend == DbBackend::Postgres {
        let allow = "SELECT set_config('account.audit_purge', txid_current()::text, true)";
        execute_raw(db, allow.to_owned(), Vec::new()).await?;
    }
    let [p1, p2] = params(backend);
    let name = our_table(table);
    let sql = match backend {
        DbBackend::Postgres => format!(
            "DELETE FROM {name} WHERE ctid = ANY(ARRAY(\
             SELECT ctid FROM {name} WHERE tenant_id = {p1} LIMIT {p2}))"
        ),
        _ => format!(
            "DELETE FROM {name} WHERE rowid IN (\
             SELECT rowid FROM {name} WHERE tenant_id = {p1} LIMIT {p2})"
        ),
    };
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    execute_raw(db, sql, values).await
}

/// Clears at most `limit` users' default tenant where it is this one, in one statement; how
/// many (the users stay: they are people, not the tenant's rows).
pub async fn clear_default_tenants(
    db: Db<'_>,
    tenant: TenantId,
    limit: u64,
) -> Result<u64, DriverError> {
    let backend = db.conn().get_database_backend();
    let [p1, p2] = params(backend);
    let users = our_table("users");
    let sql = format!(
        "UPDATE {users} SET default_tenant_id = NULL WHERE id IN (\
         SELECT id FROM {users} WHERE default_tenant_id = {p1} LIMIT {p2})"
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    execute_raw(db, sql, values).await
}

/// The purge's last step: removes the deletion (only while its window is closed at `now`)
/// and then the tenant row; whether this call did it (so of two racing purges, one reports
/// it). Every other row of the tenant must be gone already: the tenant row's delete would
/// cascade whatever is left in one statement.
pub async fn delete_tenant(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTimeUtc,
) -> Result<bool, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "DELETE FROM {} WHERE tenant_id = {p1} AND purge_after <= {p2}",
        deletions()
    );
    let values = vec![Value::from(tenant.as_uuid()), Value::from(now)];
    if execute_raw(db, sql, values).await? != 1 {
        return Ok(false);
    }
    let [p1] = params(db.conn().get_database_backend());
    let sql = format!("DELETE FROM {} WHERE id = {p1}", our_table("tenants"));
    execute_raw(db, sql, vec![Value::from(tenant.as_uuid())]).await?;
    Ok(true)
}
