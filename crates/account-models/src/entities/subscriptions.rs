//! `subscriptions`: the tenant's subscription as the billing system reports it.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One subscription.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SubscriptionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The billing system's id; unique per tenant.
    pub external_id: String,
    /// Plan subscribed to.
    pub plan: crate::PlanCode,
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
    /// The trial becomes the paid plan at its end (a payment method is on file); otherwise
    /// it enters grace.
    pub convert_to_paid: bool,
    /// Days of grace after a trial that ended unpaid (0 to 90).
    pub grace_period_days: i32,
    /// End of the grace (status `grace`): then the subscription is cancelled and the tenant
    /// suspended.
    pub grace_ends_at: Option<DateTimeUtc>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

crate::schema::table!("subscriptions");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
