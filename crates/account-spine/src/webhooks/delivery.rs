//! Webhook delivery: each enabled endpoint follows its tenant's outbox stream with a cursor
//! of its own, in order, at least once.
//!
//! Over 600 lines: settings, the delivery loop, replays, the disabling job and the body format
//! belong to one pass; its unit tests sit at the end.
//!
//! A dispatcher leases endpoints with work due (several instances may deliver together: on
//! PostgreSQL an endpoint another one is claiming is skipped), sends the events after the
//! endpoint's cursor one by one (skipping types it does not take), and after each batch
//! logs the attempts and moves the cursor in two statements, only while it holds the lease.
//! A failed attempt holds the endpoint at that event until the [`RetrySchedule`] says to try
//! again; when the schedule runs out, or the endpoint answers 410 Gone, it is disabled and a
//! `webhook_endpoint.disabled` event tells the tenant's other endpoints and the host. A
//! dispatcher killed mid-batch leaves its lease to lapse; the next one starts after the
//! cursor, so a receiver may see the end of a batch twice, with the same `webhook-id`.
//!
//! Replays are sent beside the stream, each with its own attempts.

use super::schedule::RetrySchedule;
use super::sender::{Attempt, Outcome, SenderBuildError, SenderSettings, Verdict, WebhookSender};
use super::sender::{TransportFailure, WebhookMessage};
use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::ErrorCode as _;
use account_engines::outbox::{self, StoredEvent};
use account_engines::types::{TenantId, WebhookEndpointId};
use account_engines::webhooks::{self, EndpointRow, EventTypes, NewAttempt, Progress};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use sea_orm::prelude::Uuid;
use std::time::Duration;

/// How webhooks are delivered ([`Spine::with_webhook_delivery`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WebhookSettings {
    /// The HTTP side: timeouts, and whether private destinations are allowed (not by default).
    pub sender: SenderSettings,
    /// When failed attempts are tried again; the endpoint is disabled when it runs out.
    pub schedule: RetrySchedule,
    /// Endpoints taken per claim (default 16).
    pub endpoints_per_claim: u64,
    /// Endpoints delivered to at once by one dispatcher (default 8).
    pub concurrency: usize,
    /// Events sent per batch, between two writes of the cursor (default 100): at most this
    /// many are sent again after a crash.
    pub batch: u64,
    /// How long a claimed endpoint stays this dispatcher's without progress (default 60 s;
    /// renewed with each batch, so longer than a batch to a slow endpoint may take).
    pub lease: Duration,
    /// How long the attempts log is kept (default 30 days).
    pub attempts_retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            sender: SenderSettings::default(),
            schedule: RetrySchedule::default(),
            endpoints_per_claim: 16,
            concurrency: 8,
            batch: 100,
            lease: Duration::from_secs(60),
            attempts_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl WebhookSettings {
    /// The same settings sending with `sender`.
    pub fn with_sender(mut self, sender: SenderSettings) -> Self {
        self.sender = sender;
        self
    }

    /// The same settings retrying by `schedule`.
    pub fn with_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The same settings with a lease of `lease`.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The same settings sending `batch` events between two writes of the cursor.
    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch.max(1);
        self
    }
}

/// What a spine delivers webhooks with.
#[derive(Debug)]
pub(crate) struct WebhookDelivery {
    sender: WebhookSender,
    settings: WebhookSettings,
}

/// What one delivery pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// Endpoints claimed.
    pub endpoints: u64,
    /// Attempts made (each a request, or a refusal to send one).
    pub attempts: u64,
    /// Attempts answered with a 2xx.
    pub delivered: u64,
    /// Endpoints disabled.
    pub disabled: u64,
}

impl DeliveryReport {
    fn add(&mut self, other: DeliveryReport) {
        self.endpoints += other.endpoints;
        self.attempts += other.attempts;
        self.delivered += other.delivered;
        self.disabled += other.disabled;
    }
}

/// The body sent for `event`: Standard Webhooks' `type`, `timestamp` and `data`, the data
/// byte for byte as stored (a one-time secret an event carries is never sent).
fn body(event: &StoredEvent) -> Vec<u8> {
    let timestamp = event
        .occurred_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    format!(
        "{{\"type\":{},\"timestamp\":\"{timestamp}\",\"data\":{}}}",
        serde_json::Value::from(event.event_type.as_str()),
        event.payload
    )
    .into_bytes()
}

/// The `webhook-id` of `event`: the same for every attempt and endpoint.
pub fn message_id(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

fn failure_name(outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Answered(_) => None,
        Outcome::NotAnswered(failure) => Some(match failure {
            TransportFailure::InvalidUrl => "invalid_url",
            TransportFailure::InvalidRequest => "invalid_request",
            TransportFailure::Unresolved => "unresolved",
            TransportFailure::RefusedDestination => "refused_destination",
            TransportFailure::Connect => "connect",
            TransportFailure::Timeout => "timeout",
            _ => "other",
        }),
    }
}

/// What the endpoint asked for after an attempt.
enum Next {
    /// Go on with the next event.
    Continue,
    /// Try this event again at this time.
    RetryAt(DateTime<Utc>),
    /// Disable the endpoint (`true`: it is gone).
    Disable(bool),
}

/// A platform job: delivery disables an endpoint whose retry schedule ran out, or that
/// answered 410, and tells the tenant (and the host) with a `webhook_endpoint.disabled`
/// event, in one transaction. No principal may call it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct DisableWebhookEndpoint {
    /// The endpoint's tenant.
    pub tenant_id: TenantId,
    /// The endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// `true`: it answered 410 Gone; `false`: its schedule ran out.
    pub gone: bool,
}

impl DisableWebhookEndpoint {
    fn reason(&self) -> &'static str {
        if self.gone { "gone" } else { "failing" }
    }
}

impl Sealed for DisableWebhookEndpoint {}
impl UseCase for DisableWebhookEndpoint {
    type Output = bool;
    const OPERATION: Operation = Operation::WebhooksDisable;

    async fn run(&self, cx: &mut Context<'_>) -> Result<bool, SpineError> {
        let (tenant, id, reason) = (self.tenant_id, self.endpoint_id, self.reason());
        let disabled = webhooks::disable_endpoint(cx.db, tenant, id, reason, cx.now).await?;
        if disabled {
            let change = Change::of("webhook_endpoint", id)
                .in_tenant(tenant)
                .reason(reason);
            cx.audit(change).await?;
            cx.publish(DomainEvent::WebhookEndpointDisabled {
                tenant_id: tenant,
                endpoint_id: id,
                reason: reason.to_owned(),
            });
        }
        Ok(disabled)
    }
}

impl Spine {
    /// The same spine delivering webhooks with `settings` when it dispatches
    /// ([`Spine::deliver_webhooks`], and [`Spine::run_dispatcher`] in the background).
    pub fn with_webhook_delivery(
        mut self,
        settings: WebhookSettings,
    ) -> Result<Self, SenderBuildError> {
        let sender = WebhookSender::new(&settings.sender)?;
        self.webhooks = Some(std::sync::Arc::new(WebhookDelivery { sender, settings }));
        Ok(self)
    }

    /// Whether this spine delivers webhooks.
    pub fn delivers_webhooks(&self) -> bool {
        self.webhooks.is_some()
    }

    /// One delivery pass: claims endpoints with work due until none is left, and delivers
    /// to each what is due (nothing without [`Spine::with_webhook_delivery`]).
    pub async fn deliver_webhooks(&self) -> Result<DeliveryReport, SpineError> {
        self.deliver_webhooks_as(&crate::outbox::dispatcher_name())
            .await
    }

    pub(crate) async fn deliver_webhooks_as(
        &self,
        owner: &str,
    ) -> Result<DeliveryReport, SpineError> {
        let Some(delivery) = self.webhooks.clone() else {
            return Ok(DeliveryReport::default());
        };
        let settings = &delivery.settings;
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let until = now + chrono::Duration::from_std(settings.lease).unwrap_or_default();
            let claimed = webhooks::claim_endpoints(
                self.pool_db(),
                owner,
                now,
                until,
                settings.endpoints_per_claim,
            )
            .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let results: Vec<Result<DeliveryReport, SpineError>> =
                futures_util::stream::iter(claimed)
                    .map(|endpoint| self.serve_endpoint(&delivery, owner, endpoint))
                    .buffer_unordered(settings.concurrency.max(1))
                    .collect()
                    .await;
            for result in results {
                report.add(result?);
            }
        }
    }

    /// Delivers what is due to one claimed endpoint, then gives it back.
    async fn serve_endpoint(
        &self,
        delivery: &WebhookDelivery,
        owner: &str,
        endpoint: EndpointRow,
    ) -> Result<DeliveryReport, SpineError> {
        let (tenant, id) = (endpoint.tenant_id, endpoint.id);
        let served: Result<DeliveryReport, SpineError> = async {
            let mut report = self.deliver_replays(delivery, &endpoint).await?;
            if report.disabled > 0 {
                return Ok(report);
            }
            report.add(self.deliver_stream(delivery, owner, endpoint).await?);
            Ok(report)
        }
        .await;
        // Given back even after a failure, so another pass (or dispatcher) retries.
        webhooks::release_endpoint(self.pool_db(), tenant, id, owner).await?;
        let mut report = served?;
        report.endpoints += 1;
        Ok(report)
    }

    /// Sends the endpoint's stream after its cursor, batch by batch, until it is drained, an
    /// attempt failed, or the lease was lost.
    async fn deliver_stream(
        &self,
        delivery: &WebhookDelivery,
        owner: &str,
        endpoint: EndpointRow,
    ) -> Result<DeliveryReport, SpineError> {
        let mut report = DeliveryReport::default();
        let now = self.clock.now();
        if endpoint.next_attempt_at.is_some_and(|at| at > now) {
            return Ok(report);
        }
        let types = EventTypes::from_json(&endpoint.event_types);
        let secrets = self.endpoint_secrets(&endpoint, now);
        let (tenant, id) = (endpoint.tenant_id, endpoint.id);
        let mut progress = Progress {
            delivered_seq: endpoint.delivered_seq,
            attempts: endpoint.attempts,
            next_attempt_at: None,
            failing_since: endpoint.failing_since,
            lease_until: now,
        };
        loop {
            let events = outbox::read_events(
                self.pool_db(),
                tenant,
                progress.delivered_seq,
                delivery.settings.batch,
            )
            .await?;
            if events.is_empty() {
                return Ok(report);
            }
            let mut log = Vec::new();
            let mut next = Next::Continue;
            for event in &events {
                if !types.matches(&event.event_type) {
                    progress.delivered_seq = event.seq;
                    continue;
                }
                let attempt_number = progress.attempts + 1;
                let attempt = self
                    .send_event(delivery, &endpoint.url, &secrets, event)
                    .await;
                let at = self.clock.now();
                log.push(attempt_row(
                    &endpoint,
                    event,
                    attempt_number,
                    false,
                    &attempt,
                    at,
                ));
                report.attempts += 1;
                next = self.next_step(delivery, &attempt, attempt_number, at);
                match next {
                    Next::Continue => {
                        report.delivered += 1;
                        progress.delivered_seq = event.seq;
                        progress.attempts = 0;
                        progress.failing_since = None;
                    }
                    Next::RetryAt(when) => {
                        progress.attempts = attempt_number;
                        progress.next_attempt_at = Some(when);
                        progress.failing_since.get_or_insert(at);
                        break;
                    }
                    Next::Disable(_) => {
                        progress.attempts = attempt_number;
                        progress.failing_since.get_or_insert(at);
                        break;
                    }
                }
            }
            webhooks::insert_attempts(self.pool_db(), &log).await?;
            let now = self.clock.now();
            progress.lease_until =
                now + chrono::Duration::from_std(delivery.settings.lease).unwrap_or_default();
            if !webhooks::record_progress(self.pool_db(), tenant, id, owner, progress).await? {
                tracing::debug!(tenant_id = %tenant, endpoint_id = %id, "webhook lease lost");
                return Ok(report);
            }
            match next {
                Next::Continue => {}
                Next::RetryAt(_) => return Ok(report),
                Next::Disable(gone) => {
                    report.disabled += u64::from(self.disable_endpoint(tenant, id, gone).await?);
                    return Ok(report);
                }
            }
        }
    }

    /// Sends the endpoint's replays that are due, each on its own schedule.
    async fn deliver_replays(
        &self,
        delivery: &WebhookDelivery,
        endpoint: &EndpointRow,
    ) -> Result<DeliveryReport, SpineError> {
        let mut report = DeliveryReport::default();
        let (tenant, id) = (endpoint.tenant_id, endpoint.id);
        let now = self.clock.now();
        let due =
            webhooks::due_replays(self.pool_db(), tenant, id, now, delivery.settings.batch).await?;
        if due.is_empty() {
            return Ok(report);
        }
        let seqs: Vec<i64> = due.iter().map(|replay| replay.seq).collect();
        let events = outbox::read_events_at(self.pool_db(), tenant, &seqs).await?;
        let types = EventTypes::from_json(&endpoint.event_types);
        let secrets = self.endpoint_secrets(endpoint, now);
        let mut log = Vec::new();
        for replay in due {
            let event = events.iter().find(|event| event.seq == replay.seq);
            let Some(event) = event.filter(|event| types.matches(&event.event_type)) else {
                // Purged since, or of a type the endpoint no longer takes.
                webhooks::settle_replay(self.pool_db(), tenant, id, replay.seq, 0, None).await?;
                continue;
            };
            let attempt_number = replay.attempts + 1;
            let attempt = self
                .send_event(delivery, &endpoint.url, &secrets, event)
                .await;
            let at = self.clock.now();
            log.push(attempt_row(
                endpoint,
                event,
                attempt_number,
                true,
                &attempt,
                at,
            ));
            report.attempts += 1;
            let next = match self.next_step(delivery, &attempt, attempt_number, at) {
                Next::Continue => {
                    report.delivered += 1;
                    None
                }
                Next::RetryAt(when) => Some(when),
                Next::Disable(gone) => {
                    webhooks::insert_attempts(self.pool_db(), &log).await?;
                    webhooks::settle_replay(self.pool_db(), tenant, id, replay.seq, 0, None)
                        .await?;
                    report.disabled += u64::from(self.disable_endpoint(tenant, id, gone).await?);
                    return Ok(report);
                }
            };
            webhooks::settle_replay(self.pool_db(), tenant, id, replay.seq, attempt_number, next)
                .await?;
        }
        webhooks::insert_attempts(self.pool_db(), &log).await?;
        Ok(report)
    }

    /// One attempt at `event`.
    async fn send_event(
        &self,
        delivery: &WebhookDelivery,
        url: &str,
        secrets: &[super::WebhookSecret],
        event: &StoredEvent,
    ) -> Attempt {
        let message = WebhookMessage::new(
            message_id(event.event_id),
            self.clock.now().timestamp(),
            body(event),
        );
        delivery.sender.send(url, secrets, &message).await
    }

    /// What follows attempt number `attempt_number` that came to `attempt`.
    fn next_step(
        &self,
        delivery: &WebhookDelivery,
        attempt: &Attempt,
        attempt_number: i32,
        at: DateTime<Utc>,
    ) -> Next {
        match attempt.verdict {
            Verdict::Delivered => Next::Continue,
            Verdict::Gone => Next::Disable(true),
            _ => {
                let following = u32::try_from(attempt_number + 1).unwrap_or(u32::MAX);
                match delivery
                    .settings
                    .schedule
                    .delay_before(following, attempt.honoured_retry_after())
                {
                    Some(delay) => {
                        Next::RetryAt(at + chrono::Duration::from_std(delay).unwrap_or_default())
                    }
                    None => Next::Disable(false),
                }
            }
        }
    }

    /// Disables `tenant`'s endpoint `id` as delivery does when its schedule is spent
    /// (`reason` `failing`) or it answered 410 (`gone`): audited as the system, with a
    /// `webhook_endpoint.disabled` event; whether it was enabled. Test hook (feature
    /// `testing`): delivery decides this itself.
    #[cfg(feature = "testing")]
    pub async fn disable_webhook_endpoint_as_delivery(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
        gone: bool,
    ) -> Result<bool, SpineError> {
        self.disable_endpoint(tenant, id, gone).await
    }

    async fn disable_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
        gone: bool,
    ) -> Result<bool, SpineError> {
        let disable = DisableWebhookEndpoint {
            tenant_id: tenant,
            endpoint_id: id,
            gone,
        };
        let reason = disable.reason();
        let disabled = self.execute_as_system(tenant, disable).await?;
        if disabled {
            tracing::warn!(tenant_id = %tenant, endpoint_id = %id, reason, "webhook endpoint disabled");
        }
        Ok(disabled)
    }

    /// Runs delivery passes until `shutdown` resolves: every `poll`, and deletes attempts
    /// past their retention about once an hour. Errors are logged and retried.
    pub(crate) async fn run_webhook_delivery(
        &self,
        poll: Duration,
        owner: &str,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let Some(delivery) = self.webhooks.clone() else {
            return;
        };
        let mut shutdown = std::pin::pin!(shutdown);
        let mut last_purge: Option<std::time::Instant> = None;
        loop {
            let pass = self.deliver_webhooks_as(owner);
            tokio::select! {
                // An attempt under way is abandoned: its lease lapses and it is sent again.
                () = &mut shutdown => return,
                result = pass => {
                    if let Err(error) = result {
                        tracing::warn!(code = error.code(), "webhook delivery failed");
                    }
                }
            }
            if last_purge.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                last_purge = Some(std::time::Instant::now());
                let retention = delivery.settings.attempts_retention;
                if let Err(error) = self.purge_webhook_attempts(retention).await {
                    tracing::warn!(code = error.code(), "purging webhook attempts failed");
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Deletes logged attempts older than `retention`, in batches; how many.
    pub async fn purge_webhook_attempts(&self, retention: Duration) -> Result<u64, SpineError> {
        let before = self.clock.now() - chrono::Duration::from_std(retention).unwrap_or_default();
        let mut purged = 0;
        loop {
            let deleted = webhooks::purge_attempts(self.pool_db(), before, 1_000).await?;
            purged += deleted;
            if deleted < 1_000 {
                return Ok(purged);
            }
        }
    }
}

fn attempt_row(
    endpoint: &EndpointRow,
    event: &StoredEvent,
    attempt_number: i32,
    replay: bool,
    attempt: &Attempt,
    at: DateTime<Utc>,
) -> NewAttempt {
    NewAttempt {
        id: Uuid::now_v7(),
        tenant_id: endpoint.tenant_id,
        endpoint_id: endpoint.id,
        event_id: event.event_id,
        seq: event.seq,
        event_type: event.event_type.clone(),
        attempt: attempt_number,
        replay,
        status: attempt.status().map(i32::from),
        failure: failure_name(attempt.outcome),
        latency_ms: i32::try_from(attempt.latency.as_millis()).unwrap_or(i32::MAX),
        snippet: attempt.snippet.clone(),
        attempted_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_carries_type_timestamp_and_the_stored_data_byte_for_byte() {
        let event = StoredEvent {
            tenant_id: TenantId::new(),
            seq: 3,
            event_id: Uuid::now_v7(),
            event_type: "api_key.revoked".into(),
            payload: "{\"b\":1,  \"a\":2}".into(),
            sealed: None,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 5_000).expect("time"),
        };
        let text = String::from_utf8(body(&event)).expect("utf-8");
        assert_eq!(
            text,
            "{\"type\":\"api_key.revoked\",\"timestamp\":\"2023-11-14T22:13:20.000005Z\",\"data\":{\"b\":1,  \"a\":2}}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(parsed["data"], json!({"a": 2, "b": 1}));
        assert!(message_id(event.event_id).starts_with("msg_"));
    }
}
