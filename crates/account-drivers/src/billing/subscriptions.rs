//! `subscriptions`: the tenant's subscription as the billing system reports it.
//!
//! Written only by the billing integration, idempotently by (tenant, external id): replaying
//! an event rewrites the same row instead of adding one.

use crate::{AccountsFacadeDriver, DriverError};
use account_models::entities::subscriptions;
use account_models::{BillingPeriod, PlanCode, SubscriptionId, SubscriptionStatus, TenantId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

/// A subscription as the engines see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionSnapshot {
    /// Id.
    pub id: SubscriptionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The billing system's id.
    pub external_id: String,
    /// Plan subscribed to.
    pub plan: PlanCode,
    /// Status.
    pub status: SubscriptionStatus,
    /// Billing period.
    pub billing_period: BillingPeriod,
    /// Start of the current period.
    pub current_period_start: Option<DateTimeUtc>,
    /// End of the current period.
    pub current_period_end: Option<DateTimeUtc>,
    /// End of the trial.
    pub trial_ends_at: Option<DateTimeUtc>,
    /// When it was cancelled.
    pub canceled_at: Option<DateTimeUtc>,
    /// Cancels at the end of the period.
    pub cancel_at_period_end: bool,
    /// The trial becomes the paid plan at its end; otherwise it enters grace.
    pub convert_to_paid: bool,
    /// Days of grace after a trial that ended unpaid.
    pub grace_period_days: i32,
    /// End of the grace, while the status is `grace`.
    pub grace_ends_at: Option<DateTimeUtc>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// A subscription as the billing system reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionUpsert {
    /// Id for the row if it is new (ignored when the external id is known).
    pub id: SubscriptionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The billing system's id.
    pub external_id: String,
    /// Plan subscribed to.
    pub plan: PlanCode,
    /// Status.
    pub status: SubscriptionStatus,
    /// Billing period.
    pub billing_period: BillingPeriod,
    /// Start of the current period.
    pub current_period_start: Option<DateTimeUtc>,
    /// End of the current period.
    pub current_period_end: Option<DateTimeUtc>,
    /// End of the trial.
    pub trial_ends_at: Option<DateTimeUtc>,
    /// When it was cancelled.
    pub canceled_at: Option<DateTimeUtc>,
    /// Cancels at the end of the period.
    pub cancel_at_period_end: bool,
}

pub(super) fn snapshot(m: subscriptions::Model) -> SubscriptionSnapshot {
    SubscriptionSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        external_id: m.external_id,
        plan: m.plan,
        status: m.status,
        billing_period: m.billing_period,
        current_period_start: m.current_period_start,
        current_period_end: m.current_period_end,
        trial_ends_at: m.trial_ends_at,
        canceled_at: m.canceled_at,
        cancel_at_period_end: m.cancel_at_period_end,
        convert_to_paid: m.convert_to_paid,
        grace_period_days: m.grace_period_days,
        grace_ends_at: m.grace_ends_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

impl AccountsFacadeDriver<'_> {
    /// The tenant's latest subscription (newest `created_at`, ties by id).
    pub async fn fetch_subscription(
        &self,
        tenant: TenantId,
    ) -> Result<Option<SubscriptionSnapshot>, DriverError> {
        let row = subscriptions::Entity::find()
            .filter(subscriptions::Column::TenantId.eq(tenant))
            .order_by_desc(subscriptions::Column::CreatedAt)
            .order_by_desc(subscriptions::Column::Id)
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// Inserts the subscription, or rewrites the tenant's row with the same external id, in
    /// one statement (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`). The id and
    /// `created_at` of an existing row are kept, and so are its trial settings
    /// (`convert_to_paid`, `grace_period_days`: a report does not carry them); a report ends a
    /// grace (`grace_ends_at` is cleared: the billing system's status is the truth again).
    pub async fn upsert_subscription(
        &self,
        subscription: SubscriptionUpsert,
        now: DateTimeUtc,
    ) -> Result<SubscriptionSnapshot, DriverError> {
        use subscriptions::Column as C;
        let model = subscriptions::ActiveModel {
            id: Set(subscription.id),
            tenant_id: Set(subscription.tenant_id),
            external_id: Set(subscription.external_id),
            plan: Set(subscription.plan),
            status: Set(subscription.status),
            billing_period: Set(subscription.billing_period),
            current_period_start: Set(subscription.current_period_start),
            current_period_end: Set(subscription.current_period_end),
            trial_ends_at: Set(subscription.trial_ends_at),
            canceled_at: Set(subscription.canceled_at),
            cancel_at_period_end: Set(subscription.cancel_at_period_end),
            // A new row takes the columns' defaults (no conversion, 7 days of grace); a
            // report never changes them.
            convert_to_paid: NotSet,
            grace_period_days: NotSet,
            grace_ends_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let row = subscriptions::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([C::TenantId, C::ExternalId])
                    .update_columns([
                        C::Plan,
                        C::Status,
                        C::BillingPeriod,
                        C::CurrentPeriodStart,
                        C::CurrentPeriodEnd,
                        C::TrialEndsAt,
                        C::CanceledAt,
                        C::CancelAtPeriodEnd,
                        C::GraceEndsAt,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(snapshot(row))
    }
}
