//! Run leases: a queued or running run holds one until `lease_expires_at`; its worker's
//! heartbeat renews it, and the reaper expires the runs whose lease lapsed.
//!
//! Every change is a conditional update on an unfinished run, so of a heartbeat, a completion
//! and an expiry racing on one run, the database lets exactly one finish it.

use super::{ACTIVE, RunSnapshot, snapshot};
use crate::{DriverError, TenantDriver};
use account_models::entities::worker_runs;
use account_models::{RunId, RunStatus, TenantId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};

/// The error text of every run the reaper expired.
pub const LEASE_EXPIRED: &str = "lease expired";

/// The predicate of the partial index `ix_worker_runs_lease_expires_at`, spelled exactly as
/// the migration creates it: both planners use a partial index only for a query whose
/// conditions imply the index's, and a bound parameter (as `is_in` would send) proves nothing
/// at planning time.
const UNFINISHED: &str = "status IN ('queued', 'running')";

/// A renewed lease: the run after the heartbeat, and whether this beat started it (its
/// first: the run was queued).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Heartbeat {
    /// The run, with its new lease.
    pub run: RunSnapshot,
    /// Whether the run was queued and this beat started it.
    pub started: bool,
}

/// A run whose lease lapsed, as the reaper's scan finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromQueryResult)]
#[non_exhaustive]
pub struct LapsedLease {
    /// The run's tenant.
    pub tenant_id: TenantId,
    /// The run.
    pub id: RunId,
    /// When its lease lapsed.
    pub lease_expires_at: DateTimeUtc,
}

/// The reaper's scan (see [`TenantDriver::fetch_lapsed_leases`]).
fn lapsed_scan(now: DateTimeUtc, limit: u64) -> sea_orm::Select<worker_runs::Entity> {
    use worker_runs::Column as C;
    worker_runs::Entity::find()
        .select_only()
        .columns([C::TenantId, C::Id, C::LeaseExpiresAt])
        .filter(Expr::cust(UNFINISHED))
        .filter(C::LeaseExpiresAt.lt(now))
        .order_by_asc(C::LeaseExpiresAt)
        .limit(limit)
}

impl TenantDriver<'_> {
    /// Renews the lease of the tenant's queued or running run until `lease_expires_at`. A
    /// queued run starts running: its first heartbeat says its worker picked it up (and sets
    /// `started_at`). `None` when the tenant has no such run or it finished.
    ///
    /// One statement for a running run (the hot path: every beat but the first), two for a
    /// queued one. Each is conditional on the status it changes, so a beat racing another
    /// beat, a completion or an expiry never overwrites a finished run, and of two racing
    /// first beats exactly one reports [`Heartbeat::started`] (the other renews after it).
    pub async fn heartbeat_run(
        &self,
        tenant: TenantId,
        id: RunId,
        lease_expires_at: DateTimeUtc,
        now: DateTimeUtc,
    ) -> Result<Option<Heartbeat>, DriverError> {
        if let Some(run) = self.renew_lease(tenant, id, lease_expires_at).await? {
            return Ok(Some(Heartbeat {
                run,
                started: false,
            }));
        }
        use worker_runs::Column as C;
        let started = worker_runs::Entity::update_many()
            .col_expr(C::Status, Expr::value(RunStatus::Running.as_str()))
            .col_expr(C::StartedAt, Expr::value(now))
            .col_expr(C::LeaseExpiresAt, Expr::value(lease_expires_at))
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.eq(id))
            .filter(C::Status.eq(RunStatus::Queued))
            .exec_with_returning(self.db.conn())
            .await?;
        if let Some(run) = started.into_iter().next() {
            return Ok(Some(Heartbeat {
                run: snapshot(run),
                started: true,
            }));
        }
        // Another first beat started it between our two statements: renew after it.
        let renewed = self.renew_lease(tenant, id, lease_expires_at).await?;
        Ok(renewed.map(|run| Heartbeat {
            run,
            started: false,
        }))
    }

    /// Moves a running run's lease to `lease_expires_at`.
    async fn renew_lease(
        &self,
        tenant: TenantId,
        id: RunId,
        lease_expires_at: DateTimeUtc,
    ) -> Result<Option<RunSnapshot>, DriverError> {
        use worker_runs::Column as C;
        let rows = worker_runs::Entity::update_many()
            .col_expr(C::LeaseExpiresAt, Expr::value(lease_expires_at))
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.eq(id))
            .filter(C::Status.eq(RunStatus::Running))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// Queued or running runs of every tenant whose lease lapsed before `now`, the longest
    /// lapsed first, at most `limit`. The reaper's scan, and on purpose the one run query that
    /// spans tenants: each run it names is then expired by [`TenantDriver::expire_run_lease`],
    /// scoped to its tenant. Served by the partial index `ix_worker_runs_lease_expires_at`, so
    /// it reads only runs in flight. One statement.
    pub async fn fetch_lapsed_leases(
        &self,
        now: DateTimeUtc,
        limit: u64,
    ) -> Result<Vec<LapsedLease>, DriverError> {
        let rows = lapsed_scan(now, limit)
            .into_model::<LapsedLease>()
            .all(self.db.conn())
            .await?;
        Ok(rows)
    }

    /// Expires the tenant's run if its lease lapsed before `now` and it is still queued or
    /// running: `crashed`, unsuccessful, error [`LEASE_EXPIRED`], completed now. `None` when
    /// nothing changed (no such run, it finished, or a heartbeat renewed it), so of an expiry
    /// racing a completion or another expiry exactly one wins. One statement.
    pub async fn expire_run_lease(
        &self,
        tenant: TenantId,
        id: RunId,
        now: DateTimeUtc,
    ) -> Result<Option<RunSnapshot>, DriverError> {
        use worker_runs::Column as C;
        let rows = worker_runs::Entity::update_many()
            .col_expr(C::Status, Expr::value(RunStatus::Crashed.as_str()))
            .col_expr(C::Success, Expr::value(false))
            .col_expr(C::Error, Expr::value(LEASE_EXPIRED))
            .col_expr(C::CompletedAt, Expr::value(now))
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.eq(id))
            .filter(C::Status.is_in(ACTIVE))
            .filter(C::LeaseExpiresAt.lt(now))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, QueryTrait};

    /// The scan carries the index's predicate verbatim (no parameters) on both backends;
    /// `migrations/tests/schema.rs` shows both planners then use the index.
    #[test]
    fn the_scan_repeats_the_partial_index_predicate() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let sql = lapsed_scan(DateTimeUtc::UNIX_EPOCH, 100)
                .build(backend)
                .to_string();
            assert!(sql.contains(&format!("WHERE ({UNFINISHED}) AND")), "{sql}");
        }
        assert_eq!(
            ACTIVE.map(RunStatus::as_str),
            ["queued", "running"],
            "the literal predicate names the statuses that hold a slot"
        );
    }
}
