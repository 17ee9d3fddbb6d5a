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
    /// The GCRA's theoretical arrival time as of the last allowed request, tracked beside
    /// governor's (which has no read-only view): the allowance is full again at this instant,
    /// and refills one request every `60 / rpm` seconds before it.
    full_at: Instant,
}

/// What is left of a key's allowance, without counting a request (for verification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Allowance {
    /// The key's requests per minute.
    pub limit: u32,
    /// Requests it may make now.
    pub remaining: u32,
    /// Whole seconds until the allowance is full again (0 when it is).
    pub reset_seconds: u64,
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
            full_at: now,
        });
        if entry.rpm != rpm {
            entry.rpm = rpm;
            entry.limiter = DefaultDirectRateLimiter::direct(Quota::per_minute(rpm));
            entry.full_at = now;
        }
        entry.last_seen = now;
        let checked = entry.limiter.check();
        if checked.is_ok() {
            entry.full_at = entry.full_at.max(now) + emission_interval(rpm);
        }
        checked.map_err(|not_until| {
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

/// The time one request of the allowance takes to refill.
fn emission_interval(rpm: NonZeroU32) -> Duration {
    Duration::from_secs(60) / rpm.get()
}

impl RateLimits {
    /// What is left of `key`'s allowance under `rpm` now, counting nothing: `None` for a key
    /// without a positive limit. A key this process has not seen (or not for a minute) has
    /// its whole allowance; another process's requests are not known here.
    pub(crate) fn peek(&self, key: ApiKeyId, rpm: Option<i32>) -> Option<Allowance> {
        let rpm = rpm
            .and_then(|r| u32::try_from(r).ok())
            .and_then(NonZeroU32::new)?;
        let now = Instant::now();
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let full_at = inner
            .keys
            .get(&key)
            .filter(|k| k.rpm == rpm)
            .map_or(now, |k| k.full_at);
        let debt = full_at.saturating_duration_since(now);
        let interval = emission_interval(rpm);
        // Requests not yet refilled, rounded up: a partly refilled one is not available.
        let used = debt.as_nanos().div_ceil(interval.as_nanos().max(1));
        let remaining =
            u64::from(rpm.get()).saturating_sub(u64::try_from(used).unwrap_or(u64::MAX));
        let whole = debt.as_secs();
        Some(Allowance {
            limit: rpm.get(),
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_seconds: if debt.subsec_nanos() > 0 {
                whole + 1
            } else {
                whole
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeking_counts_nothing_and_follows_the_allowance() {
        let limits = RateLimits::default();
        let key = ApiKeyId::new();
        assert_eq!(limits.peek(key, None), None);
        let full = Allowance {
            limit: 3,
            remaining: 3,
            reset_seconds: 0,
        };
        assert_eq!(limits.peek(key, Some(3)), Some(full));
        assert_eq!(limits.peek(key, Some(3)), Some(full), "peeking is free");
        limits.check(key, Some(3)).unwrap();
        limits.check(key, Some(3)).unwrap();
        let left = limits.peek(key, Some(3)).unwrap();
        assert_eq!(left.remaining, 1);
        assert!((39..=40).contains(&left.reset_seconds), "{left:?}");
        limits.check(key, Some(3)).unwrap();
        assert_eq!(limits.peek(key, Some(3)).unwrap().remaining, 0);
        assert!(
            limits.check(key, Some(3)).is_err(),
            "peeks agree with checks"
        );
    }

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
