//! How idempotency keys are kept and waited for (its own file: the spine's state holds it,
//! and the use cases beside it need the spine).

use std::time::Duration;

/// How idempotency keys behave ([`Spine::with_idempotency_settings`](crate::Spine::with_idempotency_settings)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdempotencySettings {
    /// How long a key is kept: a retry within it replays, after it the key may be used for
    /// a new request (default 24 h).
    pub keep_for: Duration,
    /// How long a claim waits for a concurrent request's transaction holding the same key
    /// before answering `idempotency_key_in_flight` (default 5 s; PostgreSQL's
    /// `lock_timeout`, for the claim only).
    pub in_flight_wait: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            keep_for: Duration::from_secs(24 * 60 * 60),
            in_flight_wait: Duration::from_secs(5),
        }
    }
}

impl IdempotencySettings {
    /// The same settings keeping keys for `keep_for`.
    pub fn with_keep_for(mut self, keep_for: Duration) -> Self {
        self.keep_for = keep_for;
        self
    }

    /// The same settings waiting at most `wait` for a key in flight.
    pub fn with_in_flight_wait(mut self, wait: Duration) -> Self {
        self.in_flight_wait = wait;
        self
    }
}
