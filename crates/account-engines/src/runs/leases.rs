//! Run leases: a run holds a lease from admission, its worker renews it by heartbeat, and a
//! run whose lease lapsed is expired by the reaper (`crashed`, error [`LEASE_EXPIRED`]),
//! which settles it like any finished run and so frees its concurrency slot.
//!
//! Workers should heartbeat every [`LeaseDuration::heartbeat_interval`] (a third of the
//! lease): two lost heartbeats in a row still leave the lease standing.

use super::{RunError, RunSnapshot, settle_finished_run};
use crate::Db;
use account_drivers::get_tenant_driver;
pub use account_drivers::runs::leases::{Heartbeat, LEASE_EXPIRED, LapsedLease};
use account_drivers::types::{RunId, TenantId};
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// How long a run's lease lasts from its admission or its latest heartbeat: a typed setting,
/// from [`LeaseDuration::MIN`] to [`LeaseDuration::MAX`], [`LeaseDuration::DEFAULT`] unless
/// the host sets another.
///
/// ```
/// use account_engines::runs::leases::LeaseDuration;
/// use std::time::Duration;
///
/// assert_eq!(LeaseDuration::default().get(), Duration::from_secs(60));
/// let lease = LeaseDuration::new(Duration::from_secs(90))?;
/// assert_eq!(lease.heartbeat_interval(), Duration::from_secs(30));
/// assert!(LeaseDuration::new(Duration::ZERO).is_err());
/// # Ok::<(), account_engines::runs::leases::InvalidLeaseDuration>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseDuration(Duration);

impl LeaseDuration {
    /// A minute: long enough that a worker heartbeating every 20 s survives two lost beats,
    /// short enough that a dead worker's slot is back within about a minute and a reaper
    /// interval.
    pub const DEFAULT: Self = Self(Duration::from_secs(60));
    /// The shortest lease: one second (tests and tight local setups).
    pub const MIN: Duration = Duration::from_secs(1);
    /// The longest lease: a day (longer would hold a dead worker's slot for days).
    pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);

    /// A lease of `duration`, if it is within [`LeaseDuration::MIN`] and
    /// [`LeaseDuration::MAX`].
    pub fn new(duration: Duration) -> Result<Self, InvalidLeaseDuration> {
        if (Self::MIN..=Self::MAX).contains(&duration) {
            Ok(Self(duration))
        } else {
            Err(InvalidLeaseDuration(duration))
        }
    }

    /// Its length.
    pub fn get(self) -> Duration {
        self.0
    }

    /// How often a worker should heartbeat: a third of the lease.
    pub fn heartbeat_interval(self) -> Duration {
        self.0 / 3
    }

    /// When a lease taken or renewed at `now` lapses.
    pub fn expiry(self, now: DateTime<Utc>) -> DateTime<Utc> {
        // Within a day by construction, so the conversion cannot fail.
        now + TimeDelta::from_std(self.0).unwrap_or(TimeDelta::MAX)
    }
}

impl Default for LeaseDuration {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A lease length outside [`LeaseDuration::MIN`]..=[`LeaseDuration::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a run lease must last from 1 s to 24 h, not {0:?}")]
pub struct InvalidLeaseDuration(pub Duration);

/// Renews the lease of the tenant's queued or running run until `lease` from `now`; the
/// first heartbeat moves a queued run to `running`. A lease that lapsed but was not reaped
/// yet is renewed too (the worker is alive after all); a finished run, expired ones included,
/// is refused with [`RunError::AlreadyFinished`], which tells its worker to stop.
pub async fn heartbeat_run(
    db: Db<'_>,
    tenant: TenantId,
    run_id: RunId,
    lease: LeaseDuration,
    now: DateTime<Utc>,
) -> Result<Heartbeat, RunError> {
    let driver = get_tenant_driver(db);
    if let Some(beat) = driver
        .heartbeat_run(tenant, run_id, lease.expiry(now), now)
        .await?
    {
        return Ok(beat);
    }
    match driver.fetch_run_by_id(tenant, run_id).await? {
        Some(finished) => Err(RunError::AlreadyFinished {
            status: finished.status,
        }),
        None => Err(RunError::RunNotFound),
    }
}

/// Runs of every tenant whose lease lapsed before `now`, longest lapsed first, at most
/// `limit`: what the reaper expires next.
pub async fn lapsed_leases(
    db: Db<'_>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<LapsedLease>, RunError> {
    Ok(get_tenant_driver(db)
        .fetch_lapsed_leases(now, limit)
        .await?)
}

/// Expires the tenant's run if its lease lapsed before `now` and it has not finished, then
/// settles it exactly as a finished run is settled ([`settle_finished_run`]), in the same
/// transaction. `None` when it did not need expiring (finished, renewed or unknown): the
/// conditional update lets exactly one of an expiry and a racing completion finish a run.
pub async fn expire_run(
    db: Db<'_>,
    tenant: TenantId,
    run_id: RunId,
    now: DateTime<Utc>,
) -> Result<Option<RunSnapshot>, RunError> {
    let Some(run) = get_tenant_driver(db)
        .expire_run_lease(tenant, run_id, now)
        .await?
    else {
        return Ok(None);
    };
    settle_finished_run(db, &run, now).await?;
    Ok(Some(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_bounded_and_expires_its_length_after_now() {
        assert!(LeaseDuration::new(Duration::from_millis(999)).is_err());
        assert!(LeaseDuration::new(LeaseDuration::MAX + Duration::from_secs(1)).is_err());
        let lease = LeaseDuration::new(LeaseDuration::MAX).unwrap();
        let now = DateTime::from_timestamp(1_795_600_800, 0).unwrap();
        assert_eq!(lease.expiry(now), now + TimeDelta::days(1));
        assert_eq!(
            LeaseDuration::DEFAULT.expiry(now),
            now + TimeDelta::seconds(60)
        );
        assert_eq!(
            LeaseDuration::DEFAULT.heartbeat_interval(),
            Duration::from_secs(20)
        );
    }
}
