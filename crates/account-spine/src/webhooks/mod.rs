//! Webhooks (issue 22): a tenant's endpoints ([`CreateWebhookEndpoint`] and the other use
//! cases), their delivery from the outbox ([`Spine::with_webhook_delivery`](crate::Spine)),
//! and the transport: Standard Webhooks signatures, the retry schedule, one HTTP attempt.
//!
//! Receivers (a host's other services) need only [`WebhookSecret`], [`SignedHeaders`] and
//! [`verify`]: they check a request's `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers against the raw body, in constant time, within a timestamp
//! tolerance. The sending side signs with [`sign`] (or [`signature_header`] for every
//! secret of a rotation), sends with a [`WebhookSender`] (which refuses internal
//! destinations and follows no redirect), and schedules the next attempt with a
//! [`RetrySchedule`] from the [`Attempt`] it got back.

mod delivery;
mod endpoints;
mod schedule;
mod sender;
mod signature;

pub(crate) use delivery::WebhookDelivery;
pub use delivery::{DeliveryReport, DisableWebhookEndpoint, WebhookSettings, message_id};
pub use endpoints::{
    CreateEndpoint, CreateWebhookEndpoint, CreatedWebhookEndpoint, DEFAULT_ROTATION_GRACE_SECONDS,
    DeleteWebhookEndpoint, GetWebhookEndpoint, ListWebhookAttempts, ListWebhookEndpoints,
    MAX_ATTEMPTS_PAGE, MAX_DESCRIPTION_LENGTH, MAX_ENDPOINTS, MAX_EVENT_TYPES, MAX_GRACE_SECONDS,
    MAX_REPLAY_EVENTS, MAX_URL_LENGTH, Replay, ReplayWebhookEvents, RotateWebhookSecret,
    RotatedWebhookSecret, UpdateEndpoint, UpdateWebhookEndpoint, WebhookAttempt, WebhookEndpoint,
    WebhookError,
};

pub use schedule::{
    JITTER_PERCENT, MAX_RETRY_AFTER, RetrySchedule, STANDARD_DELAYS, honours_retry_after,
};
pub use sender::{
    Attempt, Outcome, SNIPPET_BYTES, SenderBuildError, SenderSettings, TransportFailure, Verdict,
    WebhookMessage, WebhookSender,
};
pub use signature::{
    DEFAULT_TOLERANCE, ID_HEADER, MAX_SECRET_BYTES, MIN_SECRET_BYTES, SIGNATURE_HEADER,
    SecretError, SignedHeaders, TIMESTAMP_HEADER, VerifyError, WebhookSecret, sign,
    signature_header, verify,
};
