//! `webhooks`: a tenant's webhook endpoints, their delivery cursors and leases, the attempts
//! log, and events asked for again.
//!
//! Endpoints here; the attempts log and events asked for again in modules of their own
//! (re-exported: callers name them from `webhooks`). Raw SQL written once for both backends.
//!
//! An endpoint follows its tenant's outbox stream with a cursor of its own
//! (`delivered_seq`), so one failing endpoint holds back only itself. Dispatchers lease
//! endpoints ([`claim_endpoints`]: rows another dispatcher has locked are skipped on
//! PostgreSQL, a lapsed lease is taken over) and write their progress only while they hold
//! the lease ([`record_progress`]). Every statement on tenant data names the tenant.

use crate::db::{execute_raw as execute, our_table, param, params, query_raw as query};
use crate::{Db, DriverError};
use account_models::{TenantId, WebhookEndpointId};
use sea_orm::prelude::{DateTimeUtc, Uuid};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};

mod attempts;
mod replays;

pub use attempts::*;
pub use replays::*;

fn table(name: &str) -> String {
    our_table(name)
}

fn endpoints() -> String {
    table("webhook_endpoints")
}

fn attempts() -> String {
    table("webhook_attempts")
}

fn replays() -> String {
    table("webhook_replays")
}

fn backend(db: Db<'_>) -> DbBackend {
    db.conn().get_database_backend()
}

/// The endpoint columns [`EndpointRow`] reads.
const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, description, event_types, secret, \
     previous_secret, previous_secret_until, enabled, disabled_reason, delivered_seq, attempts, \
     next_attempt_at, failing_since, created_at, updated_at";

/// An endpoint as stored. Its secrets are sealed bytes; its `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointRow {
    /// Id.
    pub id: WebhookEndpointId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Where events are sent.
    pub url: String,
    /// The owner's note.
    pub description: String,
    /// The event types it takes, a JSON array of patterns (empty: every type).
    pub event_types: String,
    /// The current signing secret, sealed.
    pub secret: Vec<u8>,
    /// The secret before the last rotation, sealed, while it is still valid.
    pub previous_secret: Option<Vec<u8>>,
    /// Until when the previous secret signs too.
    pub previous_secret_until: Option<DateTimeUtc>,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// Why it was disabled: `by_request`, `failing`, `gone`.
    pub disabled_reason: Option<String>,
    /// The last event of the tenant's stream it is done with.
    pub delivered_seq: i64,
    /// Failed attempts at the event after `delivered_seq`.
    pub attempts: i32,
    /// When the next attempt is due (`None`: now).
    pub next_attempt_at: Option<DateTimeUtc>,
    /// Since when its attempts fail (`None`: the last one succeeded).
    pub failing_since: Option<DateTimeUtc>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed by its owner.
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for EndpointRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("enabled", &self.enabled)
            .field("delivered_seq", &self.delivered_seq)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

fn endpoint_row(row: &QueryResult) -> Result<EndpointRow, DriverError> {
    Ok(EndpointRow {
        id: WebhookEndpointId::from_uuid(row.try_get("", "id")?),
        tenant_id: TenantId::from_uuid(row.try_get("", "tenant_id")?),
        url: row.try_get("", "url")?,
        description: row.try_get("", "description")?,
        event_types: row.try_get("", "event_types")?,
        secret: row.try_get("", "secret")?,
        previous_secret: row.try_get("", "previous_secret")?,
        previous_secret_until: row.try_get("", "previous_secret_until")?,
        enabled: row.try_get("", "enabled")?,
        disabled_reason: row.try_get("", "disabled_reason")?,
        delivered_seq: row.try_get("", "delivered_seq")?,
        attempts: row.try_get("", "attempts")?,
        next_attempt_at: row.try_get("", "next_attempt_at")?,
        failing_since: row.try_get("", "failing_since")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// An endpoint to create.
#[derive(Clone, Copy)]
pub struct NewEndpoint<'a> {
    /// Its id.
    pub id: WebhookEndpointId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Where events are sent (validated).
    pub url: &'a str,
    /// The owner's note.
    pub description: &'a str,
    /// The event types, a JSON array (validated).
    pub event_types: &'a str,
    /// The signing secret, sealed.
    pub secret: &'a [u8],
    /// Whether it starts enabled.
    pub enabled: bool,
}

/// Creates an endpoint that starts after the tenant's last event (it receives what is
/// written from now on), unless the tenant already has `max` endpoints: then `None`.
pub async fn insert_endpoint(
    db: Db<'_>,
    new: NewEndpoint<'_>,
    max: u64,
    now: DateTimeUtc,
) -> Result<Option<EndpointRow>, DriverError> {
    let [p1, p2, p3, p4, p5, p6, p7, p8, p9] = params(backend(db));
    let sql = format!(
        "INSERT INTO {e} (id, tenant_id, url, description, event_types, secret, enabled, \
           disabled_reason, delivered_seq, attempts, created_at, updated_at) \
         SELECT {p1}, {p2}, {p3}, {p4}, {p5}, {p6}, {p7}, \
           CASE WHEN {p7} THEN NULL ELSE 'by_request' END, \
           COALESCE((SELECT last_seq FROM {s} WHERE tenant_id = {p2}), 0), 0, {p8}, {p8} \
         WHERE (SELECT COUNT(*) FROM {e} WHERE tenant_id = {p2}) < {p9} \
         RETURNING {ENDPOINT_COLUMNS}",
        e = endpoints(),
        s = table("event_streams"),
    );
    let values = vec![
        Value::from(new.id.as_uuid()),
        Value::from(new.tenant_id.as_uuid()),
        Value::from(new.url),
        Value::from(new.description),
        Value::from(new.event_types),
        Value::Bytes(Some(new.secret.to_vec())),
        Value::from(new.enabled),
        Value::from(now),
        Value::from(i64::try_from(max).unwrap_or(i64::MAX)),
    ];
    let rows = query(db, sql, values).await?;
    rows.first().map(endpoint_row).transpose()
}

/// The tenant's endpoints, oldest first.
pub async fn list_endpoints(db: Db<'_>, tenant: TenantId) -> Result<Vec<EndpointRow>, DriverError> {
    let [p1] = params(backend(db));
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM {} WHERE tenant_id = {p1} ORDER BY created_at, id",
        endpoints()
    );
    let rows = query(db, sql, vec![Value::from(tenant.as_uuid())]).await?;
    rows.iter().map(endpoint_row).collect()
}

/// One of the tenant's endpoints.
pub async fn get_endpoint(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> Result<Option<EndpointRow>, DriverError> {
    let [p1, p2] = params(backend(db));
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM {} WHERE tenant_id = {p1} AND id = {p2}",
        endpoints()
    );
    let values = vec![Value::from(tenant.as_uuid()), Value::from(id.as_uuid())];
    let rows = query(db, sql, values).await?;
    rows.first().map(endpoint_row).transpose()
}

/// What an owner changes on an endpoint; `None` keeps the field.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndpointChanges<'a> {
    /// A new URL (validated).
    pub url: Option<&'a str>,
    /// A new note.
    pub description: Option<&'a str>,
    /// New event types, a JSON array (validated).
    pub event_types: Option<&'a str>,
    /// Enable (clears the failure state: the next attempt is due at once) or disable.
    pub enabled: Option<bool>,
}

/// Applies `changes` to one of the tenant's endpoints; `None` when there is no such endpoint.
pub async fn update_endpoint(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    changes: EndpointChanges<'_>,
    now: DateTimeUtc,
) -> Result<Option<EndpointRow>, DriverError> {
    let [p1, p2, p3, p4, p5, p6, p7] = params(backend(db));
    // `enabled` NULL keeps everything; true clears the failure state; false says why.
    let sql = format!(
        "UPDATE {} SET url = COALESCE({p3}, url), description = COALESCE({p4}, description), \
           event_types = COALESCE({p5}, event_types), \
           enabled = COALESCE({p6}, enabled), \
           disabled_reason = CASE WHEN {p6} IS NULL THEN disabled_reason \
             WHEN {p6} THEN NULL ELSE 'by_request' END, \
           attempts = CASE WHEN {p6} THEN 0 ELSE attempts END, \
           next_attempt_at = CASE WHEN {p6} THEN NULL ELSE next_attempt_at END, \
           failing_since = CASE WHEN {p6} THEN NULL ELSE failing_since END, \
           updated_at = {p7} \
         WHERE tenant_id = {p1} AND id = {p2} RETURNING {ENDPOINT_COLUMNS}",
        endpoints()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(id.as_uuid()),
        Value::String(changes.url.map(str::to_owned)),
        Value::String(changes.description.map(str::to_owned)),
        Value::String(changes.event_types.map(str::to_owned)),
        Value::Bool(changes.enabled),
        Value::from(now),
    ];
    let rows = query(db, sql, values).await?;
    rows.first().map(endpoint_row).transpose()
}

/// Deletes one of the tenant's endpoints (its attempts and replays go with it); whether it
/// existed.
pub async fn delete_endpoint(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> Result<bool, DriverError> {
    let [p1, p2] = params(backend(db));
    let sql = format!(
        "DELETE FROM {} WHERE tenant_id = {p1} AND id = {p2}",
        endpoints()
    );
    let values = vec![Value::from(tenant.as_uuid()), Value::from(id.as_uuid())];
    Ok(execute(db, sql, values).await? == 1)
}

/// Makes `secret` the endpoint's secret and its current one the previous, valid until
/// `previous_until`; `None` when there is no such endpoint.
pub async fn rotate_secret(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    secret: &[u8],
    previous_until: DateTimeUtc,
    now: DateTimeUtc,
) -> Result<Option<EndpointRow>, DriverError> {
    let [p1, p2, p3, p4, p5] = params(backend(db));
    let sql = format!(
        "UPDATE {} SET previous_secret = secret, previous_secret_until = {p4}, secret = {p3}, \
           updated_at = {p5} \
         WHERE tenant_id = {p1} AND id = {p2} RETURNING {ENDPOINT_COLUMNS}",
        endpoints()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(id.as_uuid()),
        Value::Bytes(Some(secret.to_vec())),
        Value::from(previous_until),
        Value::from(now),
    ];
    let rows = query(db, sql, values).await?;
    rows.first().map(endpoint_row).transpose()
}

/// Leases up to `limit` enabled endpoints with work due at `now` (events after their cursor
/// and no attempt scheduled later, or a replay due) whose lease is free or lapsed, to
/// `owner` until `until`: one statement. On PostgreSQL rows another dispatcher is claiming
/// are skipped, not waited for.
pub async fn claim_endpoints(
    db: Db<'_>,
    owner: &str,
    now: DateTimeUtc,
    until: DateTimeUtc,
    limit: u64,
) -> Result<Vec<EndpointRow>, DriverError> {
    let backend = backend(db);
    let skip_locked = match backend {
        DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let [p1, p2, p3, p4] = params(backend);
    let sql = format!(
        "UPDATE {e} SET lease_owner = {p1}, lease_until = {p2} \
         WHERE id IN (SELECT w.id FROM {e} w \
           WHERE w.enabled AND (w.lease_until IS NULL OR w.lease_until < {p3}) \
             AND ((w.delivered_seq < (SELECT s.last_seq FROM {s} s WHERE s.tenant_id = w.tenant_id) \
                   AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= {p3})) \
               OR EXISTS (SELECT 1 FROM {r} r WHERE r.endpoint_id = w.id \
                   AND r.tenant_id = w.tenant_id AND r.next_attempt_at <= {p3})) \
           LIMIT {p4} {skip_locked}) \
         RETURNING {ENDPOINT_COLUMNS}",
        e = endpoints(),
        s = table("event_streams"),
        r = replays(),
    );
    let values = vec![
        Value::from(owner),
        Value::from(until),
        Value::from(now),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    let rows = query(db, sql, values).await?;
    rows.iter().map(endpoint_row).collect()
}

/// Where an endpoint's delivery stands after a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The last event it is done with.
    pub delivered_seq: i64,
    /// Failed attempts at the next one.
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// Since when it fails.
    pub failing_since: Option<DateTimeUtc>,
    /// The lease, renewed.
    pub lease_until: DateTimeUtc,
}

/// Writes `progress` if `owner` still holds the endpoint's lease and its cursor does not move
/// back; `false` when the lease was lost (another dispatcher took over: stop).
pub async fn record_progress(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    owner: &str,
    progress: Progress,
) -> Result<bool, DriverError> {
    let [p1, p2, p3, p4, p5, p6, p7, p8] = params(backend(db));
    let sql = format!(
        "UPDATE {} SET delivered_seq = {p4}, attempts = {p5}, next_attempt_at = {p6}, \
           failing_since = {p7}, lease_until = {p8} \
         WHERE tenant_id = {p1} AND id = {p2} AND lease_owner = {p3} AND delivered_seq <= {p4}",
        endpoints()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(id.as_uuid()),
        Value::from(owner),
        Value::from(progress.delivered_seq),
        Value::from(progress.attempts),
        Value::ChronoDateTimeUtc(progress.next_attempt_at),
        Value::ChronoDateTimeUtc(progress.failing_since),
        Value::from(progress.lease_until),
    ];
    Ok(execute(db, sql, values).await? == 1)
}

/// Gives the endpoint back, if `owner` holds it, so any dispatcher may take it at once.
pub async fn release_endpoint(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    owner: &str,
) -> Result<(), DriverError> {
    let [p1, p2, p3] = params(backend(db));
    let sql = format!(
        "UPDATE {} SET lease_owner = NULL, lease_until = NULL \
         WHERE tenant_id = {p1} AND id = {p2} AND lease_owner = {p3}",
        endpoints()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(id.as_uuid()),
        Value::from(owner),
    ];
    execute(db, sql, values).await?;
    Ok(())
}

/// Disables an enabled endpoint for `reason` (`failing`, `gone`); whether it was enabled.
pub async fn disable_endpoint(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    reason: &str,
    now: DateTimeUtc,
) -> Result<bool, DriverError> {
    let [p1, p2, p3, p4] = params(backend(db));
    let sql = format!(
        "UPDATE {} SET enabled = FALSE, disabled_reason = {p3}, next_attempt_at = NULL, \
           lease_owner = NULL, lease_until = NULL, updated_at = {p4} \
         WHERE tenant_id = {p1} AND id = {p2} AND enabled",
        endpoints()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(id.as_uuid()),
        Value::from(reason),
        Value::from(now),
    ];
    Ok(execute(db, sql, values).await? == 1)
}
