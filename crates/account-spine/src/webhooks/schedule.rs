//! When to try a delivery again.
//!
//! The standard schedule follows the Standard Webhooks example (immediately, 5 s, 5 min,
//! 30 min, 2 h, 5 h, ...) but stops after about a day rather than three, as issue 22 asks:
//! an endpoint still failing after a day is disabled, and its owner re-enables it when it is
//! fixed. The eight attempts are spread over 23 h 35 min (before jitter):
//!
//! | attempt | delay before it | elapsed since the first |
//! |---|---|---|
//! | 1 | immediately | 0 |
//! | 2 | 5 s | 5 s |
//! | 3 | 5 min | 5 min 5 s |
//! | 4 | 30 min | 35 min 5 s |
//! | 5 | 2 h | 2 h 35 min |
//! | 6 | 5 h | 7 h 35 min |
//! | 7 | 8 h | 15 h 35 min |
//! | 8 | 8 h | 23 h 35 min |
//!
//! Each delay is jittered by ±20 %, so endpoints that failed together (an outage) are not
//! retried in lockstep. A server that answers 429, 502, 503 or 504 with `Retry-After` is
//! given at least that long (at most 24 h).

use std::time::Duration;

/// The standard schedule's delays; the first is before attempt 1.
pub const STANDARD_DELAYS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(5 * HOUR),
    Duration::from_secs(8 * HOUR),
    Duration::from_secs(8 * HOUR),
];

/// The longest `Retry-After` honoured: a server asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * HOUR);

/// Jitter either way, in percent of the scheduled delay.
pub const JITTER_PERCENT: u32 = 20;

const HOUR: u64 = 60 * 60;

/// The delays before each attempt of a delivery (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// [`STANDARD_DELAYS`].
    fn default() -> Self {
        Self::new(STANDARD_DELAYS)
    }
}

impl RetrySchedule {
    /// A schedule of these delays, the first before attempt 1 (tests and hosts with other
    /// needs; most use [`RetrySchedule::default`]).
    pub fn new(delays: impl Into<Vec<Duration>>) -> Self {
        Self {
            delays: delays.into(),
        }
    }

    /// How many attempts a delivery gets.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// The delay before `attempt` (1-based), jittered from the operating system's random
    /// source, or `None` when the schedule has no such attempt: the delivery has failed for
    /// good and the caller disables the endpoint.
    ///
    /// `retry_after` is what the last answer asked for, already filtered by
    /// [`honours_retry_after`] (the sender's `Attempt::honoured_retry_after`): the delay is
    /// then the larger of it (capped at [`MAX_RETRY_AFTER`]) and the schedule's.
    pub fn delay_before(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        // Without randomness, the unjittered delay (the middle of the range) is still right.
        let random = getrandom::u32().unwrap_or(u32::MAX / 2);
        self.delay_before_with(attempt, retry_after, random)
    }

    /// [`RetrySchedule::delay_before`] with the jitter drawn from `random` (uniform over
    /// `u32`): `0` is 20 % early, `u32::MAX` 20 % late.
    pub fn delay_before_with(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        random: u32,
    ) -> Option<Duration> {
        // Attempt 0 does not exist; read it as the first rather than as "give up".
        let index = usize::try_from(attempt.saturating_sub(1)).ok()?;
        let scheduled = jittered(*self.delays.get(index)?, random);
        let asked = retry_after.map_or(Duration::ZERO, |asked| asked.min(MAX_RETRY_AFTER));
        Some(scheduled.max(asked))
    }
}

/// Whether a `Retry-After` on an answer of this status is honoured: the statuses by which a
/// server says it is overloaded or briefly away (429, 502, 503, 504).
pub fn honours_retry_after(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `delay` moved by up to [`JITTER_PERCENT`] either way; integer arithmetic, so no delay
/// can make it panic.
fn jittered(delay: Duration, random: u32) -> Duration {
    let nanos = delay.as_nanos();
    let percent = u128::from(JITTER_PERCENT);
    let earliest = nanos * (100 - percent) / 100;
    let span = nanos * 2 * percent / 100;
    let offset = span * u128::from(random) / u128::from(u32::MAX);
    let total = earliest + offset;
    let secs = u64::try_from(total / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder of a division by 10^9 always fits.
    let subsec = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, subsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDDLE: u32 = u32::MAX / 2;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_standard_schedule_spans_about_a_day_in_eight_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        let total: Duration = (1..=8)
            .map(|n| schedule.delay_before_with(n, None, MIDDLE).unwrap())
            .sum();
        // 23 h 35 min 5 s, give or take the rounding of the middle of the jitter.
        let expected = secs(23 * HOUR + 35 * 60 + 5);
        assert!(
            total.abs_diff(expected) < Duration::from_millis(1),
            "{total:?}"
        );
    }

    #[test]
    fn the_first_attempt_is_immediate_and_none_follows_the_last() {
        let schedule = RetrySchedule::default();
        for random in [0, MIDDLE, u32::MAX] {
            assert_eq!(
                schedule.delay_before_with(1, None, random),
                Some(Duration::ZERO)
            );
        }
        assert_eq!(schedule.delay_before_with(0, None, 0), Some(Duration::ZERO));
        assert_eq!(schedule.delay_before_with(9, None, MIDDLE), None);
        assert_eq!(schedule.delay_before_with(u32::MAX, Some(secs(1)), 0), None);
        assert_eq!(schedule.delay_before(9, None), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_either_way() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.delay_before_with(3, None, 0), Some(secs(240)));
        assert_eq!(
            schedule.delay_before_with(3, None, u32::MAX),
            Some(secs(360))
        );
        for _ in 0..200 {
            let delay = schedule.delay_before(4, None).unwrap();
            assert!(
                (secs(24 * 60)..=secs(36 * 60)).contains(&delay),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn jitter_spreads_delays_rather_than_fixing_them() {
        let schedule = RetrySchedule::default();
        let draws: std::collections::HashSet<Duration> = (0..50)
            .map(|_| schedule.delay_before(7, None).unwrap())
            .collect();
        assert!(draws.len() > 40, "{} distinct delays of 50", draws.len());
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_capped_at_a_day() {
        let schedule = RetrySchedule::default();
        // Attempt 2 is scheduled 4 to 6 s out; the server asks for 2 min.
        assert_eq!(
            schedule.delay_before_with(2, Some(secs(120)), u32::MAX),
            Some(secs(120))
        );
        // A shorter request does not hurry the schedule.
        assert_eq!(
            schedule.delay_before_with(3, Some(secs(1)), 0),
            Some(secs(240))
        );
        assert_eq!(
            schedule.delay_before_with(2, Some(secs(10 * 24 * HOUR)), 0),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_is_honoured_only_for_overload_and_gateway_statuses() {
        let honoured: Vec<u16> = (100..600).filter(|s| honours_retry_after(*s)).collect();
        assert_eq!(honoured, [429, 502, 503, 504]);
    }

    #[test]
    fn jitter_cannot_overflow_on_huge_delays() {
        let schedule = RetrySchedule::new([Duration::ZERO, Duration::MAX]);
        let latest = schedule.delay_before_with(2, None, u32::MAX).unwrap();
        assert_eq!(latest.as_secs(), u64::MAX, "saturates rather than wrapping");
        let earliest = schedule.delay_before_with(2, None, 0).unwrap();
        assert_eq!(earliest.as_secs(), u64::MAX / 5 * 4);
        assert_eq!(RetrySchedule::new(Vec::new()).delay_before(1, None), None);
    }
}
