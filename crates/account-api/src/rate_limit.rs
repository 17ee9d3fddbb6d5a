//! Per-key request rate limits (`rate_limit_rpm` on the key), in process: one GCRA limiter
//! per API key id (governor), allowing bursts of up to the per-minute limit and refilling one
//! request every `60 / rpm` seconds. Several server processes each enforce the limit on their
//! own share of the traffic.

use account_spine::types::ApiKeyId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limiter idle this long is full again, so forgetting it loses nothing.
const IDLE: Duration = Duration::from_secs(60);
/// Forget idle limiters at most this often.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct KeyLimiter {
    rpm: NonZeroU32,
    limiter: DefaultDirectRateLimiter,
    last_seen: Instant,
}

#[derive(Debug)]
struct Limiters {
    keys: HashMap<ApiKeyId, KeyLimiter>,
    last_pruned: Instant,
}

/// The limiters of every key seen in the last minute.
#[derive(Debug)]
pub(crate) struct RateLimits {
    inner: Mutex<Limiters>,
    clock: DefaultClock,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Limiters {
                keys: HashMap::new(),
                last_pruned: Instant::now(),
            }),
            clock: DefaultClock::default(),
        }
    }
}

/// A refused request: the key's limit and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limited {
    /// The key's requests per minute.
    pub rpm: u32,
    /// Whole seconds until a request is allowed again (at least 1).
    pub retry_after_seconds: u64,
}

impl RateLimits {
    /// Counts one request of `key` against `rpm` (a key without a positive limit is not
    /// limited). A changed limit starts the key's limiter afresh.
    pub(crate) fn check(&self, key: ApiKeyId, rpm: Option<i32>) -> Result<(), Limited> {
        let Some(rpm) = rpm
            .and_then(|r| u32::try_from(r).ok())
            .and_then(NonZeroU32::new)
        else {
            return Ok(());
        };
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(inner.last_pruned) >= PRUNE_EVERY {
            inner
                .keys
                .retain(|_, k| now.duration_since(k.last_seen) < IDLE);
            inner.last_pruned = now;
        }
        let entry = inner.keys.entry(key).or_insert_with(|| KeyLimiter {
            rpm,
            limiter: DefaultDirectRateLimiter::direct(Quota::per_minute(rpm)),
            last_seen: now,
        });
        if entry.rpm != rpm {
            entry.rpm = rpm;
            entry.limiter = DefaultDirectRateLimiter::direct(Quota::per_minute(rpm));
        }
        entry.last_seen = now;
        entry.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            let whole = wait.as_secs();
            let seconds = if wait.subsec_nanos() > 0 {
                whole + 1
            } else {
                whole
            };
            Limited {
                rpm: rpm.get(),
                retry_after_seconds: seconds.max(1),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_rpm_then_waits_for_the_refill() {
        let limits = RateLimits::default();
        let key = ApiKeyId::new();
        for _ in 0..3 {
            assert_eq!(limits.check(key, Some(3)), Ok(()));
        }
        let refused = limits.check(key, Some(3)).unwrap_err();
        assert_eq!(refused.rpm, 3);
        assert!(
            (19..=20).contains(&refused.retry_after_seconds),
            "one request per 20 s: {refused:?}"
        );
        assert_eq!(limits.check(ApiKeyId::new(), Some(3)), Ok(()), "per key");
        assert_eq!(limits.check(key, None), Ok(()), "no limit, no refusal");
        assert_eq!(
            limits.check(key, Some(10)),
            Ok(()),
            "a new limit starts afresh"
        );
    }
}
