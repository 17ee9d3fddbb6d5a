//! The transactional outbox and its dispatcher.
//!
//! Every event a use case publishes is written to `event_outbox` by the use case's own
//! transaction (a host's too), just before it commits: a rollback leaves no event, and a
//! crash after the commit loses none. Dispatchers ([`Spine::dispatch_events`], or
//! [`Spine::run_dispatcher`] in the background) take tenants' streams by lease, deliver their
//! events in order to the host's [`EventSink`](crate::EventSink), then move the stream's
//! cursor: at least once, in order per tenant. Several instances may dispatch together: on
//! PostgreSQL a stream another dispatcher is claiming is skipped, not waited for; on SQLite
//! writes are serialised anyway, so one dispatcher is the natural setup.
//!
//! A one-time secret an event carries (an invitation's token) is sealed (AES-256-GCM, keyed
//! from the pepper) in its own column; the JSON payload never holds it.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use account_engines::ErrorCode as _;
use account_engines::outbox::{self, NewEvent, StoredEvent};
use account_engines::sealing::{SealedBytes, Sealer};
use account_engines::types::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::prelude::Uuid;
use serde::Deserialize as _;
use std::future::Future;
use std::time::Duration;

/// How a dispatcher works.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DispatchSettings {
    /// Streams taken per claim (default 16).
    pub streams_per_claim: u64,
    /// Events read per round trip of one stream (default 500).
    pub batch: u64,
    /// How long a claimed stream stays this dispatcher's without progress (default 30 s):
    /// after it, another dispatcher takes over (and may deliver the last batch again).
    pub lease: Duration,
    /// How often [`Spine::run_dispatcher`] looks for work it was not woken for (default
    /// 250 ms: other instances' commits).
    pub poll: Duration,
    /// How long dispatched events are kept before [`Spine::run_dispatcher`] deletes them
    /// (default 7 days).
    pub retention: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            streams_per_claim: 16,
            batch: 500,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(250),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl DispatchSettings {
    /// The same settings with a lease of `lease`.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The same settings polling every `poll`.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The same settings keeping dispatched events for `retention`.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The same settings reading `batch` events per round trip.
    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch.max(1);
        self
    }
}

/// What one dispatch pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchReport {
    /// Streams (tenants) claimed.
    pub streams: u64,
    /// Events delivered to the sink.
    pub events: u64,
}

impl DispatchReport {
    fn add(&mut self, other: DispatchReport) {
        self.streams += other.streams;
        self.events += other.events;
    }
}

/// An event as the outbox stores it: its type, its data (JSON text), its sealed secret.
pub(crate) struct Encoded {
    event_id: Uuid,
    event_type: &'static str,
    payload: String,
    sealed: Option<Vec<u8>>,
}

/// The sealing key's purpose: its own key, independent of every other use of the pepper.
const SEALING_PURPOSE: &str = "account.outbox.one-time-token.v1";

impl Spine {
    fn sealer(&self) -> Result<Sealer, SpineError> {
        let pepper = self
            .pepper
            .as_deref()
            .ok_or(SpineError::NotConfigured("pepper"))?;
        Sealer::derive(pepper, SEALING_PURPOSE).map_err(|error| SpineError::UnreadableEvent {
            seq: 0,
            reason: error.to_string(),
        })
    }

    /// `event` as the outbox stores it.
    pub(crate) fn encode_event(&self, event: &DomainEvent) -> Result<Encoded, SpineError> {
        let event_id = Uuid::now_v7();
        let mut value =
            serde_json::to_value(event).map_err(|error| SpineError::UnreadableEvent {
                seq: 0,
                reason: error.to_string(),
            })?;
        let payload = value
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or_default()
            .to_string();
        // Bound to its tenant and event: a sealed value copied to another row does not open.
        let sealed = match event.one_time_token() {
            Some(token) => Some(
                self.sealer()?
                    .seal(
                        token.expose().as_bytes(),
                        &[event.tenant_id().as_uuid().as_bytes(), event_id.as_bytes()],
                    )
                    .map_err(|error| SpineError::UnreadableEvent {
                        seq: 0,
                        reason: error.to_string(),
                    })?
                    .into_vec(),
            ),
            None => None,
        };
        Ok(Encoded {
            event_id,
            event_type: event.event_type(),
            payload,
            sealed,
        })
    }

    /// The event `stored` holds, its secret unsealed. A secret that no longer opens (the
    /// pepper changed) is left out, with a warning: the event still matters, and the
    /// invitation can be resent; the stream must not stall on it.
    fn decode_event(&self, stored: &StoredEvent) -> Result<DomainEvent, SpineError> {
        let unreadable = |reason: String| SpineError::UnreadableEvent {
            seq: stored.seq,
            reason,
        };
        let data: serde_json::Value =
            serde_json::from_str(&stored.payload).map_err(|e| unreadable(e.to_string()))?;
        let tagged = serde_json::json!({"type": stored.event_type, "data": data});
        // An owned `Value` deserializes for `'static`, which the quota codes' type needs.
        let mut event = DomainEvent::deserialize(tagged).map_err(|e| unreadable(e.to_string()))?;
        if let Some(sealed) = &stored.sealed {
            let sealed = SealedBytes::from_stored(sealed.clone());
            let tenant = stored.tenant_id.as_uuid();
            let context: [&[u8]; 2] = [tenant.as_bytes(), stored.event_id.as_bytes()];
            let opened = self
                .sealer()
                .ok()
                .and_then(|sealer| sealer.open(&sealed, &context).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok());
            match opened {
                Some(token) => event.restore_token(token),
                None => tracing::warn!(
                    tenant_id = %stored.tenant_id,
                    seq = stored.seq,
                    "an event's sealed token does not open (was the pepper changed?); delivered without it"
                ),
            }
        }
        Ok(event)
    }

    /// Writes `events` to the outbox in the transaction `db` belongs to, in order, grouped by
    /// tenant (one statement per tenant on PostgreSQL).
    pub(crate) async fn append_to_outbox(
        &self,
        db: account_engines::Db<'_>,
        events: &[DomainEvent],
        now: DateTime<Utc>,
    ) -> Result<(), SpineError> {
        let mut tenants: Vec<TenantId> = Vec::new();
        for event in events {
            if !tenants.contains(&event.tenant_id()) {
                tenants.push(event.tenant_id());
            }
        }
        for tenant in tenants {
            let encoded = events
                .iter()
                .filter(|event| event.tenant_id() == tenant)
                .map(|event| self.encode_event(event))
                .collect::<Result<Vec<_>, _>>()?;
            let rows: Vec<NewEvent<'_>> = encoded
                .iter()
                .map(|e| NewEvent {
                    event_id: e.event_id,
                    event_type: e.event_type,
                    payload: &e.payload,
                    sealed: e.sealed.as_deref(),
                })
                .collect();
            outbox::append_events(db, tenant, &rows, now).await?;
        }
        Ok(())
    }

    /// One dispatch pass: claims streams with undelivered events (until none is left),
    /// delivers each stream's events in order to the event sink, moves its cursor, gives it
    /// back. Another dispatcher's streams are left alone; a stream whose lease this one lost
    /// midway is dropped (the new holder continues it).
    pub async fn dispatch_events(&self) -> Result<DispatchReport, SpineError> {
        self.dispatch_with(&DispatchSettings::default(), &dispatcher_name())
            .await
    }

    async fn dispatch_with(
        &self,
        settings: &DispatchSettings,
        owner: &str,
    ) -> Result<DispatchReport, SpineError> {
        let mut report = DispatchReport::default();
        loop {
            let now = self.clock.now();
            let until = now + chrono::Duration::from_std(settings.lease).unwrap_or_default();
            let claimed = outbox::claim_streams(
                self.pool_db(),
                owner,
                now,
                until,
                settings.streams_per_claim,
            )
            .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            for stream in claimed {
                let delivered = self.dispatch_stream(settings, owner, stream).await;
                // Given back even after a failure, so another pass (or dispatcher) retries.
                outbox::release_stream(self.pool_db(), stream.tenant_id, owner).await?;
                report.add(delivered?);
            }
        }
    }

    async fn dispatch_stream(
        &self,
        settings: &DispatchSettings,
        owner: &str,
        stream: outbox::ClaimedStream,
    ) -> Result<DispatchReport, SpineError> {
        let mut report = DispatchReport {
            streams: 1,
            events: 0,
        };
        let mut cursor = stream.dispatched_seq;
        loop {
            let events =
                outbox::read_events(self.pool_db(), stream.tenant_id, cursor, settings.batch)
                    .await?;
            let Some(last) = events.last().map(|event| event.seq) else {
                return Ok(report);
            };
            for stored in &events {
                let event = self.decode_event(stored)?;
                self.events.publish(&event);
                report.events += 1;
            }
            if !outbox::advance_stream(self.pool_db(), stream.tenant_id, owner, last).await? {
                tracing::debug!(tenant_id = %stream.tenant_id, "dispatch lease lost");
                return Ok(report);
            }
            cursor = last;
        }
    }

    /// Dispatches until `shutdown` resolves (then once more): at once when this spine (or one
    /// derived from it) commits events, every [`DispatchSettings::poll`] otherwise, and
    /// deletes dispatched events past their retention about once a minute. Errors are logged
    /// and retried on the next round. With [`Spine::with_webhook_delivery`] it delivers
    /// webhooks too, every [`DispatchSettings::poll`], beside the sink (an attempt under way
    /// at shutdown is abandoned and sent again by the next dispatcher).
    pub async fn run_dispatcher(
        &self,
        settings: DispatchSettings,
        shutdown: impl Future<Output = ()>,
    ) {
        let owner = dispatcher_name();
        // Webhooks go out beside the sink's dispatch, so a slow endpoint never delays it.
        let (stop_webhooks, webhooks_stopped) = tokio::sync::oneshot::channel::<()>();
        let webhooks = self.run_webhook_delivery(settings.poll, &owner, async {
            let _ = webhooks_stopped.await;
        });
        let sink = async {
            self.run_sink_dispatcher(&settings, &owner, shutdown).await;
            let _ = stop_webhooks.send(());
        };
        tokio::join!(sink, webhooks);
    }

    async fn run_sink_dispatcher(
        &self,
        settings: &DispatchSettings,
        owner: &str,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut last_purge: Option<std::time::Instant> = None;
        loop {
            if let Err(error) = self.dispatch_with(settings, owner).await {
                tracing::warn!(code = error.code(), "event dispatch failed");
            }
            if last_purge.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                last_purge = Some(std::time::Instant::now());
                if let Err(error) = self.purge_dispatched_events(settings.retention).await {
                    tracing::warn!(code = error.code(), "purging dispatched events failed");
                }
            }
            tokio::select! {
                () = &mut shutdown => {
                    // What the last requests committed goes out before the process ends.
                    if let Err(error) = self.dispatch_with(settings, owner).await {
                        tracing::warn!(code = error.code(), "event dispatch failed");
                    }
                    return;
                }
                () = self.dispatch_wake.notified() => {}
                () = tokio::time::sleep(settings.poll) => {}
            }
        }
    }

    /// Deletes events dispatched and older than `retention`, in batches; how many.
    pub async fn purge_dispatched_events(&self, retention: Duration) -> Result<u64, SpineError> {
        let before = self.clock.now() - chrono::Duration::from_std(retention).unwrap_or_default();
        let mut purged = 0;
        loop {
            let deleted = outbox::purge_dispatched(self.pool_db(), before, 1_000).await?;
            purged += deleted;
            if deleted < 1_000 {
                return Ok(purged);
            }
        }
    }

    /// Events committed but not yet dispatched, over all tenants (one read).
    pub async fn undispatched_events(&self) -> Result<i64, SpineError> {
        Ok(outbox::count_undispatched(self.pool_db()).await?)
    }
}

/// A name for this dispatcher's leases: unique per call, readable in the table.
pub(crate) fn dispatcher_name() -> String {
    format!("dispatcher-{}", Uuid::now_v7().simple())
}
