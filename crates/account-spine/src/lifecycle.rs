//! Lifecycle use cases (operators only): transitions and their history.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::OperatorPrincipal;
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::lifecycle::{self, LifecycleActor};
use account_engines::types::{ActorType, TenantId, TenantStatus};
use account_engines::{OffsetPage, Page};
use serde_json::json;

pub use account_engines::lifecycle::LifecycleEventSnapshot as LifecycleEvent;
pub use account_engines::lifecycle::{LifecycleAction, TransitionOutcome};

/// Suspends, resumes, terminates or archives a tenant, recording actor and reason. A change
/// drops the tenant's keys from the verify cache (verification decides on the status) and
/// publishes [`DomainEvent::TenantStatusChanged`] (and [`DomainEvent::TenantSuspended`]).
#[derive(Clone, Debug)]
pub struct TransitionTenant {
    /// The tenant.
    pub tenant: TenantId,
    /// What to do.
    pub action: LifecycleAction,
    /// Why, for the history and the audit row.
    pub reason: String,
}

impl Sealed for TransitionTenant {}
impl UseCase for TransitionTenant {
    type Output = TransitionOutcome;
    const OPERATION: Operation = Operation::LifecycleTransition;

    async fn run(&self, cx: &mut Context<'_>) -> Result<TransitionOutcome, SpineError> {
        let actor = LifecycleActor {
            actor_type: ActorType::Founder,
            actor_id: cx.operator()?.operator_id.clone(),
        };
        let (tenant, reason) = (self.tenant, &self.reason);
        let outcome =
            lifecycle::transition(cx.db, tenant, self.action, &actor, reason, cx.now).await?;
        if !outcome.was_no_op {
            let change = Change::of("lifecycle", tenant)
                .reason(reason)
                .before(json!({"status": outcome.from}))
                .after(json!({"status": outcome.to}));
            cx.audit(change).await?;
            announce(cx, tenant, &outcome, reason);
        }
        Ok(outcome)
    }
}

/// What every status change of a tenant does once its transaction commits: the caches drop
/// the tenant (verification decides on the status), and the change is published, with the
/// suspension and its reason when it is one.
pub(crate) fn announce(
    cx: &mut Context<'_>,
    tenant: TenantId,
    outcome: &TransitionOutcome,
    reason: &str,
) {
    cx.forget_tenant(tenant);
    cx.publish(DomainEvent::TenantStatusChanged {
        tenant_id: tenant,
        from: outcome.from,
        to: outcome.to,
    });
    if outcome.to == TenantStatus::Suspended {
        cx.publish(DomainEvent::TenantSuspended {
            tenant_id: tenant,
            reason: reason.to_owned(),
        });
    }
}

impl OperatorUseCase for TransitionTenant {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant)
    }
}

/// A tenant's lifecycle history (operators only, like every platform operation).
#[derive(Clone, Copy, Debug)]
pub struct LifecycleHistory {
    /// The tenant.
    pub tenant: TenantId,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for LifecycleHistory {}
impl UseCase for LifecycleHistory {
    type Output = Page<LifecycleEvent>;
    const OPERATION: Operation = Operation::LifecycleHistory;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<LifecycleEvent>, SpineError> {
        Ok(lifecycle::history(cx.db, self.tenant, self.page).await?)
    }
}

impl OperatorUseCase for LifecycleHistory {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant)
    }
}

impl Spine {
    /// Executes [`TransitionTenant`].
    pub async fn transition_tenant(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        action: LifecycleAction,
        reason: &str,
    ) -> Result<TransitionOutcome, SpineError> {
        let reason = reason.to_owned();
        let transition = TransitionTenant {
            tenant,
            action,
            reason,
        };
        self.execute_as_operator(operator, transition).await
    }

    /// Executes [`LifecycleHistory`].
    pub async fn lifecycle_history(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<LifecycleEvent>, SpineError> {
        self.execute_as_operator(operator, LifecycleHistory { tenant, page })
            .await
    }
}
