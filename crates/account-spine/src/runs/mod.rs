//! Run use cases: admit, complete, list, get; heartbeats and the lease reaper in [`leases`].

pub mod leases;

use crate::authorize::check_capability;
use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::events::thresholds_crossed;
use crate::operations::Operation;
use crate::principal::{Actor, Principal};
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::runs::{self, AdmitRunRequest, RunError, RunPrincipal};
use account_engines::tenants;
use account_engines::types::{RunId, RunStatus, TenantId};
use account_engines::{ErrorCode, OffsetPage, Page};
use serde_json::{Value as Json, json};

pub use account_engines::runs::{
    MAX_RUN_ERROR_CHARS, MAX_RUN_METRIC, RunCompletion, RunFilter, RunSnapshot,
};

/// The daily-runs quota's code (as its refusal's).
const RUNS_PER_DAY: &str = "quota_runs_per_day";
/// The monthly-tokens quota's code (as its refusal's).
const TOKENS_PER_MONTH: &str = "quota_tokens_per_month";

/// Starts a run against the tenant's quotas, atomically, and audits it; tenant and actor come
/// from the principal. After commit it publishes [`DomainEvent::RunAdmitted`] and, when this
/// admission took the day's run counter across the plan's soft limit or 100 % of it,
/// [`DomainEvent::QuotaThresholdCrossed`]; a quota refusal publishes
/// [`DomainEvent::QuotaRefused`].
#[derive(Clone, Debug)]
pub struct AdmitRun {
    /// Worker to run.
    pub worker_id: String,
    /// What to do.
    pub task: String,
    /// Input payload.
    pub input: Option<Json>,
    /// Tokens to reserve against the month's quota until the run finishes (0: none). Runs
    /// that declare their estimate can never take the month past its quota together.
    pub token_estimate: i64,
}

impl Sealed for AdmitRun {}
impl UseCase for AdmitRun {
    type Output = RunSnapshot;
    const OPERATION: Operation = Operation::RunsAdmit;
    const CHECKS_OWN_CAPABILITY: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RunSnapshot, SpineError> {
        let principal = cx.principal()?;
        let run_id = RunId::new();
        // The audit row goes into the admission's own statement: one round trip.
        let audit = cx.audit_row(Change::of("run", run_id).after(json!({
            "worker_id": self.worker_id,
            "status": RunStatus::Queued,
            "token_estimate": self.token_estimate,
        })));
        let request = AdmitRunRequest {
            tenant_id: principal.tenant_id,
            principal: run_principal(principal),
            worker_id: self.worker_id.clone(),
            task: self.task.clone(),
            input: self.input.clone(),
            run_id,
            token_estimate: self.token_estimate,
            audit: Some(audit),
            lease: cx.spine.run_lease,
        };
        let runs::AdmittedRun { run, tenant } = match runs::admit_run(cx.db, request, cx.now).await
        {
            Ok(admitted) => admitted,
            // The statement checked the status ([`UseCase::CHECKS_OWN_CAPABILITY`]): refuse
            // as the executor's capability check would have.
            Err(RunError::TenantInactive { status }) => {
                check_capability(status, Self::OPERATION)?;
                return Err(RunError::TenantInactive { status }.into());
            }
            Err(other) => return Err(other.into()),
        };
        cx.publish(DomainEvent::RunAdmitted {
            tenant_id: run.tenant_id,
            run_id: run.id,
        });
        // The counters the admission's own update returned: this admission added one run to
        // the day.
        let (used, limit) = (
            i64::from(tenant.runs_today),
            i64::from(tenant.quotas.max_runs_per_day),
        );
        let warn_at = tenant.warn_at_percent;
        for event in thresholds_crossed(
            run.tenant_id,
            RUNS_PER_DAY,
            (used - 1, used),
            limit,
            warn_at,
        ) {
            cx.publish(event);
        }
        Ok(run)
    }

    fn refusal_events(&self, tenant: Option<TenantId>, error: &SpineError) -> Vec<DomainEvent> {
        match (tenant, error) {
            (
                Some(tenant_id),
                SpineError::Run(
                    refusal @ (RunError::DailyRunLimit { .. }
                    | RunError::MonthlyTokenLimit { .. }
                    | RunError::WorkerLimit { .. }
                    | RunError::ConcurrentRunLimit { .. }
                    | RunError::KeyConcurrentRunLimit { .. }),
                ),
            ) => vec![DomainEvent::QuotaRefused {
                tenant_id,
                quota: refusal.code(),
            }],
            _ => Vec::new(),
        }
    }
}

/// Who admits a run, as the engine needs it.
fn run_principal(principal: &Principal) -> RunPrincipal {
    match &principal.actor {
        Actor::ApiKey {
            key_id,
            allowed_workers,
            ..
        } => RunPrincipal::ApiKey {
            key_id: *key_id,
            allowed_workers: allowed_workers.clone(),
        },
        Actor::User { user_id, role } => RunPrincipal::User {
            user_id: *user_id,
            role: *role,
        },
    }
}

/// Records a run's results once. After commit it publishes [`DomainEvent::RunCompleted`] and,
/// when the run's tokens took the month's counter across the plan's soft limit or 100 % of it,
/// [`DomainEvent::QuotaThresholdCrossed`].
#[derive(Clone, Debug)]
pub struct CompleteRun {
    /// The run.
    pub run_id: RunId,
    /// Its results.
    pub completion: RunCompletion,
}

impl Sealed for CompleteRun {}
impl UseCase for CompleteRun {
    type Output = RunSnapshot;
    const OPERATION: Operation = Operation::RunsComplete;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RunSnapshot, SpineError> {
        let tenant_id = cx.tenant()?;
        let run = runs::complete_run(
            cx.db,
            tenant_id,
            self.run_id,
            self.completion.clone(),
            cx.now,
        )
        .await?;
        // The counter after this run's tokens, read while the increment's row lock is held
        // (so concurrent completions each see their own step).
        let tenant = tenants::snapshot(cx.db, tenant_id).await?;
        let after = json!({"status": run.status, "total_tokens": run.total_tokens, "cost_cents": run.cost_cents});
        cx.audit(Change::of("run", run.id).after(after)).await?;
        cx.publish(DomainEvent::RunCompleted {
            tenant_id: run.tenant_id,
            run_id: run.id,
            success: run.status == RunStatus::Completed,
        });
        let used = tenant.tokens_this_month;
        let before = used.saturating_sub(run.total_tokens);
        let limit = tenant.quotas.max_tokens_per_month;
        let warn_at = tenant.warn_at_percent;
        for event in thresholds_crossed(
            run.tenant_id,
            TOKENS_PER_MONTH,
            (before, used),
            limit,
            warn_at,
        ) {
            cx.publish(event);
        }
        Ok(run)
    }
}

/// The tenant's runs, newest first.
#[derive(Clone, Debug)]
pub struct ListRuns {
    /// Which runs.
    pub filter: RunFilter,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListRuns {}
impl UseCase for ListRuns {
    type Output = Page<RunSnapshot>;
    const OPERATION: Operation = Operation::RunsList;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<RunSnapshot>, SpineError> {
        Ok(runs::list_runs(cx.db, cx.tenant()?, &self.filter, self.page).await?)
    }
}

/// One run of the tenant.
#[derive(Clone, Copy, Debug)]
pub struct GetRun {
    /// The run.
    pub run_id: RunId,
}

impl Sealed for GetRun {}
impl UseCase for GetRun {
    type Output = RunSnapshot;
    const OPERATION: Operation = Operation::RunsGet;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RunSnapshot, SpineError> {
        Ok(runs::get_run(cx.db, cx.tenant()?, self.run_id).await?)
    }
}

impl Spine {
    /// Executes [`AdmitRun`].
    pub async fn admit_run(
        &self,
        principal: &Principal,
        request: AdmitRun,
    ) -> Result<RunSnapshot, SpineError> {
        self.execute(principal, request).await
    }

    /// Executes [`CompleteRun`].
    pub async fn complete_run(
        &self,
        principal: &Principal,
        run_id: RunId,
        completion: RunCompletion,
    ) -> Result<RunSnapshot, SpineError> {
        self.execute(principal, CompleteRun { run_id, completion })
            .await
    }

    /// Executes [`ListRuns`].
    pub async fn list_runs(
        &self,
        principal: &Principal,
        filter: &RunFilter,
        page: OffsetPage,
    ) -> Result<Page<RunSnapshot>, SpineError> {
        let filter = filter.clone();
        self.execute(principal, ListRuns { filter, page }).await
    }

    /// Executes [`GetRun`].
    pub async fn get_run(
        &self,
        principal: &Principal,
        run_id: RunId,
    ) -> Result<RunSnapshot, SpineError> {
        self.execute(principal, GetRun { run_id }).await
    }
}
