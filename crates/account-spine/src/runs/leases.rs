//! Run leases: a run holds a lease from its admission ([`Spine::with_run_lease`], 60 s by
//! default), its worker renews it with [`HeartbeatRun`] about every third of that, and the
//! reaper expires the runs whose lease lapsed ([`ExpireRunLease`], one short transaction
//! each, audited `run.lease_expired`), which frees their concurrency slots.
//!
//! The reaper runs in the host: [`Spine::spawn_reaper`] starts it as a task on the current
//! tokio runtime, or a host with a scheduler of its own calls [`Spine::reap_expired_runs`] on
//! its own ticks. Several reapers (one per API process) may run at once: every expiry is a
//! conditional update, so each lapsed run is expired, settled and audited exactly once.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::runs::RunSnapshot;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::runs::leases::{self, LEASE_EXPIRED};
use account_engines::types::{RunId, TenantId};
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use account_engines::runs::leases::{InvalidLeaseDuration, LeaseDuration};

/// Renews the lease of one of the tenant's queued or running runs, for
/// [`Spine::run_lease`] from now; the first heartbeat moves a queued run to `running`. Only
/// that first one is audited (`run.started`): a renewal changes nothing but the lease, and a
/// row every 20 s per run would drown the log. A finished run, one the reaper expired
/// included, is refused with `run_already_finished` (409): its worker should stop.
#[derive(Clone, Copy, Debug)]
pub struct HeartbeatRun {
    /// The run.
    pub run_id: RunId,
}

impl Sealed for HeartbeatRun {}
impl UseCase for HeartbeatRun {
    type Output = RunSnapshot;
    const OPERATION: Operation = Operation::RunsHeartbeat;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RunSnapshot, SpineError> {
        let tenant = cx.tenant()?;
        let lease = cx.spine.run_lease;
        let beat = leases::heartbeat_run(cx.db, tenant, self.run_id, lease, cx.now).await?;
        // Only the beat that started the run is a change worth a row (see the type's doc).
        if beat.started {
            let after =
                json!({"status": beat.run.status, "lease_expires_at": beat.run.lease_expires_at});
            cx.audit(Change::of("run", beat.run.id).after(after))
                .await?;
        }
        Ok(beat.run)
    }
}

/// Expires one run whose lease lapsed: `crashed`, unsuccessful, error `lease expired`,
/// settled like any finished run (its slot is free again), audited `run.lease_expired` by the
/// system, and [`DomainEvent::RunCompleted`] (unsuccessful) published after commit. Answers
/// `None` when the run needed no expiry (it finished, its lease was renewed, or it does not
/// exist): of an expiry racing a completion or another reaper, exactly one finishes the run.
///
/// A platform job: [`Spine::expire_run_lease`] and the reaper run it; no principal may
/// (its authority is [`crate::Authority::System`]).
#[derive(Clone, Copy, Debug)]
pub struct ExpireRunLease {
    /// The run's tenant.
    pub tenant_id: TenantId,
    /// The run.
    pub run_id: RunId,
}

impl Sealed for ExpireRunLease {}
impl UseCase for ExpireRunLease {
    type Output = Option<RunSnapshot>;
    const OPERATION: Operation = Operation::RunsExpireLease;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Option<RunSnapshot>, SpineError> {
        let Some(run) = leases::expire_run(cx.db, self.tenant_id, self.run_id, cx.now).await?
        else {
            return Ok(None);
        };
        let after = json!({
            "status": run.status,
            "error": run.error,
            "lease_expires_at": run.lease_expires_at,
        });
        let change = Change::of("run", run.id)
            .after(after)
            .reason(LEASE_EXPIRED)
            .in_tenant(run.tenant_id);
        cx.audit(change).await?;
        cx.publish(DomainEvent::RunCompleted {
            tenant_id: run.tenant_id,
            run_id: run.id,
            success: false,
        });
        Ok(Some(run))
    }
}

/// What one pass of the reaper did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reaped {
    /// Runs it expired, each in its own committed transaction.
    pub expired: Vec<RunId>,
    /// Lapsed runs it found finished or renewed by the time it got to them.
    pub skipped: usize,
    /// Expiries that failed (logged; the runs are still lapsed and the next pass retries).
    pub failed: usize,
    /// Whether the scan filled its batch, so more lapsed runs may be waiting.
    pub more: bool,
}

/// How the reaper [`Spine::spawn_reaper`] starts runs: every `interval`, one pass of at most
/// `batch` runs (another at once while a pass fills its batch and expires something).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaperSettings {
    /// Time between passes.
    pub interval: Duration,
    /// Most runs one pass expires.
    pub batch: u64,
}

impl Default for ReaperSettings {
    /// A pass every 10 s of at most 100 runs: a dead worker's slot is back within the lease
    /// and 10 s.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            batch: 100,
        }
    }
}

impl ReaperSettings {
    /// The same settings passing every `interval`.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The same settings expiring at most `batch` runs a pass.
    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch;
        self
    }
}

/// The reaper task [`Spine::spawn_reaper`] started. [`ReaperHandle::shutdown`] stops it once
/// the pass in progress, if any, is done (at most a batch of short transactions); dropping the
/// handle stops it the same way without waiting.
#[derive(Debug)]
pub struct ReaperHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ReaperHandle {
    /// Stops the reaper and waits until its task ended: a pass in progress is finished first,
    /// so no expiry is cut short.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(%error, "the lease reaper ended abnormally");
        }
    }
}

impl Drop for ReaperHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Spine {
    /// The same spine admitting runs with, and renewing them by, leases of `lease`.
    pub fn with_run_lease(mut self, lease: LeaseDuration) -> Self {
        self.run_lease = lease;
        self
    }

    /// The lease a run gets at admission and at each heartbeat; workers should heartbeat
    /// every [`LeaseDuration::heartbeat_interval`] of it.
    pub fn run_lease(&self) -> LeaseDuration {
        self.run_lease
    }

    /// Executes [`HeartbeatRun`].
    pub async fn heartbeat_run(
        &self,
        principal: &Principal,
        run_id: RunId,
    ) -> Result<RunSnapshot, SpineError> {
        self.execute(principal, HeartbeatRun { run_id }).await
    }

    /// Executes [`ExpireRunLease`] as the system, in a transaction of its own.
    pub async fn expire_run_lease(
        &self,
        tenant_id: TenantId,
        run_id: RunId,
    ) -> Result<Option<RunSnapshot>, SpineError> {
        let expire = ExpireRunLease { tenant_id, run_id };
        self.execute_as_system(tenant_id, expire).await
    }

    /// One pass of the reaper: finds at most `batch` runs of any tenant whose lease lapsed by
    /// the clock's now (one read, served by a partial index of runs in flight), then expires
    /// each in a transaction of its own ([`Spine::expire_run_lease`]). An expiry that fails is
    /// logged and counted, and the pass goes on; only a failed scan is an error. For hosts
    /// that schedule it themselves; [`Spine::spawn_reaper`] calls it on an interval.
    pub async fn reap_expired_runs(&self, batch: u64) -> Result<Reaped, SpineError> {
        let now = self.clock.now();
        let lapsed = leases::lapsed_leases(self.pool_db(), now, batch).await?;
        let mut reaped = Reaped {
            more: u64::try_from(lapsed.len()).is_ok_and(|found| found >= batch),
            ..Reaped::default()
        };
        for run in lapsed {
            match self.expire_run_lease(run.tenant_id, run.id).await {
                Ok(Some(expired)) => reaped.expired.push(expired.id),
                Ok(None) => reaped.skipped += 1,
                Err(error) => {
                    tracing::warn!(
                        %error,
                        tenant_id = %run.tenant_id,
                        run_id = %run.id,
                        "expiring a lapsed run failed; the next pass retries it"
                    );
                    reaped.failed += 1;
                }
            }
        }
        if !reaped.expired.is_empty() {
            tracing::info!(
                expired = reaped.expired.len(),
                skipped = reaped.skipped,
                failed = reaped.failed,
                "expired runs whose lease lapsed"
            );
        }
        Ok(reaped)
    }

    /// Starts the reaper on the current tokio runtime: a pass of [`Spine::reap_expired_runs`]
    /// every `settings.interval`, each followed by [`Spine::purge_expired_idempotency_keys`],
    /// [`Spine::expire_limit_overrides`] and [`Spine::advance_trials`] (and the purge of
    /// deleted projects), until [`ReaperHandle::shutdown`] (or the handle's drop). A failed
    /// pass is logged and the next one tries again.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn_reaper(&self, settings: ReaperSettings) -> ReaperHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(reap_periodically(self.clone(), settings, stopped));
        ReaperHandle {
            stop,
            task: Some(task),
        }
    }
}

/// Deleted projects one reaper pass purges at most (each in steps of [`PURGE_BATCH`] rows).
const PROJECTS_PER_PASS: u64 = 10;

/// Rows one step of a project's purge deletes at most: one statement of a few milliseconds,
/// so no lock is held for long and a SQLite writer waits at most that.
const PURGE_BATCH: u64 = 1_000;

/// The reaper's loop: a pass per tick, another at once while passes fill their batch and make
/// progress, until told to stop. A pass is never cut short: a stop takes effect after it.
async fn reap_periodically(
    spine: Spine,
    settings: ReaperSettings,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(settings.interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let batch = settings.batch.max(1);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        loop {
            if *stopped.borrow() {
                return;
            }
            match spine.reap_expired_runs(batch).await {
                Ok(reaped) if reaped.more && !reaped.expired.is_empty() => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "the lease reaper's scan failed; retrying next interval");
                    break;
                }
            }
        }
        // The same periodic job keeps the idempotency keys' table to its keeping time.
        if let Err(error) = spine.purge_expired_idempotency_keys().await {
            tracing::warn!(%error, "purging expired idempotency keys failed; retrying next interval");
        }
        // ... and reverts limit overrides that expired.
        if let Err(error) = spine.expire_limit_overrides(batch).await {
            tracing::warn!(%error, "reverting expired limit overrides failed; retrying next interval");
        }
        // ... and ends trials and graces that ran out (each move once across instances).
        if let Err(error) = spine.advance_trials(batch).await {
            tracing::warn!(%error, "advancing trials failed; retrying next interval");
        }
        // ... and purges deleted projects whose restore window closed (bounded batches).
        if let Err(error) = spine
            .purge_deleted_projects(PROJECTS_PER_PASS, PURGE_BATCH)
            .await
        {
            tracing::warn!(%error, "purging deleted projects failed; retrying next interval");
        }
    }
}
