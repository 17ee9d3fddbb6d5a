//! `worker_runs`: admission against the tenant's quotas (`runs/admission.rs`), completion,
//! listing. Leases (heartbeats and the reaper's expiry) are in [`leases`].

mod admission;
pub mod leases;

use crate::{DriverError, KeysetPage, OffsetPage, Page, TenantDriver};
use account_models::entities::worker_runs;
use account_models::{ApiKeyId, RunId, RunStatus, TenantId, UserId};
pub use admission::{Admission, AdmissionUsage, KeyRuns, RunAdmission};
use sea_orm::prelude::{Date, DateTimeUtc, Json};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// Statuses that count as concurrent runs.
const ACTIVE: [RunStatus; 2] = [RunStatus::Queued, RunStatus::Running];

/// A run as the engines see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunSnapshot {
    /// Id.
    pub id: RunId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Worker.
    pub worker_id: String,
    /// Task.
    pub task: String,
    /// Starting key.
    pub api_key_id: Option<ApiKeyId>,
    /// Starting user.
    pub user_id: Option<UserId>,
    /// Status.
    pub status: RunStatus,
    /// Outcome, once finished.
    pub success: Option<bool>,
    /// Error of a failed run.
    pub error: Option<String>,
    /// Tokens used.
    pub total_tokens: i64,
    /// Latency in milliseconds.
    pub total_latency_ms: i64,
    /// Cost in cents.
    pub cost_cents: i64,
    /// Tokens reserved at admission (released when it finishes).
    pub token_estimate: i64,
    /// Admission time.
    pub created_at: DateTimeUtc,
    /// Completion time.
    pub completed_at: Option<DateTimeUtc>,
    /// When its worker first reported (its first heartbeat).
    pub started_at: Option<DateTimeUtc>,
    /// Until when its worker is known to be alive; the reaper expires it after that.
    pub lease_expires_at: Option<DateTimeUtc>,
}

/// How many runs are queued or running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunCountSnapshot {
    /// The count.
    pub count: u64,
}

/// The periods the counters are kept for, from the caller's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsagePeriod {
    /// Today (UTC).
    pub day: Date,
    /// The first day of this month (UTC).
    pub month: Date,
}

/// A run to insert.
#[derive(Clone, Debug)]
pub struct NewRun {
    /// Id to create it with.
    pub id: RunId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Worker.
    pub worker_id: String,
    /// Task.
    pub task: String,
    /// Starting key.
    pub api_key_id: Option<ApiKeyId>,
    /// Starting user.
    pub user_id: Option<UserId>,
    /// Input payload.
    pub input: Option<Json>,
    /// The run this one retries.
    pub parent_run_id: Option<RunId>,
    /// Attempt number, from 1.
    pub attempt: i32,
    /// Tokens to reserve against the month's quota until it finishes.
    pub token_estimate: i64,
    /// Until when its lease runs: admission's `now` plus the lease duration.
    pub lease_expires_at: DateTimeUtc,
}

/// A finished run's results.
#[derive(Clone, Debug, Default)]
pub struct RunCompletion {
    /// Whether it succeeded (completed) or not (failed).
    pub success: bool,
    /// Output payload.
    pub output: Option<Json>,
    /// Replay token.
    pub replay_token: Option<Json>,
    /// Error text.
    pub error: Option<String>,
    /// Tokens used.
    pub total_tokens: i64,
    /// Latency in milliseconds.
    pub total_latency_ms: i64,
    /// Stages completed.
    pub stages_completed: i32,
    /// Recoveries performed.
    pub recoveries: i32,
    /// Policy violations.
    pub policy_violations: i32,
    /// Cost in cents.
    pub cost_cents: i64,
}

/// Filters for run lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only this worker.
    pub worker_id: Option<String>,
    /// Only runs started with this key.
    pub api_key_id: Option<ApiKeyId>,
}

impl RunFilter {
    /// Only runs in `status`.
    pub fn with_status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs of `worker_id`.
    pub fn with_worker(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = Some(worker_id.into());
        self
    }

    /// Only runs started with `key`.
    pub fn with_api_key(mut self, key: ApiKeyId) -> Self {
        self.api_key_id = Some(key);
        self
    }
}

fn snapshot(m: worker_runs::Model) -> RunSnapshot {
    RunSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        worker_id: m.worker_id,
        task: m.task,
        api_key_id: m.api_key_id,
        user_id: m.user_id,
        status: m.status,
        success: m.success,
        error: m.error,
        total_tokens: m.total_tokens,
        total_latency_ms: m.total_latency_ms,
        cost_cents: m.cost_cents,
        token_estimate: m.token_estimate,
        created_at: m.created_at,
        completed_at: m.completed_at,
        started_at: m.started_at,
        lease_expires_at: m.lease_expires_at,
    }
}

/// The row an admitted run is inserted as (queued).
pub(crate) fn run_model(run: NewRun, now: DateTimeUtc) -> worker_runs::ActiveModel {
    worker_runs::ActiveModel {
        id: Set(run.id),
        tenant_id: Set(run.tenant_id),
        worker_id: Set(run.worker_id),
        api_key_id: Set(run.api_key_id),
        user_id: Set(run.user_id),
        task: Set(run.task),
        input: Set(run.input),
        status: Set(RunStatus::Queued),
        success: Set(None),
        error: Set(None),
        output: Set(None),
        replay_token: Set(None),
        total_tokens: Set(0),
        total_latency_ms: Set(0),
        stages_completed: Set(0),
        recoveries: Set(0),
        policy_violations: Set(0),
        cost_cents: Set(0),
        parent_run_id: Set(run.parent_run_id),
        attempt: Set(run.attempt),
        created_at: Set(now),
        started_at: Set(None),
        completed_at: Set(None),
        token_estimate: Set(run.token_estimate),
        lease_expires_at: Set(Some(run.lease_expires_at)),
    }
}

fn filtered(tenant: TenantId, filter: &RunFilter) -> sea_orm::Select<worker_runs::Entity> {
    let mut query = worker_runs::Entity::find().filter(worker_runs::Column::TenantId.eq(tenant));
    if let Some(status) = filter.status {
        query = query.filter(worker_runs::Column::Status.eq(status));
    }
    if let Some(worker) = &filter.worker_id {
        query = query.filter(worker_runs::Column::WorkerId.eq(worker.as_str()));
    }
    if let Some(key) = filter.api_key_id {
        query = query.filter(worker_runs::Column::ApiKeyId.eq(key));
    }
    query
}

impl TenantDriver<'_> {
    /// Runs queued or running for the tenant.
    pub async fn count_running_runs(
        &self,
        tenant: TenantId,
    ) -> Result<RunCountSnapshot, DriverError> {
        let count = worker_runs::Entity::find()
            .filter(worker_runs::Column::TenantId.eq(tenant))
            .filter(worker_runs::Column::Status.is_in(ACTIVE))
            .count(self.db.conn())
            .await?;
        Ok(RunCountSnapshot { count })
    }

    /// The tenant's run with this id.
    pub async fn fetch_run_by_id(
        &self,
        tenant: TenantId,
        id: RunId,
    ) -> Result<Option<RunSnapshot>, DriverError> {
        let row = worker_runs::Entity::find()
            .filter(worker_runs::Column::TenantId.eq(tenant))
            .filter(worker_runs::Column::Id.eq(id))
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// Records a run's results once: only a queued or running run changes (a second
    /// completion returns `None`; the database also refuses to rewrite finished runs).
    pub async fn update_run_completed(
        &self,
        tenant: TenantId,
        id: RunId,
        completion: RunCompletion,
        now: DateTimeUtc,
    ) -> Result<Option<RunSnapshot>, DriverError> {
        use worker_runs::Column as C;
        let status = if completion.success {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        };
        let rows = worker_runs::Entity::update_many()
            .col_expr(C::Status, Expr::value(status.as_str()))
            .col_expr(C::Success, Expr::value(completion.success))
            .col_expr(C::Output, Expr::value(completion.output))
            .col_expr(C::ReplayToken, Expr::value(completion.replay_token))
            .col_expr(C::Error, Expr::value(completion.error))
            .col_expr(C::TotalTokens, Expr::value(completion.total_tokens))
            .col_expr(C::TotalLatencyMs, Expr::value(completion.total_latency_ms))
            .col_expr(C::StagesCompleted, Expr::value(completion.stages_completed))
            .col_expr(C::Recoveries, Expr::value(completion.recoveries))
            .col_expr(
                C::PolicyViolations,
                Expr::value(completion.policy_violations),
            )
            .col_expr(C::CostCents, Expr::value(completion.cost_cents))
            .col_expr(C::CompletedAt, Expr::value(now))
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.eq(id))
            .filter(C::Status.is_in(ACTIVE))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// Runs of the tenant, newest first, with the total: unfiltered, the tenant row's run
    /// total (bumped by admission; no count); filtered, counted.
    pub async fn fetch_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        page: OffsetPage,
    ) -> Result<Page<RunSnapshot>, DriverError> {
        let total = if *filter == RunFilter::default() {
            crate::tenants::fetch_totals(self.db, tenant).await?.runs
        } else {
            filtered(tenant, filter).count(self.db.conn()).await?
        };
        let rows = filtered(tenant, filter)
            .order_by_desc(worker_runs::Column::CreatedAt)
            .order_by_desc(worker_runs::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(snapshot).collect(),
            total,
            page,
        ))
    }

    /// Runs of the tenant, newest first, continuing after `after` (no total; for tenants
    /// with many runs, where offsets get slow).
    pub async fn fetch_runs_after(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        after: Option<(DateTimeUtc, RunId)>,
        limit: u64,
    ) -> Result<KeysetPage<RunSnapshot, (DateTimeUtc, RunId)>, DriverError> {
        use worker_runs::Column as C;
        let mut query = filtered(tenant, filter);
        if let Some((created_at, id)) = after {
            query = query.filter(
                Condition::any().add(C::CreatedAt.lt(created_at)).add(
                    Condition::all()
                        .add(C::CreatedAt.eq(created_at))
                        .add(C::Id.lt(id)),
                ),
            );
        }
        let rows = query
            .order_by_desc(C::CreatedAt)
            .order_by_desc(C::Id)
            .limit(limit.saturating_add(1))
            .all(self.db.conn())
            .await?;
        Ok(KeysetPage::from_overfetched(rows, limit, |r| (r.created_at, r.id)).map(snapshot))
    }
}
