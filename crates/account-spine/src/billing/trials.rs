//! Trials and grace (see `account_engines::billing::trials`): an operator or the billing
//! integration starts a trial of a paid plan ([`StartTrial`]; the tenant moves to the plan);
//! the reaper's pass ([`Spine::advance_trials`]) ends each trial that ran out
//! ([`EndTrial`]: active on the plan, or grace) and each grace that ran out unpaid
//! ([`EndGrace`]: cancelled, the tenant suspended through the lifecycle state machine). Each
//! move is one system use case per subscription, audited and evented, and conditional on the
//! status it leaves, so passes of several instances move each subscription once.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::OperatorPrincipal;
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::billing::trials;
use account_engines::tenants::{self, TenantError};
use account_engines::types::{SubscriptionId, SubscriptionStatus, TenantId};
use serde_json::json;

pub use account_engines::billing::Subscription;
pub use account_engines::billing::trials::{
    MAX_GRACE_DAYS, MAX_TRIAL_DAYS, TRIAL_ACTOR, TRIAL_ENDED_UNPAID, TrialStart,
};

/// Starts a trial of a paid plan until `trial_ends_at` (or changes one still in its trial)
/// and moves the tenant to that plan's newest version on sale for the trial (through the
/// same engine as a plan change). Refused with 409 `subscription_not_trialing` when the
/// subscription with that external id exists and is no trial.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StartTrial {
    /// The trial.
    pub trial: TrialStart,
}

impl StartTrial {
    /// The use case starting `trial`.
    pub fn new(trial: TrialStart) -> Self {
        Self { trial }
    }
}

impl Sealed for StartTrial {}
impl UseCase for StartTrial {
    type Output = Subscription;
    const OPERATION: Operation = Operation::BillingStartTrial;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Subscription, SpineError> {
        let trial = &self.trial;
        let saved = trials::start_trial(cx.db, trial, cx.now).await?;
        let tenant = trial.tenant_id;
        // A tenant already on the plan's newest version stays as it is.
        let moved = match tenants::change_plan(cx.db, tenant, trial.plan.clone(), cx.now).await {
            Ok((before, after)) => Some((before, after)),
            Err(TenantError::SamePlan(_)) => None,
            Err(error) => return Err(error.into()),
        };
        let mut after = json!({
            "status": saved.status,
            "plan": saved.plan,
            "trial_ends_at": saved.trial_ends_at,
            "convert_to_paid": saved.convert_to_paid,
            "grace_period_days": saved.grace_period_days,
        });
        let mut change = Change::of("billing", &saved.external_id);
        if let Some((before, moved)) = &moved {
            change = change.before(json!({"tenant_plan": before.plan}));
            after["tenant_plan"] = json!(moved.plan);
            after["tenant_plan_version"] = json!(moved.plan_version);
        }
        cx.audit(change.after(after)).await?;
        cx.publish(DomainEvent::SubscriptionTrialStarted {
            tenant_id: tenant,
            external_id: saved.external_id.clone(),
            plan: saved.plan.clone(),
            trial_ends_at: trial.trial_ends_at,
            convert_to_paid: saved.convert_to_paid,
        });
        Ok(saved)
    }
}

impl OperatorUseCase for StartTrial {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.trial.tenant_id)
    }
}

/// A platform job: ends one subscription's trial that ran out (active on its plan when it
/// converts, else grace), audited as the system; `None` when another instance (or a report)
/// moved it first. No principal may call it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct EndTrial {
    /// The subscription's tenant.
    pub tenant: TenantId,
    /// The subscription.
    pub subscription: SubscriptionId,
}

impl Sealed for EndTrial {}
impl UseCase for EndTrial {
    type Output = Option<Subscription>;
    const OPERATION: Operation = Operation::BillingEndTrial;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Option<Subscription>, SpineError> {
        let tenant = self.tenant;
        let Some(ended) = trials::end_trial(cx.db, tenant, self.subscription, cx.now).await? else {
            return Ok(None);
        };
        let converted = ended.status == SubscriptionStatus::Active;
        let after = if converted {
            json!({
                "status": ended.status,
                "current_period_start": ended.current_period_start,
                "current_period_end": ended.current_period_end,
            })
        } else {
            json!({"status": ended.status, "grace_ends_at": ended.grace_ends_at})
        };
        let change = Change::of("billing", &ended.external_id)
            .in_tenant(tenant)
            .before(json!({"status": SubscriptionStatus::Trialing, "trial_ends_at": ended.trial_ends_at}))
            .after(after);
        cx.audit(change).await?;
        let external_id = ended.external_id.clone();
        cx.publish(DomainEvent::SubscriptionTrialEnded {
            tenant_id: tenant,
            external_id: external_id.clone(),
            converted,
        });
        match ended.grace_ends_at {
            Some(grace_ends_at) if !converted => {
                cx.publish(DomainEvent::SubscriptionGraceStarted {
                    tenant_id: tenant,
                    external_id,
                    grace_ends_at,
                });
            }
            _ => cx.publish(DomainEvent::SubscriptionConverted {
                tenant_id: tenant,
                external_id,
                plan: ended.plan.clone(),
            }),
        }
        Ok(Some(ended))
    }
}

/// A platform job: ends one subscription's grace that ran out unpaid: the subscription is
/// cancelled and its tenant, if active, suspended through the lifecycle state machine
/// (reason [`TRIAL_ENDED_UNPAID`], actor the system's [`TRIAL_ACTOR`]), in one transaction
/// with one audit row; `None` when another instance (or a payment) ended it first. The
/// tenant keeps its plan: an operator who resumes it decides what it is on.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct EndGrace {
    /// The subscription's tenant.
    pub tenant: TenantId,
    /// The subscription.
    pub subscription: SubscriptionId,
}

impl Sealed for EndGrace {}
impl UseCase for EndGrace {
    type Output = Option<Subscription>;
    const OPERATION: Operation = Operation::BillingEndGrace;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Option<Subscription>, SpineError> {
        let tenant = self.tenant;
        let Some(ended) = trials::end_grace(cx.db, tenant, self.subscription, cx.now).await? else {
            return Ok(None);
        };
        let suspension = trials::suspend_unpaid(cx.db, tenant, cx.now).await?;
        let mut after = json!({"status": ended.status, "canceled_at": ended.canceled_at});
        if let Some(outcome) = &suspension {
            after["tenant_status"] = json!(outcome.to);
        }
        let change = Change::of("billing", &ended.external_id)
            .in_tenant(tenant)
            .reason(TRIAL_ENDED_UNPAID)
            .before(
                json!({"status": SubscriptionStatus::Grace, "grace_ends_at": ended.grace_ends_at}),
            )
            .after(after);
        cx.audit(change).await?;
        cx.publish(DomainEvent::SubscriptionGraceEnded {
            tenant_id: tenant,
            external_id: ended.external_id.clone(),
        });
        if let Some(outcome) = suspension {
            // As an operator's suspension.
            crate::lifecycle::announce(cx, tenant, &outcome, TRIAL_ENDED_UNPAID);
        }
        Ok(Some(ended))
    }
}

/// What one pass of [`Spine::advance_trials`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrialsAdvanced {
    /// Trials that became active on their plan.
    pub converted: Vec<SubscriptionId>,
    /// Trials that entered grace.
    pub graced: Vec<SubscriptionId>,
    /// Graces that ended unpaid (subscription cancelled, tenant suspended).
    pub ended_unpaid: Vec<SubscriptionId>,
    /// Subscriptions another instance (or a report) moved first.
    pub skipped: u64,
    /// Moves that failed (logged; the next pass retries them).
    pub failed: u64,
}

impl Spine {
    /// Executes [`StartTrial`].
    pub async fn start_trial(
        &self,
        operator: &OperatorPrincipal,
        trial: TrialStart,
    ) -> Result<Subscription, SpineError> {
        self.execute_as_operator(operator, StartTrial { trial })
            .await
    }

    /// Executes [`EndTrial`] as the system, in a transaction of its own.
    pub async fn end_trial(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
    ) -> Result<Option<Subscription>, SpineError> {
        let end = EndTrial {
            tenant,
            subscription,
        };
        self.execute_as_system(tenant, end).await
    }

    /// Executes [`EndGrace`] as the system, in a transaction of its own.
    pub async fn end_grace(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
    ) -> Result<Option<Subscription>, SpineError> {
        let end = EndGrace {
            tenant,
            subscription,
        };
        self.execute_as_system(tenant, end).await
    }

    /// One pass over trials and graces that ran out by the clock's now: at most `batch` of
    /// each (two scans on partial indexes, across tenants), each moved in a transaction of its
    /// own ([`Spine::end_trial`], [`Spine::end_grace`]). Trials go first, so a grace of zero
    /// days that starts in this pass ends in the next. A move that fails is logged and counted
    /// and the pass goes on; only a failed scan is an error. The reaper's pass runs it; a host
    /// with a scheduler of its own may call it instead.
    pub async fn advance_trials(&self, batch: u64) -> Result<TrialsAdvanced, SpineError> {
        let now = self.clock.now();
        let mut done = TrialsAdvanced::default();
        let ended = trials::ended_trials(self.pool_db(), now, batch).await?;
        for due in ended {
            match self.end_trial(due.tenant_id, due.id).await {
                Ok(Some(s)) if s.status == SubscriptionStatus::Active => done.converted.push(s.id),
                Ok(Some(s)) => done.graced.push(s.id),
                Ok(None) => done.skipped += 1,
                Err(error) => {
                    tracing::warn!(%error, tenant_id = %due.tenant_id, subscription_id = %due.id,
                        "ending a trial failed; the next pass retries it");
                    done.failed += 1;
                }
            }
        }
        let graces = trials::ended_graces(self.pool_db(), now, batch).await?;
        for due in graces {
            match self.end_grace(due.tenant_id, due.id).await {
                Ok(Some(s)) => done.ended_unpaid.push(s.id),
                Ok(None) => done.skipped += 1,
                Err(error) => {
                    tracing::warn!(%error, tenant_id = %due.tenant_id, subscription_id = %due.id,
                        "ending a grace failed; the next pass retries it");
                    done.failed += 1;
                }
            }
        }
        Ok(done)
    }
}
