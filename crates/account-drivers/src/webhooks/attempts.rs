//! The attempts log: one row per delivery attempt of an event to an endpoint.

use super::*;

/// One attempt to log.
#[derive(Clone, Debug)]
pub struct NewAttempt {
    /// Its id (UUID v7: the log's order).
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// The event sent.
    pub event_id: Uuid,
    /// Its position in the tenant's stream.
    pub seq: i64,
    /// Its type.
    pub event_type: String,
    /// 1 for the first attempt at this event (or at its replay).
    pub attempt: i32,
    /// Whether it was a replay.
    pub replay: bool,
    /// The status answered.
    pub status: Option<i32>,
    /// Why there was no answer.
    pub failure: Option<&'static str>,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: i32,
    /// The start of the answer's body.
    pub snippet: String,
    /// When.
    pub attempted_at: DateTimeUtc,
}

/// Logs `attempts`: one statement.
pub async fn insert_attempts(db: Db<'_>, attempts_: &[NewAttempt]) -> Result<(), DriverError> {
    if attempts_.is_empty() {
        return Ok(());
    }
    let backend = backend(db);
    let mut values = Vec::with_capacity(attempts_.len() * 13);
    let mut rows = Vec::with_capacity(attempts_.len());
    for attempt in attempts_ {
        let first = values.len() + 1;
        let placeholders: Vec<String> = (first..first + 13).map(|n| param(backend, n)).collect();
        rows.push(format!("({})", placeholders.join(", ")));
        values.extend([
            Value::from(attempt.id),
            Value::from(attempt.tenant_id.as_uuid()),
            Value::from(attempt.endpoint_id.as_uuid()),
            Value::from(attempt.event_id),
            Value::from(attempt.seq),
            Value::from(attempt.event_type.as_str()),
            Value::from(attempt.attempt),
            Value::from(attempt.replay),
            Value::Int(attempt.status),
            Value::String(attempt.failure.map(str::to_owned)),
            Value::from(attempt.latency_ms),
            Value::from(attempt.snippet.as_str()),
            Value::from(attempt.attempted_at),
        ]);
    }
    let sql = format!(
        "INSERT INTO {} (id, tenant_id, endpoint_id, event_id, seq, event_type, attempt, replay, \
           status, failure, latency_ms, snippet, attempted_at) VALUES {}",
        attempts(),
        rows.join(", ")
    );
    execute(db, sql, values).await?;
    Ok(())
}

/// An attempt as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptRow {
    /// Id.
    pub id: Uuid,
    /// Endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// The event sent.
    pub event_id: Uuid,
    /// Its position in the tenant's stream.
    pub seq: i64,
    /// Its type.
    pub event_type: String,
    /// 1 for the first attempt at this event (or at its replay).
    pub attempt: i32,
    /// Whether it was a replay.
    pub replay: bool,
    /// The status answered.
    pub status: Option<i32>,
    /// Why there was no answer.
    pub failure: Option<String>,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: i32,
    /// The start of the answer's body.
    pub snippet: String,
    /// When.
    pub attempted_at: DateTimeUtc,
}

/// Up to `limit` of the endpoint's attempts, newest first, older than `before` when given.
pub async fn list_attempts(
    db: Db<'_>,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<AttemptRow>, DriverError> {
    let [p1, p2, p3, p4] = params(backend(db));
    let sql = format!(
        "SELECT id, endpoint_id, event_id, seq, event_type, attempt, replay, status, failure, \
           latency_ms, snippet, attempted_at FROM {} \
         WHERE tenant_id = {p1} AND endpoint_id = {p2} AND ({p3} IS NULL OR id < {p3}) \
         ORDER BY id DESC LIMIT {p4}",
        attempts()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(endpoint.as_uuid()),
        Value::Uuid(before),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    let rows = query(db, sql, values).await?;
    rows.iter()
        .map(|row| {
            Ok(AttemptRow {
                id: row.try_get("", "id")?,
                endpoint_id: WebhookEndpointId::from_uuid(row.try_get("", "endpoint_id")?),
                event_id: row.try_get("", "event_id")?,
                seq: row.try_get("", "seq")?,
                event_type: row.try_get("", "event_type")?,
                attempt: row.try_get("", "attempt")?,
                replay: row.try_get("", "replay")?,
                status: row.try_get("", "status")?,
                failure: row.try_get("", "failure")?,
                latency_ms: row.try_get("", "latency_ms")?,
                snippet: row.try_get("", "snippet")?,
                attempted_at: row.try_get("", "attempted_at")?,
            })
        })
        .collect()
}

/// Deletes up to `limit` attempts logged before `before`; how many.
pub async fn purge_attempts(
    db: Db<'_>,
    before: DateTimeUtc,
    limit: u64,
) -> Result<u64, DriverError> {
    let [p1, p2] = params(backend(db));
    let sql = format!(
        "DELETE FROM {a} WHERE id IN (SELECT id FROM {a} WHERE attempted_at < {p1} LIMIT {p2})",
        a = attempts()
    );
    let values = vec![
        Value::from(before),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    execute(db, sql, values).await
}
