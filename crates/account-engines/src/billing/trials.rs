//! Trials and grace: a subscription starts as a trial of a paid plan until `trial_ends_at`;
//! when it ends, the reaper's pass makes it `active` on that plan (it was started converting:
//! a payment method is on file) or puts it in `grace` for its `grace_period_days` (7 unless the
//! start said otherwise), still served; when the grace ends unpaid, the subscription is
//! cancelled and the tenant suspended ([`TRIAL_ENDED_UNPAID`]). A payment the billing system
//! reports during the grace (`active` for the same external id) ends it.
//!
//! Each move is conditional on the status it leaves (see the driver), so two instances'
//! passes move every subscription once.

use super::{BillingError, check_external_id, ensure_tenant};
use crate::Db;
use crate::lifecycle::{self, LifecycleAction, LifecycleActor, LifecycleError, TransitionOutcome};
use account_drivers::billing::SubscriptionSnapshot;
pub use account_drivers::billing::{DueSubscription, TrialOutcome, TrialStart};
use account_drivers::types::{
    ActorType, BillingPeriod, SubscriptionId, SubscriptionStatus, TenantId, TenantStatus,
};
use account_drivers::{get_accounts_facade_driver, get_tenant_driver};
use chrono::{DateTime, Months, TimeDelta, Utc};

/// Longest trial, in days from its start.
pub const MAX_TRIAL_DAYS: i64 = 365;
/// Longest grace, in days (the column's CHECK holds it too).
pub const MAX_GRACE_DAYS: i32 = 90;
/// The reason a tenant is suspended with when its trial's grace ended unpaid (its lifecycle
/// history and the `tenant.suspended` event carry it).
pub const TRIAL_ENDED_UNPAID: &str = "trial ended unpaid";
/// The system component named as the actor of the suspension in the lifecycle history.
pub const TRIAL_ACTOR: &str = "trial-reaper";

/// Starts a trial (or changes one still in its trial: plan, end, conversion, grace), as the
/// billing system or an operator asks. The caller moves the tenant to the plan.
pub async fn start_trial(
    db: Db<'_>,
    trial: &TrialStart,
    now: DateTime<Utc>,
) -> Result<SubscriptionSnapshot, BillingError> {
    check_external_id(&trial.external_id)?;
    if trial.trial_ends_at <= now || trial.trial_ends_at > now + TimeDelta::days(MAX_TRIAL_DAYS) {
        return Err(BillingError::InvalidTrialEnd);
    }
    if !(0..=MAX_GRACE_DAYS).contains(&trial.grace_period_days) {
        return Err(BillingError::InvalidGraceDays);
    }
    ensure_tenant(db, trial.tenant_id).await?;
    get_accounts_facade_driver(db)
        .start_trial(SubscriptionId::new(), trial, now)
        .await?
        .ok_or(BillingError::NotATrial)
}

/// Trials of any tenant that ended by `now`, at most `batch` (the pass's scan).
pub async fn ended_trials(
    db: Db<'_>,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<DueSubscription>, BillingError> {
    Ok(get_accounts_facade_driver(db)
        .fetch_ended_trials(now, batch)
        .await?)
}

/// Graces of any tenant that ended by `now`, at most `batch` (the pass's scan).
pub async fn ended_graces(
    db: Db<'_>,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<DueSubscription>, BillingError> {
    Ok(get_accounts_facade_driver(db)
        .fetch_ended_graces(now, batch)
        .await?)
}

/// What the trial becomes at its end: its first paid period starts when the trial ended (not
/// when the pass ran), and the grace counts from then too, so a late pass neither shifts the
/// billing nor lengthens the grace.
pub fn trial_outcome(
    subscription: &SubscriptionSnapshot,
    trial_end: DateTime<Utc>,
) -> TrialOutcome {
    if subscription.convert_to_paid {
        let months = match subscription.billing_period {
            BillingPeriod::Annual => 12,
            _ => 1,
        };
        let period_end = trial_end
            .checked_add_months(Months::new(months))
            .unwrap_or(trial_end + TimeDelta::days(31));
        TrialOutcome::Converted {
            period_start: trial_end,
            period_end,
        }
    } else {
        let days = i64::from(subscription.grace_period_days.clamp(0, MAX_GRACE_DAYS));
        TrialOutcome::Grace {
            grace_ends_at: trial_end + TimeDelta::days(days),
        }
    }
}

/// Ends the tenant's trial `id` if it is still a trial that ended by `now`: the subscription
/// after the move, or `None` when there is nothing to do (another instance did it, or a
/// report changed it first).
pub async fn end_trial(
    db: Db<'_>,
    tenant: TenantId,
    id: SubscriptionId,
    now: DateTime<Utc>,
) -> Result<Option<SubscriptionSnapshot>, BillingError> {
    let driver = get_accounts_facade_driver(db);
    let Some(current) = driver.fetch_subscription_by_id(tenant, id).await? else {
        return Ok(None);
    };
    let Some(trial_end) = current.trial_ends_at.filter(|end| *end <= now) else {
        return Ok(None);
    };
    if current.status != SubscriptionStatus::Trialing {
        return Ok(None);
    }
    let outcome = trial_outcome(&current, trial_end);
    Ok(driver.end_trial(tenant, id, outcome, now).await?)
}

/// Cancels the tenant's subscription `id` if it is still in a grace that ended by `now`;
/// `None` when there is nothing to do. The caller suspends the tenant
/// ([`suspend_unpaid`]).
pub async fn end_grace(
    db: Db<'_>,
    tenant: TenantId,
    id: SubscriptionId,
    now: DateTime<Utc>,
) -> Result<Option<SubscriptionSnapshot>, BillingError> {
    Ok(get_accounts_facade_driver(db)
        .end_grace(tenant, id, now)
        .await?)
}

/// Suspends the tenant through the lifecycle state machine, as the system, with reason
/// [`TRIAL_ENDED_UNPAID`], if it is active; `None` when it is not (already suspended, or
/// terminated or archived, which a suspension must not undo).
pub async fn suspend_unpaid(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<Option<TransitionOutcome>, LifecycleError> {
    let status = get_tenant_driver(db)
        .fetch_tenant_snapshot(tenant)
        .await?
        .map(|t| t.status);
    if status != Some(TenantStatus::Active) {
        return Ok(None);
    }
    let actor = LifecycleActor {
        actor_type: ActorType::System,
        actor_id: TRIAL_ACTOR.to_owned(),
    };
    let outcome = lifecycle::transition(
        db,
        tenant,
        LifecycleAction::Suspend,
        &actor,
        TRIAL_ENDED_UNPAID,
        now,
    )
    .await?;
    Ok((!outcome.was_no_op).then_some(outcome))
}

/// The status of the tenant's subscription with this external id, before a report rewrites
/// it (a payment reported during a grace ends the grace: the caller tells by this).
pub async fn status_before_report(
    db: Db<'_>,
    tenant: TenantId,
    external_id: &str,
) -> Result<Option<SubscriptionStatus>, BillingError> {
    Ok(get_accounts_facade_driver(db)
        .fetch_subscription_by_external_id(tenant, external_id)
        .await?
        .map(|s| s.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_trial_converts_from_its_end_or_graces_from_it() {
        let end = Utc.with_ymd_and_hms(2027, 1, 31, 12, 0, 0).unwrap();
        let mut sub = SubscriptionSnapshot::sample();
        sub.convert_to_paid = true;
        assert_eq!(
            trial_outcome(&sub, end),
            TrialOutcome::Converted {
                period_start: end,
                period_end: Utc.with_ymd_and_hms(2027, 2, 28, 12, 0, 0).unwrap(),
            }
        );
        sub.billing_period = BillingPeriod::Annual;
        assert!(matches!(
            trial_outcome(&sub, end),
            TrialOutcome::Converted { period_end, .. }
                if period_end == Utc.with_ymd_and_hms(2028, 1, 31, 12, 0, 0).unwrap()
        ));
        sub.convert_to_paid = false;
        sub.grace_period_days = 7;
        assert_eq!(
            trial_outcome(&sub, end),
            TrialOutcome::Grace {
                grace_ends_at: end + TimeDelta::days(7)
            }
        );
    }
}
