//! Quota refusals made useful: which limit refused the request, and when it resets, computed
//! from the limit's period (counters reset lazily at the period boundary, in UTC).

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// How long a client is asked to wait before retrying a limit that has no fixed reset (a
/// concurrency slot frees when a run finishes, which nobody can predict).
pub(crate) const CONCURRENT_RETRY_SECONDS: u64 = 10;

/// The period a quota counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    /// A UTC day: resets at the next midnight UTC.
    Day,
    /// A UTC calendar month: resets at 00:00 UTC on the first of the next month.
    Month,
    /// Concurrent use: no fixed reset; capacity frees as work finishes.
    Concurrent,
}

/// Which quota refused a request and when it resets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct QuotaInfo {
    /// The limit, e.g. `runs_per_day`, `tokens_per_month`, `concurrent_runs`.
    pub limit: String,
    /// The period it counts over.
    pub period: QuotaPeriod,
    /// When the counter starts again from zero; `null` for limits without a fixed reset.
    pub resets_at: Option<DateTime<Utc>>,
    /// The same as the `Retry-After` header: seconds until the reset, or a polling hint for
    /// limits without a fixed reset.
    pub retry_after_seconds: u64,
    /// The reset in words.
    pub reset: String,
}

/// The next midnight UTC after `now`.
pub(crate) fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now
        .date_naive()
        .checked_add_days(Days::new(1))
        .unwrap_or(NaiveDate::MAX);
    tomorrow.and_time(NaiveTime::MIN).and_utc()
}

/// 00:00 UTC on the first day of the month after `now`'s.
pub(crate) fn first_of_next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .unwrap_or(NaiveDate::MAX)
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// Whole seconds from `now` until `at`, rounded up, at least 1.
fn seconds_until(now: DateTime<Utc>, at: DateTime<Utc>) -> u64 {
    let delta = at - now;
    let whole = delta.num_seconds();
    let rounded = if delta > TimeDelta::seconds(whole) {
        whole + 1
    } else {
        whole
    };
    u64::try_from(rounded).unwrap_or(0).max(1)
}

/// Describes the quota behind a 429 error code (`quota_*`), as of `now`; `None` for codes
/// that are no quota refusal.
pub(crate) fn describe(code: &str, now: DateTime<Utc>) -> Option<QuotaInfo> {
    let limit = code.strip_prefix("quota_")?;
    let (period, resets_at) = match limit {
        "runs_per_day" => (QuotaPeriod::Day, Some(next_utc_midnight(now))),
        "tokens_per_month" => (QuotaPeriod::Month, Some(first_of_next_month(now))),
        _ => (QuotaPeriod::Concurrent, None),
    };
    let (retry_after_seconds, reset) = match resets_at {
        Some(at) => (
            seconds_until(now, at),
            format!("the counter resets at {}", at.to_rfc3339()),
        ),
        None => (
            CONCURRENT_RETRY_SECONDS,
            "no fixed reset: capacity frees when a queued or running run finishes".to_owned(),
        ),
    };
    Some(QuotaInfo {
        limit: limit.to_owned(),
        period,
        resets_at,
        retry_after_seconds,
        reset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn daily_limits_reset_at_the_next_utc_midnight() {
        let info = describe("quota_runs_per_day", at("2026-03-31T23:59:30.5Z"));
        let info = info.unwrap_or_else(|| panic!("a quota"));
        assert_eq!(info.resets_at, Some(at("2026-04-01T00:00:00Z")));
        assert_eq!(info.retry_after_seconds, 30, "rounded up");
        assert_eq!(info.period, QuotaPeriod::Day);
    }

    #[test]
    fn monthly_limits_reset_on_the_first_of_the_next_month() {
        assert_eq!(
            first_of_next_month(at("2026-12-15T10:00:00Z")),
            at("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            first_of_next_month(at("2026-02-28T23:59:59Z")),
            at("2026-03-01T00:00:00Z")
        );
        let info = describe("quota_tokens_per_month", at("2026-01-31T00:00:00Z"));
        assert_eq!(
            info.map(|i| (i.resets_at, i.retry_after_seconds)),
            Some((Some(at("2026-02-01T00:00:00Z")), 86_400))
        );
    }

    #[test]
    fn concurrent_limits_have_no_fixed_reset() {
        let info = describe("quota_concurrent_runs", Utc::now()).unwrap_or_else(|| panic!());
        assert_eq!(
            (info.period, info.resets_at, info.retry_after_seconds),
            (QuotaPeriod::Concurrent, None, CONCURRENT_RETRY_SECONDS)
        );
        assert!(describe("rate_limited", Utc::now()).is_none());
    }
}
