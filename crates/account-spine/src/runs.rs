//! Run use cases: admit, complete, list, get.

use crate::events::thresholds_crossed;
use crate::operations::Operation;
use crate::principal::{Actor, Principal};
use crate::use_case::Subject;
use crate::{DomainEvent, Spine, SpineError};
use account_engines::runs::{self, AdmitRunRequest, RunError, RunPrincipal};
use account_engines::tenants;
use account_engines::types::RunId;
use account_engines::{ErrorCode, OffsetPage, Page};
use serde_json::{Value as Json, json};

pub use account_engines::runs::{
    MAX_RUN_ERROR_CHARS, MAX_RUN_METRIC, RunCompletion, RunFilter, RunSnapshot,
};

/// The daily-runs quota's code (as its refusal's).
const RUNS_PER_DAY: &str = "quota_runs_per_day";
/// The monthly-tokens quota's code (as its refusal's).
const TOKENS_PER_MONTH: &str = "quota_tokens_per_month";

/// A request to start a run; tenant and actor come from the principal.
#[derive(Clone, Debug)]
pub struct AdmitRun {
    /// Worker to run.
    pub worker_id: String,
    /// What to do.
    pub task: String,
    /// Input payload.
    pub input: Option<Json>,
}

impl Spine {
    /// Admits a run against the tenant's quotas, atomically, and audits it. After commit it
    /// publishes [`DomainEvent::RunAdmitted`] and, when this admission took the day's run
    /// counter across 80 % or 100 % of its limit, [`DomainEvent::QuotaThresholdCrossed`].
    pub async fn admit_run(
        &self,
        principal: &Principal,
        request: AdmitRun,
    ) -> Result<RunSnapshot, SpineError> {
        let operation = Operation::RunsAdmit;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            let run_principal = match &principal.actor {
                Actor::ApiKey {
                    key_id,
                    allowed_workers,
                    max_concurrent_runs,
                    ..
                } => RunPrincipal::ApiKey {
                    key_id: *key_id,
                    allowed_workers: allowed_workers.clone(),
                    max_concurrent_runs: *max_concurrent_runs,
                },
                Actor::User { user_id, role } => RunPrincipal::User {
                    user_id: *user_id,
                    role: *role,
                },
            };
            let outcome = write_use_case!(self, principal, operation, |db| {
                let runs::AdmittedRun { run, tenant } = runs::admit_run(
                    db,
                    AdmitRunRequest {
                        tenant_id: principal.tenant_id,
                        principal: run_principal.clone(),
                        worker_id: request.worker_id.clone(),
                        task: request.task.clone(),
                        input: request.input.clone(),
                    },
                    now,
                )
                .await?;
                // The counters the admission's own update returned: this admission added
                // one run to the day.
                let (used, limit) = (
                    i64::from(tenant.runs_today),
                    i64::from(tenant.quotas.max_runs_per_day),
                );
                let crossed =
                    thresholds_crossed(run.tenant_id, RUNS_PER_DAY, used - 1, used, limit);
                let after = json!({"worker_id": run.worker_id, "status": run.status});
                self.audit(
                    db,
                    principal,
                    operation,
                    "run",
                    &run.id.to_string(),
                    None,
                    Some(after),
                    now,
                )
                .await?;
                Ok((run, crossed))
            });
            match outcome {
                Ok((run, crossed)) => {
                    self.events.publish(&DomainEvent::RunAdmitted {
                        tenant_id: run.tenant_id,
                        run_id: run.id,
                    });
                    for event in &crossed {
                        self.events.publish(event);
                    }
                    Ok(run)
                }
                Err(error) => {
                    if let SpineError::Run(
                        refusal @ (RunError::DailyRunLimit { .. }
                        | RunError::MonthlyTokenLimit { .. }
                        | RunError::ConcurrentRunLimit { .. }
                        | RunError::KeyConcurrentRunLimit { .. }),
                    ) = &error
                    {
                        self.events.publish(&DomainEvent::QuotaRefused {
                            tenant_id: principal.tenant_id,
                            quota: refusal.code(),
                        });
                    }
                    Err(error)
                }
            }
        })
        .await
    }

    /// Records a run's results once. After commit it publishes [`DomainEvent::RunCompleted`]
    /// and, when the run's tokens took the month's counter across 80 % or 100 % of its limit,
    /// [`DomainEvent::QuotaThresholdCrossed`].
    pub async fn complete_run(
        &self,
        principal: &Principal,
        run_id: RunId,
        completion: RunCompletion,
    ) -> Result<RunSnapshot, SpineError> {
        let operation = Operation::RunsComplete;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            let (run, crossed) = write_use_case!(self, principal, operation, |db| {
                let run =
                    runs::complete_run(db, principal.tenant_id, run_id, completion.clone(), now)
                        .await?;
                // The counter after this run's tokens, read while the increment's row lock
                // is held (so concurrent completions each see their own step).
                let tenant = tenants::snapshot(db, principal.tenant_id).await?;
                let used = tenant.tokens_this_month;
                let crossed = thresholds_crossed(
                    run.tenant_id,
                    TOKENS_PER_MONTH,
                    used.saturating_sub(run.total_tokens),
                    used,
                    tenant.quotas.max_tokens_per_month,
                );
                let after = json!({"status": run.status, "total_tokens": run.total_tokens, "cost_cents": run.cost_cents});
                self.audit(
                    db,
                    principal,
                    operation,
                    "run",
                    &run.id.to_string(),
                    None,
                    Some(after),
                    now,
                )
                .await?;
                Ok((run, crossed))
            })?;
            self.events.publish(&DomainEvent::RunCompleted {
                tenant_id: run.tenant_id,
                run_id: run.id,
                success: run.status == account_engines::types::RunStatus::Completed,
            });
            for event in &crossed {
                self.events.publish(event);
            }
            Ok(run)
        })
        .await
    }

    /// The tenant's runs, newest first.
    pub async fn list_runs(
        &self,
        principal: &Principal,
        filter: &RunFilter,
        page: OffsetPage,
    ) -> Result<Page<RunSnapshot>, SpineError> {
        let operation = Operation::RunsList;
        self.observe(operation, Subject::Principal(principal), async {
            read_use_case!(self, principal, operation, |db| {
                Ok(runs::list_runs(db, principal.tenant_id, filter, page).await?)
            })
        })
        .await
    }

    /// One run of the tenant.
    pub async fn get_run(
        &self,
        principal: &Principal,
        run_id: RunId,
    ) -> Result<RunSnapshot, SpineError> {
        let operation = Operation::RunsGet;
        self.observe(operation, Subject::Principal(principal), async {
            read_use_case!(self, principal, operation, |db| {
                Ok(runs::get_run(db, principal.tenant_id, run_id).await?)
            })
        })
        .await
    }
}
