//! Run use cases: admit, complete, list, get.

use crate::operations::Operation;
use crate::principal::{Actor, Principal};
use crate::{DomainEvent, Spine, SpineError};
use account_engines::runs::{self, AdmitRunRequest, RunError, RunPrincipal};
use account_engines::types::RunId;
use account_engines::{ErrorCode, OffsetPage, Page};
use serde_json::{Value as Json, json};

pub use account_engines::runs::{RunCompletion, RunFilter, RunSnapshot};

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
    /// Admits a run against the tenant's quotas, atomically, and audits it.
    pub async fn admit_run(
        &self,
        principal: &Principal,
        request: AdmitRun,
    ) -> Result<RunSnapshot, SpineError> {
        let operation = Operation::RunsAdmit;
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
            let run = runs::admit_run(
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
            Ok(run)
        });
        match &outcome {
            Ok(run) => self.events.publish(&DomainEvent::RunAdmitted {
                tenant_id: run.tenant_id,
                run_id: run.id,
            }),
            Err(SpineError::Run(
                error @ (RunError::DailyRunLimit { .. }
                | RunError::MonthlyTokenLimit { .. }
                | RunError::ConcurrentRunLimit { .. }
                | RunError::KeyConcurrentRunLimit { .. }),
            )) => self.events.publish(&DomainEvent::QuotaRefused {
                tenant_id: principal.tenant_id,
                quota: error.code(),
            }),
            Err(_) => {}
        }
        outcome
    }

    /// Records a run's results once.
    pub async fn complete_run(
        &self,
        principal: &Principal,
        run_id: RunId,
        completion: RunCompletion,
    ) -> Result<RunSnapshot, SpineError> {
        let operation = Operation::RunsComplete;
        let now = self.clock.now();
        let run = write_use_case!(self, principal, operation, |db| {
            let run = runs::complete_run(db, principal.tenant_id, run_id, completion.clone(), now)
                .await?;
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
            Ok(run)
        })?;
        self.events.publish(&DomainEvent::RunCompleted {
            tenant_id: run.tenant_id,
            run_id: run.id,
            success: run.status == account_engines::types::RunStatus::Completed,
        });
        Ok(run)
    }

    /// The tenant's runs, newest first.
    pub async fn list_runs(
        &self,
        principal: &Principal,
        filter: &RunFilter,
        page: OffsetPage,
    ) -> Result<Page<RunSnapshot>, SpineError> {
        read_use_case!(self, principal, Operation::RunsList, |db| {
            Ok(runs::list_runs(db, principal.tenant_id, filter, page).await?)
        })
    }

    /// One run of the tenant.
    pub async fn get_run(
        &self,
        principal: &Principal,
        run_id: RunId,
    ) -> Result<RunSnapshot, SpineError> {
        read_use_case!(self, principal, Operation::RunsGet, |db| {
            Ok(runs::get_run(db, principal.tenant_id, run_id).await?)
        })
    }
}
