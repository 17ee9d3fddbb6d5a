//! `outbox`: domain events written in the transaction of the change they report, and the
//! per-tenant streams dispatchers deliver them from.
//!
//! [`append_events`] numbers a tenant's events by moving `event_streams.last_seq`, which locks
//! the tenant's stream row until the writer commits: a tenant's events therefore commit in
//! `seq` order, and a dispatcher reading past its cursor never meets a gap a slower writer
//! fills later. Dispatchers take tenants by lease ([`claim_streams`]: rows another dispatcher
//! has locked are skipped on PostgreSQL, and a lease that lapses is taken over), read their
//! events in order ([`read_events`]) and move the cursor only while they still hold the lease
//! ([`advance_stream`]). A dispatcher that dies mid-batch loses its lease and the next one
//! starts again after the last event the cursor passed: at least once, in order.

use crate::db::{our_table, param};
use crate::{Db, DriverError};
use account_models::TenantId;
use sea_orm::prelude::{DateTimeUtc, Uuid};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

/// One event to append.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    /// The event's id (the webhook message id is derived from it).
    pub event_id: Uuid,
    /// Its type, e.g. `api_key.revoked`.
    pub event_type: &'a str,
    /// Its data, JSON text.
    pub payload: &'a str,
    /// A one-time secret it carries, already sealed by the caller; never clear text.
    pub sealed: Option<&'a [u8]>,
}

/// An event as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Its position in the tenant's stream, from 1.
    pub seq: i64,
    /// Its id.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// Its data, JSON text, as written.
    pub payload: String,
    /// The sealed secret it carries, if any.
    pub sealed: Option<Vec<u8>>,
    /// When the writing transaction ran.
    pub occurred_at: DateTimeUtc,
}

impl std::fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEvent")
            .field("tenant_id", &self.tenant_id)
            .field("seq", &self.seq)
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("sealed", &self.sealed.as_ref().map(|_| "<sealed>"))
            .finish_non_exhaustive()
    }
}

/// A tenant's stream a dispatcher leased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimedStream {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The last event dispatched (0: none).
    pub dispatched_seq: i64,
    /// The last event written.
    pub last_seq: i64,
}

fn streams() -> String {
    format!("\"{}\".event_streams", crate::schema::current())
}

fn outbox() -> String {
    format!("\"{}\".event_outbox", crate::schema::current())
}

/// Appends `events` to `tenant`'s stream, in order, in the caller's transaction: one
/// statement on PostgreSQL, two on SQLite (no data-modifying CTEs there). Locks the tenant's
/// stream row until the transaction ends.
pub async fn append_events(
    db: Db<'_>,
    tenant: TenantId,
    events: &[NewEvent<'_>],
    now: DateTimeUtc,
) -> Result<(), DriverError> {
    if events.is_empty() {
        return Ok(());
    }
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let bump = format!(
        "INSERT INTO {s} (tenant_id, last_seq) VALUES ({p1}, {p2}) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_streams.last_seq + {p2} \
         RETURNING last_seq",
        s = streams(),
        p1 = param(backend, 1),
        p2 = param(backend, 2),
    );
    let mut values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(count),
        Value::from(now),
    ];
    if backend == DbBackend::Postgres {
        let rows: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let n = values.len();
                values.extend(event_values(event));
                format!(
                    "({}, ${}::uuid, ${}::text, ${}::text, ${}::bytea)",
                    i + 1,
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4
                )
            })
            .collect();
        let sql = format!(
            "WITH s AS ({bump}) \
             INSERT INTO {o} (tenant_id, seq, event_id, event_type, payload, sealed, occurred_at) \
             SELECT $1, s.last_seq - $2 + v.ord, v.event_id, v.event_type, v.payload, v.sealed, $3 \
             FROM s, (VALUES {rows}) AS v(ord, event_id, event_type, payload, sealed)",
            o = outbox(),
            rows = rows.join(", "),
        );
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        return Ok(());
    }
    let statement =
        Statement::from_sql_and_values(backend, bump, [values[0].clone(), values[1].clone()]);
    conn.execute_raw(statement).await?;
    // The numbers come from the stream row this transaction now holds, not from the caller:
    // the statement stays right however often it is run (SQLite names `VALUES` columns
    // `column1`, ...).
    let mut values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(count),
        Value::from(now),
    ];
    let rows: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let n = values.len();
            values.extend(event_values(event));
            format!(
                "({}, ?{}, ?{}, ?{}, ?{})",
                i + 1,
                n + 1,
                n + 2,
                n + 3,
                n + 4
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO {o} (tenant_id, seq, event_id, event_type, payload, sealed, occurred_at) \
         SELECT ?1, s.last_seq - ?2 + v.column1, v.column2, v.column3, v.column4, v.column5, ?3 \
         FROM {s} s, (VALUES {rows}) AS v WHERE s.tenant_id = ?1",
        o = outbox(),
        s = streams(),
        rows = rows.join(", "),
    );
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

fn event_values(event: &NewEvent<'_>) -> [Value; 4] {
    [
        Value::from(event.event_id),
        Value::from(event.event_type),
        Value::from(event.payload),
        Value::Bytes(event.sealed.map(<[u8]>::to_vec)),
    ]
}

/// Leases up to `limit` streams with undispatched events whose lease is free or lapsed (at
/// `now`) to `owner` until `until`: one statement. On PostgreSQL rows another dispatcher is
/// leasing right now are skipped, not waited for.
pub async fn claim_streams(
    db: Db<'_>,
    owner: &str,
    now: DateTimeUtc,
    until: DateTimeUtc,
    limit: u64,
) -> Result<Vec<ClaimedStream>, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let skip_locked = match backend {
        DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let [p1, p2, p3, p4] = [1, 2, 3, 4].map(|n| param(backend, n));
    // The predicate repeats the partial index's, so both planners use it.
    let sql = format!(
        "UPDATE {s} SET lease_owner = {p1}, lease_until = {p2} \
         WHERE tenant_id IN (SELECT tenant_id FROM {s} \
           WHERE last_seq > dispatched_seq AND (lease_until IS NULL OR lease_until < {p3}) \
           LIMIT {p4} {skip_locked}) \
         RETURNING tenant_id, dispatched_seq, last_seq",
        s = streams(),
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            Value::from(owner),
            Value::from(until),
            Value::from(now),
            Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    );
    let rows = conn.query_all_raw(statement).await?;
    rows.iter()
        .map(|row| {
            Ok(ClaimedStream {
                tenant_id: TenantId::from_uuid(row.try_get("", "tenant_id")?),
                dispatched_seq: row.try_get("", "dispatched_seq")?,
                last_seq: row.try_get("", "last_seq")?,
            })
        })
        .collect()
}

/// Up to `limit` of `tenant`'s events after `after_seq`, in order.
pub async fn read_events(
    db: Db<'_>,
    tenant: TenantId,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<StoredEvent>, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let [p1, p2, p3] = [1, 2, 3].map(|n| param(backend, n));
    let sql = format!(
        "SELECT tenant_id, seq, event_id, event_type, payload, sealed, occurred_at FROM {} \
         WHERE tenant_id = {p1} AND seq > {p2} ORDER BY seq LIMIT {p3}",
        outbox()
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            Value::from(tenant.as_uuid()),
            Value::from(after_seq),
            Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    );
    let rows = conn.query_all_raw(statement).await?;
    rows.iter().map(stored_event).collect()
}

/// The position of `tenant`'s event `event_id` in its stream, if it is still kept.
pub async fn event_seq(
    db: Db<'_>,
    tenant: TenantId,
    event_id: Uuid,
) -> Result<Option<i64>, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT seq FROM {} WHERE tenant_id = {} AND event_id = {}",
        outbox(),
        param(backend, 1),
        param(backend, 2),
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(tenant.as_uuid()), Value::from(event_id)],
    );
    let row = conn.query_one_raw(statement).await?;
    Ok(row.map(|row| row.try_get("", "seq")).transpose()?)
}

/// `tenant`'s events at the positions `seqs`, in order (those still kept).
pub async fn read_events_at(
    db: Db<'_>,
    tenant: TenantId,
    seqs: &[i64],
) -> Result<Vec<StoredEvent>, DriverError> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let mut values = vec![Value::from(tenant.as_uuid())];
    let list: Vec<String> = seqs
        .iter()
        .map(|seq| {
            values.push(Value::from(*seq));
            param(backend, values.len())
        })
        .collect();
    let sql = format!(
        "SELECT tenant_id, seq, event_id, event_type, payload, sealed, occurred_at FROM {} \
         WHERE tenant_id = {} AND seq IN ({}) ORDER BY seq",
        outbox(),
        param(backend, 1),
        list.join(", "),
    );
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter().map(stored_event).collect()
}

fn stored_event(row: &QueryResult) -> Result<StoredEvent, DriverError> {
    Ok(StoredEvent {
        tenant_id: TenantId::from_uuid(row.try_get("", "tenant_id")?),
        seq: row.try_get("", "seq")?,
        event_id: row.try_get("", "event_id")?,
        event_type: row.try_get("", "event_type")?,
        payload: row.try_get("", "payload")?,
        sealed: row.try_get("", "sealed")?,
        occurred_at: row.try_get("", "occurred_at")?,
    })
}

/// Moves `tenant`'s dispatch cursor to `seq` if `owner` still holds the stream's lease;
/// `false` when it lost it (another dispatcher took over: stop).
pub async fn advance_stream(
    db: Db<'_>,
    tenant: TenantId,
    owner: &str,
    seq: i64,
) -> Result<bool, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let [p1, p2, p3] = [1, 2, 3].map(|n| param(backend, n));
    let sql = format!(
        "UPDATE {} SET dispatched_seq = {p3} \
         WHERE tenant_id = {p1} AND lease_owner = {p2} AND dispatched_seq <= {p3}",
        streams()
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            Value::from(tenant.as_uuid()),
            Value::from(owner),
            Value::from(seq),
        ],
    );
    Ok(conn.execute_raw(statement).await?.rows_affected() == 1)
}

/// Gives `tenant`'s stream back, if `owner` holds it, so any dispatcher may take it at once.
pub async fn release_stream(db: Db<'_>, tenant: TenantId, owner: &str) -> Result<(), DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let sql = format!(
        "UPDATE {} SET lease_owner = NULL, lease_until = NULL \
         WHERE tenant_id = {} AND lease_owner = {}",
        streams(),
        param(backend, 1),
        param(backend, 2),
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(tenant.as_uuid()), Value::from(owner)],
    );
    conn.execute_raw(statement).await?;
    Ok(())
}

/// Deletes up to `limit` dispatched events that occurred before `before`; how many it did.
///
/// An event an enabled webhook endpoint has not yet got past, or one queued for a replay, is
/// kept: a failing endpoint holds its tenant's events until it is disabled or catches up.
pub async fn purge_dispatched(
    db: Db<'_>,
    before: DateTimeUtc,
    limit: u64,
) -> Result<u64, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let sql = format!(
        "DELETE FROM {o} WHERE (tenant_id, seq) IN ( \
           SELECT e.tenant_id, e.seq FROM {o} e JOIN {s} s ON s.tenant_id = e.tenant_id \
           WHERE e.occurred_at < {p1} AND e.seq <= s.dispatched_seq \
             AND NOT EXISTS (SELECT 1 FROM {w} w WHERE w.tenant_id = e.tenant_id \
               AND w.enabled AND w.delivered_seq < e.seq) \
             AND NOT EXISTS (SELECT 1 FROM {r} r WHERE r.tenant_id = e.tenant_id \
               AND r.seq = e.seq) \
           LIMIT {p2})",
        o = outbox(),
        s = streams(),
        w = our_table("webhook_endpoints"),
        r = our_table("webhook_replays"),
        p1 = param(backend, 1),
        p2 = param(backend, 2),
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            Value::from(before),
            Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    );
    Ok(conn.execute_raw(statement).await?.rows_affected())
}

/// Events written but not yet dispatched, over all tenants.
pub async fn count_undispatched(db: Db<'_>) -> Result<i64, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(last_seq - dispatched_seq), 0) AS BIGINT) AS pending FROM {} \
         WHERE last_seq > dispatched_seq",
        streams()
    );
    let row = conn
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "pending")?,
        None => 0,
    })
}
