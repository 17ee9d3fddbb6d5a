//! Request rate limits, shared by every instance on one database: each API key's own
//! (`rate_limit_rpm`) and each tenant's (`max_requests_per_minute`, set by its plan), which
//! every request of the tenant counts against, whatever its credential.
//!
//! The allowance of a key or tenant lives in one row (`account_engines::rate_limits`): a GCRA
//! whose burst is the limit per minute and which refills one request every `60 / rpm`
//! seconds. An instance does not touch the row per request: it leases a batch of requests
//! in one statement and spends them locally for at most [`LEASE_LIFETIME`], then lets the
//! rest lapse. The batch follows the instance's own demand (doubling while a lease runs out
//! early, shrinking to what was spent otherwise), capped at a twentieth of the limit, so idle
//! instances hold little of it. A refusal is remembered until the allowance refills, so a
//! refused client costs no statement either.
//!
//! Error bound: the row never grants more than the limit; an instance spends a grant up to
//! [`LEASE_LIFETIME`] after it was made, so in any window of `W` seconds all instances
//! together admit at most `rpm + (W + 1) × rpm / 60` requests, one second's refill (1.7 % of
//! a minute's) more than one exact limiter. Requests leased and not spent are lost: the limit
//! errs towards refusing, by at most one batch per instance per lease lifetime.

pub use crate::error::RateLimitScope;
use crate::error::SpineError;
use account_engines::rate_limits::{AllowanceRule, Lease, fetch_allowance_debt, lease_allowance};
use account_engines::types::{ApiKeyId, TenantId};
use sea_orm::prelude::Uuid;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long leased requests stay usable: the error bound above is one such span of refill.
pub const LEASE_LIFETIME: Duration = Duration::from_secs(1);
/// A subject idle this long is forgotten (its leased requests lapsed long before).
const IDLE: Duration = Duration::from_secs(60);
/// How long a tenant's limit is trusted: a plan's new limit applies within this on every
/// instance.
pub const TENANT_LIMIT_TTL: Duration = Duration::from_secs(5);

/// What is left of a key's request allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allowance {
    /// The key's requests per minute (and the most it may make at once).
    pub limit: u32,
    /// Requests it may make now, as this instance knows it: what it leased and has not
    /// spent, plus what the shared state had left at its last look.
    pub remaining: u32,
    /// Until the allowance is full again.
    pub reset: Duration,
}

impl Allowance {
    /// [`Allowance::reset`] in whole seconds, rounded up.
    pub fn reset_seconds(&self) -> u64 {
        whole_seconds(self.reset)
    }
}

/// Requests counted and refused by the limiter, and the statements it spent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitMetrics {
    /// Requests counted against a key's limit (admitted or refused).
    pub requests: u64,
    /// Of those, refused.
    pub refused: u64,
    /// Leases taken from the shared state (one statement each).
    pub leases: u64,
}

/// Seconds, rounded up.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// One limit in the units of the shared state.
fn rule(rpm: u32) -> AllowanceRule {
    AllowanceRule {
        interval_us: (60_000_000 + i64::from(rpm) - 1) / i64::from(rpm),
        burst: i64::from(rpm),
    }
}

/// This instance's view of one subject.
#[derive(Debug)]
struct Subject {
    rpm: u32,
    /// Leased requests not spent yet, usable until `lease_ends`.
    tokens: i64,
    lease_ends: Instant,
    /// Requests spent from the current lease, and its size: they size the next one.
    spent: i64,
    batch: i64,
    /// The shared state's debt (how far its full instant lay ahead) when last seen.
    debt: Duration,
    seen_at: Instant,
    /// Refused until then without asking the shared state.
    refused_until: Option<Instant>,
    last_used: Instant,
}

impl Subject {
    fn new(rpm: u32, now: Instant) -> Self {
        Self {
            rpm,
            tokens: 0,
            lease_ends: now,
            spent: 0,
            batch: 1,
            debt: Duration::ZERO,
            seen_at: now,
            refused_until: None,
            last_used: now,
        }
    }

    /// The next lease's size: twice the last while leases run out before they end, else
    /// what the last one served; at least 1, at most a twentieth of the limit.
    fn next_batch(&self, now: Instant) -> i64 {
        let wanted = if now < self.lease_ends && self.tokens == 0 {
            self.batch * 2
        } else {
            self.spent
        };
        wanted.clamp(1, (i64::from(self.rpm) / 20).max(1))
    }

    fn allowance(&self, now: Instant) -> Allowance {
        let rule = rule(self.rpm);
        let debt = self.debt.saturating_sub(now.duration_since(self.seen_at));
        let tokens = if now < self.lease_ends {
            self.tokens
        } else {
            0
        };
        let debt_us = i64::try_from(debt.as_micros()).unwrap_or(i64::MAX);
        let fits = ((rule.burst * rule.interval_us - debt_us) / rule.interval_us).max(0);
        Allowance {
            limit: self.rpm,
            remaining: u32::try_from((tokens + fits).min(rule.burst)).unwrap_or(self.rpm),
            reset: debt,
        }
    }
}

/// One subject's view, locked across a lease so one lease serves every waiting request.
type SharedSubject = Arc<tokio::sync::Mutex<Subject>>;

/// Every key and tenant this instance counted in the last minute.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    /// By tenant and subject: a key's id, or the tenant's own for its tenant-wide limit.
    subjects: Mutex<HashMap<(TenantId, Uuid), SharedSubject>>,
    /// Tenants' limits as last read, and when.
    tenant_limits: Mutex<HashMap<TenantId, (Option<u32>, Instant)>>,
    last_pruned: Mutex<Option<Instant>>,
    requests: AtomicU64,
    refused: AtomicU64,
    leases: AtomicU64,
}

/// A refused request: the limit and how long until one is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) limit: u32,
    pub(crate) retry_after: Duration,
}

impl RateLimiter {
    pub(crate) fn metrics(&self) -> RateLimitMetrics {
        RateLimitMetrics {
            requests: self.requests.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            leases: self.leases.load(Ordering::Relaxed),
        }
    }

    fn subject(&self, key: (TenantId, Uuid), now: Instant) -> SharedSubject {
        let mut subjects = self.subjects.lock().unwrap_or_else(|p| p.into_inner());
        let mut last_pruned = self.last_pruned.lock().unwrap_or_else(|p| p.into_inner());
        if last_pruned.is_none_or(|at| now.duration_since(at) >= IDLE) {
            // A subject another task holds is kept: its lock is taken, so it is in use.
            subjects.retain(|_, s| {
                s.try_lock()
                    .map_or(true, |s| now.duration_since(s.last_used) < IDLE)
            });
            self.tenant_limits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, (_, read)| now.duration_since(*read) < TENANT_LIMIT_TTL);
            *last_pruned = Some(now);
        }
        Arc::clone(
            subjects
                .entry(key)
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Subject::new(1, now)))),
        )
    }

    /// `tenant`'s limit as read within [`TENANT_LIMIT_TTL`], if it was.
    fn cached_tenant_limit(&self, tenant: TenantId) -> Option<Option<u32>> {
        let limits = self.tenant_limits.lock().unwrap_or_else(|p| p.into_inner());
        limits
            .get(&tenant)
            .filter(|(_, read)| read.elapsed() < TENANT_LIMIT_TTL)
            .map(|(limit, _)| *limit)
    }

    fn remember_tenant_limit(&self, tenant: TenantId, limit: Option<u32>) {
        let mut limits = self.tenant_limits.lock().unwrap_or_else(|p| p.into_inner());
        limits.insert(tenant, (limit, Instant::now()));
    }

    /// Counts one request of `subject` against `rpm`, leasing from the shared state through
    /// `lease` when this instance holds none. The subject's lock is held across the lease,
    /// so one lease serves every request of the key waiting here.
    pub(crate) async fn take<F, Fut>(
        &self,
        tenant: TenantId,
        subject: Uuid,
        rpm: u32,
        lease: F,
    ) -> Result<Result<Allowance, Refused>, SpineError>
    where
        F: FnOnce(AllowanceRule, i64) -> Fut,
        Fut: Future<Output = Result<Lease, SpineError>>,
    {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let subject = self.subject((tenant, subject), Instant::now());
        let mut s = subject.lock().await;
        let now = Instant::now();
        if s.rpm != rpm {
            *s = Subject::new(rpm, now);
        }
        s.last_used = now;
        if s.tokens > 0 && now < s.lease_ends {
            s.tokens -= 1;
            s.spent += 1;
            return Ok(Ok(s.allowance(now)));
        }
        if let Some(until) = s.refused_until.filter(|until| now < *until) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(Err(Refused {
                limit: rpm,
                retry_after: until - now,
            }));
        }
        let wanted = s.next_batch(now);
        let rule = rule(rpm);
        self.leases.fetch_add(1, Ordering::Relaxed);
        let got = lease(rule, wanted).await?;
        let now = Instant::now();
        s.debt = Duration::from_micros(u64::try_from(got.debt_us).unwrap_or(0));
        s.seen_at = now;
        if got.granted > 0 {
            s.tokens = got.granted - 1;
            s.spent = 1;
            s.batch = got.granted;
            s.lease_ends = now + LEASE_LIFETIME;
            s.refused_until = None;
            return Ok(Ok(s.allowance(now)));
        }
        // Refused: one request fits again once the debt is down to `burst - 1` intervals.
        let wait_us = (got.debt_us - (rule.burst - 1) * rule.interval_us).max(1);
        let retry_after = Duration::from_micros(u64::try_from(wait_us).unwrap_or(1));
        s.tokens = 0;
        s.spent = 0;
        s.refused_until = Some(now + retry_after);
        self.refused.fetch_add(1, Ordering::Relaxed);
        Ok(Err(Refused {
            limit: rpm,
            retry_after,
        }))
    }

    /// `key`'s allowance under `rpm` as this instance saw it within the last lease lifetime,
    /// if it did.
    pub(crate) async fn recent(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        rpm: u32,
    ) -> Option<Allowance> {
        let subject = {
            let subjects = self.subjects.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(subjects.get(&(tenant, key.as_uuid()))?)
        };
        let s = subject.lock().await;
        let now = Instant::now();
        (s.rpm == rpm && now.duration_since(s.seen_at) < LEASE_LIFETIME).then(|| s.allowance(now))
    }
}

/// The allowance of a key under `rpm` whose shared state is `debt_us` ahead.
pub(crate) fn allowance_from_debt(rpm: u32, debt_us: i64) -> Allowance {
    let now = Instant::now();
    let mut subject = Subject::new(rpm, now);
    subject.debt = Duration::from_micros(u64::try_from(debt_us).unwrap_or(0));
    subject.allowance(now)
}

impl crate::Spine {
    /// Counts one request of the principal against the limits that apply to it, across every
    /// instance on this database: its API key's own per-minute limit, then its tenant's (the
    /// plan's `max_requests_per_minute`, every credential together; a request the key's limit
    /// refused does not count against the tenant's). Returns what is left of the key's
    /// allowance (`None` when the key has no limit, or the caller is a person). Most calls
    /// cost no statement: leased requests are spent locally, and the tenant's limit is read
    /// once per [`TENANT_LIMIT_TTL`]. A refusal is [`SpineError::RateLimited`]. A database
    /// failure while leasing is [`SpineError::Storage`]; a host that prefers to admit
    /// requests then may.
    pub async fn admit_request(
        &self,
        principal: &crate::Principal,
    ) -> Result<Option<Allowance>, SpineError> {
        let tenant = principal.tenant_id;
        let mut allowance = None;
        if let crate::Actor::ApiKey {
            key_id,
            rate_limit_rpm,
            ..
        } = &principal.actor
            && let Some(rpm) = positive(*rate_limit_rpm)
        {
            allowance = Some(
                self.count_request(tenant, key_id.as_uuid(), rpm, RateLimitScope::Key)
                    .await?,
            );
        }
        if let Some(rpm) = self.tenant_request_limit(tenant).await? {
            self.count_request(tenant, tenant.as_uuid(), rpm, RateLimitScope::Tenant)
                .await?;
        }
        Ok(allowance)
    }

    /// One request of `subject` against `rpm`.
    async fn count_request(
        &self,
        tenant: TenantId,
        subject: Uuid,
        rpm: u32,
        scope: RateLimitScope,
    ) -> Result<Allowance, SpineError> {
        let taken = self
            .rate_limits
            .take(tenant, subject, rpm, |rule, wanted| async move {
                // SQLite: the lease is a write, so it queues for the one writer.
                let db = self.counted(account_engines::Db::for_pool(self.write_connection()));
                Ok(lease_allowance(db, tenant, subject, rule, wanted).await?)
            })
            .await?;
        taken.map_err(|refused| SpineError::RateLimited {
            scope,
            limit: refused.limit,
            retry_after_seconds: whole_seconds(refused.retry_after).max(1),
        })
    }

    /// The tenant's limit on its requests per minute, read at most once per
    /// [`TENANT_LIMIT_TTL`] by this instance.
    async fn tenant_request_limit(&self, tenant: TenantId) -> Result<Option<u32>, SpineError> {
        if let Some(limit) = self.rate_limits.cached_tenant_limit(tenant) {
            return Ok(limit);
        }
        let limit =
            positive(account_engines::tenants::request_limit(self.pool_db(), tenant).await?);
        self.rate_limits.remember_tenant_limit(tenant, limit);
        Ok(limit)
    }

    /// What is left of `key`'s allowance under `rate_limit_rpm` (its stored limit), counting
    /// nothing: this instance's view when it counted the key within the last second, else one
    /// read of the shared state. `None` when the key has no limit.
    pub async fn key_allowance(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        rate_limit_rpm: Option<i32>,
    ) -> Result<Option<Allowance>, SpineError> {
        let Some(rpm) = positive(rate_limit_rpm) else {
            return Ok(None);
        };
        if let Some(seen) = self.rate_limits.recent(tenant, key, rpm).await {
            return Ok(Some(seen));
        }
        let debt = fetch_allowance_debt(self.pool_db(), tenant, key.as_uuid()).await?;
        Ok(Some(allowance_from_debt(rpm, debt)))
    }
}

fn positive(rpm: Option<i32>) -> Option<u32> {
    rpm.and_then(|r| u32::try_from(r).ok()).filter(|r| *r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease_of(granted: i64, debt_us: i64) -> Result<Lease, SpineError> {
        Ok(Lease { granted, debt_us })
    }

    #[tokio::test]
    async fn leased_requests_are_spent_locally_then_refusals_are_remembered() {
        let limiter = RateLimiter::default();
        let (tenant, key) = (TenantId::new(), ApiKeyId::new());
        let interval = rule(120).interval_us; // 0.5 s
        // A lease of 3 (asked for 1: the first lease of a subject is one request).
        let first = limiter
            .take(tenant, key.as_uuid(), 120, |_, wanted| async move {
                assert_eq!(wanted, 1);
                lease_of(3, 3 * interval)
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.limit, 120);
        assert_eq!(
            first.remaining,
            117 + 2,
            "two leased, 117 left in the shared state"
        );
        for _ in 0..2 {
            limiter
                .take(tenant, key.as_uuid(), 120, |_, _| async {
                    panic!("spent locally")
                })
                .await
                .unwrap()
                .unwrap();
        }
        // Ran out before the lease ended: the next one asks for twice the last.
        let refused = limiter
            .take(tenant, key.as_uuid(), 120, |_, wanted| async move {
                assert_eq!(wanted, 6);
                lease_of(0, 120 * interval)
            })
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.limit, 120);
        assert!(refused.retry_after <= Duration::from_micros(interval as u64));
        let again = limiter
            .take(tenant, key.as_uuid(), 120, |_, _| async {
                panic!("remembered")
            })
            .await
            .unwrap()
            .unwrap_err();
        assert!(again.retry_after <= refused.retry_after);
        assert_eq!(
            limiter.metrics(),
            RateLimitMetrics {
                requests: 5,
                refused: 2,
                leases: 2
            }
        );
    }

    #[test]
    fn batches_stay_within_a_twentieth_of_the_limit() {
        let now = Instant::now();
        let mut s = Subject::new(100, now);
        s.lease_ends = now + LEASE_LIFETIME;
        s.batch = 4;
        assert_eq!(s.next_batch(now), 5, "capped at 100 / 20");
        s.rpm = 10;
        assert_eq!(s.next_batch(now), 1, "at least one");
        s.rpm = 1000;
        s.tokens = 3;
        s.spent = 7;
        assert_eq!(
            s.next_batch(now + LEASE_LIFETIME),
            7,
            "lapsed: what was spent"
        );
    }

    #[test]
    fn an_allowance_follows_the_shared_debt() {
        let full = allowance_from_debt(60, 0);
        assert_eq!((full.remaining, full.reset_seconds()), (60, 0));
        let used = allowance_from_debt(60, 60_000_000);
        assert_eq!((used.remaining, used.reset_seconds()), (0, 60));
        let half = allowance_from_debt(60, 30_500_000);
        assert_eq!((half.remaining, half.reset_seconds()), (29, 31));
    }
}
