//! The retention purge: a tenant's audit rows older than its retention
//! (`tenants.audit_retention_days`, set from its plan: free 30 days, pro 365, enterprise
//! 2,555; none means kept forever) are deleted, oldest first, in batches of one statement and
//! one short transaction each ([`PurgeAuditLog`]), so no lock is held for long and a SQLite
//! writer waits at most one batch. The batch that finds nothing older left writes the purge's
//! one audit row (`audit.purged`, by the system): how many rows this purge removed, and the
//! cutoff. Rows with no tenant (platform-wide actions) are never purged.
//!
//! On PostgreSQL the rows are append-only by a trigger that lets only a transaction which
//! allowed it for itself delete them: each batch's, and nothing else in the application.
//!
//! A host runs it with [`Spine::spawn_audit_purger`] (the API binary does, hourly), or calls
//! [`Spine::purge_expired_audit_logs`] from its own scheduler. Several purgers may run at
//! once: a row is deleted once, and counted by the purge that deleted it.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::audit::{self, PurgeCutoff};
use account_engines::types::TenantId;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tenants read per page while a pass walks every tenant with a retention.
const TENANTS_PER_PAGE: u64 = 500;

/// One batch of a tenant's purge: deletes at most `batch` rows older than the cutoff, in a
/// transaction of its own. The first batch computes the cutoff from the tenant's retention
/// and the clock; the batches after it carry that cutoff on, so one purge has one cutoff.
/// The batch that deletes fewer than `batch` rows is the last; it writes the purge's audit
/// row when the purge removed anything.
///
/// A platform job: [`Spine::purge_audit_log`] runs it; no principal may (its authority is
/// [`crate::Authority::System`]).
#[derive(Clone, Copy, Debug)]
pub struct PurgeAuditLog {
    tenant_id: TenantId,
    batch: u64,
    /// The cutoff and the rows removed by the batches before this one.
    progress: Option<(PurgeCutoff, u64)>,
}

/// What one batch did.
#[derive(Clone, Copy, Debug)]
pub struct PurgeBatch {
    /// The purge's cutoff (`None`: the tenant's rows are kept forever, or there is no such
    /// tenant; nothing was deleted).
    cutoff: Option<PurgeCutoff>,
    /// Rows this batch deleted.
    removed: u64,
}

impl Sealed for PurgeAuditLog {}
impl UseCase for PurgeAuditLog {
    type Output = PurgeBatch;
    const OPERATION: Operation = Operation::AuditPurge;

    async fn run(&self, cx: &mut Context<'_>) -> Result<PurgeBatch, SpineError> {
        let tenant = self.tenant_id;
        let (cutoff, removed_before) = match self.progress {
            Some(progress) => progress,
            None => match audit::retention_cutoff(cx.db, tenant, cx.now).await? {
                Some(cutoff) => (cutoff, 0),
                None => {
                    return Ok(PurgeBatch {
                        cutoff: None,
                        removed: 0,
                    });
                }
            },
        };
        let removed = audit::purge_before(cx.db, tenant, cutoff.before, self.batch).await?;
        let total = removed_before + removed;
        // The last batch reports the whole purge; a purge that found nothing says nothing.
        if removed < self.batch && total > 0 {
            let after = json!({
                "removed": total,
                "before": cutoff.before,
                "retention_days": cutoff.days,
            });
            let change = Change::of("audit_log", tenant)
                .reason("retention")
                .after(after)
                .in_tenant(tenant);
            cx.audit(change).await?;
        }
        Ok(PurgeBatch {
            cutoff: Some(cutoff),
            removed,
        })
    }
}

/// What a tenant's purge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditPurged {
    /// Rows deleted.
    pub removed: u64,
    /// Rows written before this instant were deleted (`None`: the tenant's rows are kept
    /// forever, or there is no such tenant).
    pub before: Option<DateTime<Utc>>,
}

/// What one pass over every tenant did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditPurgePass {
    /// Tenants with a retention, each purged.
    pub tenants: u64,
    /// Rows deleted, over every tenant.
    pub removed: u64,
    /// Tenants whose purge failed (logged; the next pass tries again).
    pub failed: u64,
}

/// How [`Spine::spawn_audit_purger`] purges: a pass over every tenant every `interval`,
/// deleting at most `batch` rows per statement and transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditPurgeSettings {
    /// Time between passes.
    pub interval: Duration,
    /// Most rows one batch deletes.
    pub batch: u64,
}

impl Default for AuditPurgeSettings {
    /// A pass an hour (retention is counted in days), batches of 1,000 rows (a few
    /// milliseconds of one statement each).
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3_600),
            batch: 1_000,
        }
    }
}

impl AuditPurgeSettings {
    /// The same settings passing every `interval`.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The same settings deleting at most `batch` rows per batch.
    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch;
        self
    }
}

/// The purger task [`Spine::spawn_audit_purger`] started. [`AuditPurgerHandle::shutdown`]
/// stops it once the tenant being purged, if any, is done (a few short transactions);
/// dropping the handle stops it the same way without waiting.
#[derive(Debug)]
pub struct AuditPurgerHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl AuditPurgerHandle {
    /// Stops the purger and waits until its task ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(%error, "the audit purger ended abnormally");
        }
    }
}

impl Drop for AuditPurgerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Spine {
    /// Purges the tenant's audit rows older than its retention by the clock's now: batches of
    /// at most `batch` rows ([`PurgeAuditLog`]), each in a transaction of its own, until one
    /// finds nothing older left; audited once (`audit.purged`) when anything was removed. A
    /// failed batch ends the purge with its error: what earlier batches deleted stays
    /// deleted, unaudited, and the next purge goes on from there.
    pub async fn purge_audit_log(
        &self,
        tenant_id: TenantId,
        batch: u64,
    ) -> Result<AuditPurged, SpineError> {
        let batch = batch.max(1);
        let mut purge = PurgeAuditLog {
            tenant_id,
            batch,
            progress: None,
        };
        loop {
            let done = self.execute_as_system(tenant_id, purge).await?;
            let Some(cutoff) = done.cutoff else {
                return Ok(AuditPurged::default());
            };
            let removed = purge.progress.map_or(0, |(_, before)| before) + done.removed;
            if done.removed < batch {
                return Ok(AuditPurged {
                    removed,
                    before: Some(cutoff.before),
                });
            }
            purge.progress = Some((cutoff, removed));
        }
    }

    /// One pass of the purge over every tenant with a retention (read a page of tenants at a
    /// time), each purged with [`Spine::purge_audit_log`]. A tenant whose purge fails is
    /// logged and counted, and the pass goes on; only a failed read of the tenants is an
    /// error. For hosts that schedule it themselves; [`Spine::spawn_audit_purger`] calls it on
    /// an interval.
    pub async fn purge_expired_audit_logs(&self, batch: u64) -> Result<AuditPurgePass, SpineError> {
        self.purge_pass(batch, None).await
    }

    /// [`Spine::purge_expired_audit_logs`], ending early (between two tenants, never inside a
    /// batch) once `stopped` says so.
    async fn purge_pass(
        &self,
        batch: u64,
        stopped: Option<&watch::Receiver<bool>>,
    ) -> Result<AuditPurgePass, SpineError> {
        let mut pass = AuditPurgePass::default();
        let mut after = None;
        'pages: loop {
            let page =
                audit::tenants_with_retention(self.pool_db(), after, TENANTS_PER_PAGE).await?;
            for tenant in &page {
                if stopped.is_some_and(|stopped| *stopped.borrow()) {
                    break 'pages;
                }
                pass.tenants += 1;
                match self.purge_audit_log(tenant.tenant_id, batch).await {
                    Ok(purged) => pass.removed += purged.removed,
                    Err(error) => {
                        tracing::warn!(
                            %error,
                            tenant_id = %tenant.tenant_id,
                            "purging a tenant's expired audit rows failed; the next pass retries"
                        );
                        pass.failed += 1;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() as u64 == TENANTS_PER_PAGE => {
                    after = Some(last.tenant_id);
                }
                _ => break,
            }
        }
        if pass.removed > 0 || pass.failed > 0 {
            tracing::info!(
                tenants = pass.tenants,
                removed = pass.removed,
                failed = pass.failed,
                "purged audit rows past their retention"
            );
        }
        Ok(pass)
    }

    /// Starts the purger on the current tokio runtime: a pass of
    /// [`Spine::purge_expired_audit_logs`] every `settings.interval` (the first at once),
    /// until [`AuditPurgerHandle::shutdown`] (or the handle's drop). A failed pass is logged
    /// and the next one tries again.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn_audit_purger(&self, settings: AuditPurgeSettings) -> AuditPurgerHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(purge_periodically(self.clone(), settings, stopped));
        AuditPurgerHandle {
            stop,
            task: Some(task),
        }
    }
}

/// The purger's loop: a pass per tick until told to stop. A stop takes effect between
/// passes, or between two tenants of a pass: a tenant's purge is never cut short.
async fn purge_periodically(
    spine: Spine,
    settings: AuditPurgeSettings,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(settings.interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
        if let Err(error) = spine.purge_pass(settings.batch, Some(&stopped)).await {
            tracing::warn!(%error, "the audit purger's pass failed; retrying next interval");
        }
    }
}
