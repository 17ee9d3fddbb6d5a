//! Events asked for again: rows sent beside an endpoint's stream, each with its own attempts.

use super::*;

/// Which of the tenant's stored events to send again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaySelection {
    /// The one with this id.
    Event(Uuid),
    /// Every one that occurred in `[from, to)`, up to the endpoint's cursor (what comes after
    /// it is still on its way).
    Range {
        /// First instant included.
        from: DateTimeUtc,
        /// First instant excluded.
        to: DateTimeUtc,
    },
}

/// Queues the selected events for the endpoint, due at `now` (an event already queued is
/// not queued twice); how many were queued. At most `max` events.
pub async fn queue_replays(
    db: Db<'_>,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    selection: ReplaySelection,
    max: u64,
    now: DateTimeUtc,
) -> Result<u64, DriverError> {
    let [p1, p2, p3, p4, p5, p6] = params(backend(db));
    let (filter, first, second) = match selection {
        ReplaySelection::Event(event) => (
            // The range's second bound is bound but unused.
            format!("o.event_id = {p4} AND {p5} IS NULL"),
            Value::from(event),
            Value::ChronoDateTimeUtc(None),
        ),
        ReplaySelection::Range { from, to } => (
            format!("o.occurred_at >= {p4} AND o.occurred_at < {p5} AND o.seq <= w.delivered_seq"),
            Value::from(from),
            Value::from(to),
        ),
    };
    let sql = format!(
        "INSERT INTO {r} (tenant_id, endpoint_id, seq, attempts, next_attempt_at) \
         SELECT o.tenant_id, w.id, o.seq, 0, {p3} FROM {o} o JOIN {e} w \
           ON w.tenant_id = o.tenant_id AND w.id = {p2} \
         WHERE o.tenant_id = {p1} AND {filter} ORDER BY o.seq LIMIT {p6} \
         ON CONFLICT (endpoint_id, seq) DO NOTHING",
        r = replays(),
        o = table("event_outbox"),
        e = endpoints(),
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(endpoint.as_uuid()),
        Value::from(now),
        first,
        second,
        Value::from(i64::try_from(max).unwrap_or(i64::MAX)),
    ];
    execute(db, sql, values).await
}

/// A replay that is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueReplay {
    /// The event's position in the tenant's stream.
    pub seq: i64,
    /// Failed attempts at it so far.
    pub attempts: i32,
}

/// Up to `limit` of the endpoint's replays due at `now`, in stream order.
pub async fn due_replays(
    db: Db<'_>,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    now: DateTimeUtc,
    limit: u64,
) -> Result<Vec<DueReplay>, DriverError> {
    let [p1, p2, p3, p4] = params(backend(db));
    let sql = format!(
        "SELECT seq, attempts FROM {} WHERE tenant_id = {p1} AND endpoint_id = {p2} \
           AND next_attempt_at <= {p3} ORDER BY seq LIMIT {p4}",
        replays()
    );
    let values = vec![
        Value::from(tenant.as_uuid()),
        Value::from(endpoint.as_uuid()),
        Value::from(now),
        Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    let rows = query(db, sql, values).await?;
    rows.iter()
        .map(|row| {
            Ok(DueReplay {
                seq: row.try_get("", "seq")?,
                attempts: row.try_get("", "attempts")?,
            })
        })
        .collect()
}

/// Settles a replay: `next` schedules another attempt after `attempts` failures, `None`
/// removes it (delivered, given up, or its event is gone).
pub async fn settle_replay(
    db: Db<'_>,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    seq: i64,
    attempts_: i32,
    next: Option<DateTimeUtc>,
) -> Result<(), DriverError> {
    let [p1, p2, p3, p4, p5] = params(backend(db));
    let (sql, values) = match next {
        Some(next) => (
            format!(
                "UPDATE {} SET attempts = {p4}, next_attempt_at = {p5} \
                 WHERE tenant_id = {p1} AND endpoint_id = {p2} AND seq = {p3}",
                replays()
            ),
            vec![
                Value::from(tenant.as_uuid()),
                Value::from(endpoint.as_uuid()),
                Value::from(seq),
                Value::from(attempts_),
                Value::from(next),
            ],
        ),
        None => (
            format!(
                "DELETE FROM {} WHERE tenant_id = {p1} AND endpoint_id = {p2} AND seq = {p3}",
                replays()
            ),
            vec![
                Value::from(tenant.as_uuid()),
                Value::from(endpoint.as_uuid()),
                Value::from(seq),
            ],
        ),
    };
    execute(db, sql, values).await?;
    Ok(())
}
