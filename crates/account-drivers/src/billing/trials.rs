//! Trials and grace on `subscriptions`: starting a trial, the reaper's scans for trials and
//! graces that ended, and the conditional moves out of `trialing` and `grace`.
//!
//! Every move is one `UPDATE ... WHERE status = <the expected status> ... RETURNING`, so of two
//! instances passing at once exactly one moves a subscription; the other gets `None` (on
//! PostgreSQL its update waits for the first's commit and then finds the status changed).

use super::subscriptions::{SubscriptionSnapshot, snapshot};
use crate::{AccountsFacadeDriver, DriverError};
use account_models::entities::subscriptions;
use account_models::{BillingPeriod, PlanCode, SubscriptionId, SubscriptionStatus, TenantId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};

/// The predicate of the partial index `ix_subscriptions_trial_ends_at`, spelled as the
/// migration creates it, so both planners use the index for the scan.
const TRIALING: &str = "status = 'trialing'";
/// The predicate of the partial index `ix_subscriptions_grace_ends_at`.
const IN_GRACE: &str = "status = 'grace'";

/// A trial to start (or to change while it is still a trial).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrialStart {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The billing system's id of the subscription (the key a later report uses).
    pub external_id: String,
    /// The paid plan the trial is of (the tenant is on it during the trial).
    pub plan: PlanCode,
    /// How often it bills once paid.
    pub billing_period: BillingPeriod,
    /// When the trial ends.
    pub trial_ends_at: DateTimeUtc,
    /// Whether it becomes the paid plan at its end (a payment method is on file).
    pub convert_to_paid: bool,
    /// Days of grace when it ends unpaid.
    pub grace_period_days: i32,
}

impl TrialStart {
    /// A monthly trial of `plan` until `trial_ends_at` that does not convert by itself, with
    /// [`TrialStart::DEFAULT_GRACE_DAYS`] of grace.
    pub fn new(
        tenant_id: TenantId,
        external_id: impl Into<String>,
        plan: PlanCode,
        trial_ends_at: DateTimeUtc,
    ) -> Self {
        Self {
            tenant_id,
            external_id: external_id.into(),
            plan,
            billing_period: BillingPeriod::Monthly,
            trial_ends_at,
            convert_to_paid: false,
            grace_period_days: Self::DEFAULT_GRACE_DAYS,
        }
    }

    /// The grace a trial gets unless its start says otherwise (the column's default too).
    pub const DEFAULT_GRACE_DAYS: i32 = 7;

    /// The same trial, converting (or not) at its end.
    pub fn converting(mut self, convert_to_paid: bool) -> Self {
        self.convert_to_paid = convert_to_paid;
        self
    }

    /// The same trial with `days` of grace.
    pub fn with_grace_days(mut self, days: i32) -> Self {
        self.grace_period_days = days;
        self
    }

    /// The same trial, billed every `period` once paid.
    pub fn billed(mut self, period: BillingPeriod) -> Self {
        self.billing_period = period;
        self
    }
}

/// A subscription whose trial or grace ended, as the reaper's scans find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromQueryResult)]
#[non_exhaustive]
pub struct DueSubscription {
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The subscription.
    pub id: SubscriptionId,
}

/// What a trial that ended becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrialOutcome {
    /// Active on the paid plan, its first period `[start, end)`.
    Converted {
        /// First period's start (the trial's end).
        period_start: DateTimeUtc,
        /// First period's end.
        period_end: DateTimeUtc,
    },
    /// In grace until then.
    Grace {
        /// End of the grace.
        grace_ends_at: DateTimeUtc,
    },
}

impl AccountsFacadeDriver<'_> {
    /// The tenant's subscription with this external id.
    pub async fn fetch_subscription_by_external_id(
        &self,
        tenant: TenantId,
        external_id: &str,
    ) -> Result<Option<SubscriptionSnapshot>, DriverError> {
        use subscriptions::Column as C;
        let row = subscriptions::Entity::find()
            .filter(C::TenantId.eq(tenant))
            .filter(C::ExternalId.eq(external_id))
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// The tenant's subscription with this id.
    pub async fn fetch_subscription_by_id(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionSnapshot>, DriverError> {
        use subscriptions::Column as C;
        let row = subscriptions::Entity::find()
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.eq(id))
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// Inserts the trial, or rewrites the tenant's subscription with the same external id if
    /// it is still a trial, in one statement (`INSERT ... ON CONFLICT DO UPDATE ... WHERE
    /// status = 'trialing' RETURNING`). `None` when a subscription with that external id
    /// exists and is no trial (a trial is not restarted over a paid or ended one).
    pub async fn start_trial(
        &self,
        id: SubscriptionId,
        trial: &TrialStart,
        now: DateTimeUtc,
    ) -> Result<Option<SubscriptionSnapshot>, DriverError> {
        use subscriptions::Column as C;
        let model = subscriptions::ActiveModel {
            id: Set(id),
            tenant_id: Set(trial.tenant_id),
            external_id: Set(trial.external_id.clone()),
            plan: Set(trial.plan.clone()),
            status: Set(SubscriptionStatus::Trialing),
            billing_period: Set(trial.billing_period),
            current_period_start: Set(None),
            current_period_end: Set(None),
            trial_ends_at: Set(Some(trial.trial_ends_at)),
            canceled_at: Set(None),
            cancel_at_period_end: Set(false),
            convert_to_paid: Set(trial.convert_to_paid),
            grace_period_days: Set(trial.grace_period_days),
            grace_ends_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let inserted = subscriptions::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([C::TenantId, C::ExternalId])
                    .update_columns([
                        C::Plan,
                        C::BillingPeriod,
                        C::TrialEndsAt,
                        C::ConvertToPaid,
                        C::GracePeriodDays,
                        C::UpdatedAt,
                    ])
                    .action_and_where(Expr::cust("subscriptions.status = 'trialing'"))
                    .to_owned(),
            )
            .exec_with_returning(self.db.conn())
            .await;
        match inserted {
            Ok(row) => Ok(Some(snapshot(row))),
            // The conflict's WHERE held the row back: nothing was written.
            Err(DbErr::RecordNotInserted) | Err(DbErr::RecordNotFound(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Subscriptions in `status` (a condition on it) whose `ends_at` passed by `now`, the
    /// longest past first, at most `limit`: the scan of both reaper steps.
    async fn fetch_due(
        &self,
        status: &'static str,
        ends_at: subscriptions::Column,
        now: DateTimeUtc,
        limit: u64,
    ) -> Result<Vec<DueSubscription>, DriverError> {
        use subscriptions::Column as C;
        Ok(subscriptions::Entity::find()
            .select_only()
            .columns([C::TenantId, C::Id])
            .filter(Expr::cust(status))
            .filter(ends_at.lte(now))
            .order_by_asc(ends_at)
            .limit(limit)
            .into_model::<DueSubscription>()
            .all(self.db.conn())
            .await?)
    }

    /// Subscriptions of every tenant whose trial ended by `now` (status `trialing`), the
    /// longest ended first, at most `limit`. The reaper's scan, spanning tenants on purpose
    /// like the lapsed leases'; each is then moved by [`AccountsFacadeDriver::end_trial`],
    /// scoped to its tenant. Served by the partial index `ix_subscriptions_trial_ends_at`.
    pub async fn fetch_ended_trials(
        &self,
        now: DateTimeUtc,
        limit: u64,
    ) -> Result<Vec<DueSubscription>, DriverError> {
        self.fetch_due(TRIALING, subscriptions::Column::TrialEndsAt, now, limit)
            .await
    }

    /// Subscriptions of every tenant whose grace ended by `now` (status `grace`), the
    /// longest ended first, at most `limit`. Served by `ix_subscriptions_grace_ends_at`.
    pub async fn fetch_ended_graces(
        &self,
        now: DateTimeUtc,
        limit: u64,
    ) -> Result<Vec<DueSubscription>, DriverError> {
        self.fetch_due(IN_GRACE, subscriptions::Column::GraceEndsAt, now, limit)
            .await
    }

    /// Moves the tenant's subscription out of its trial if it is still `trialing` and its
    /// trial ended by `now`: to `active` with its first period, or to `grace`. `None` when
    /// nothing changed (another instance moved it, or a report changed it). One statement.
    pub async fn end_trial(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
        outcome: TrialOutcome,
        now: DateTimeUtc,
    ) -> Result<Option<SubscriptionSnapshot>, DriverError> {
        use subscriptions::Column as C;
        let mut update = subscriptions::Entity::update_many();
        update = match outcome {
            TrialOutcome::Converted {
                period_start,
                period_end,
            } => update
                .col_expr(C::Status, Expr::value(SubscriptionStatus::Active.as_str()))
                .col_expr(C::CurrentPeriodStart, Expr::value(period_start))
                .col_expr(C::CurrentPeriodEnd, Expr::value(period_end)),
            TrialOutcome::Grace { grace_ends_at } => update
                .col_expr(C::Status, Expr::value(SubscriptionStatus::Grace.as_str()))
                .col_expr(C::GraceEndsAt, Expr::value(grace_ends_at)),
        };
        let rows = update
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.eq(id))
            .filter(C::Status.eq(SubscriptionStatus::Trialing))
            .filter(C::TrialEndsAt.lte(now))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// Cancels the tenant's subscription if it is still in `grace` and the grace ended by
    /// `now` (`canceled`, `canceled_at` now). `None` when nothing changed. One statement.
    pub async fn end_grace(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
        now: DateTimeUtc,
    ) -> Result<Option<SubscriptionSnapshot>, DriverError> {
        use subscriptions::Column as C;
        let rows = subscriptions::Entity::update_many()
            .col_expr(
                C::Status,
                Expr::value(SubscriptionStatus::Canceled.as_str()),
            )
            .col_expr(C::CanceledAt, Expr::value(now))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::TenantId.eq(tenant))
            .filter(C::Id.eq(id))
            .filter(C::Status.eq(SubscriptionStatus::Grace))
            .filter(C::GraceEndsAt.lte(now))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }
}
