//! `tenants`: a tenant (project), its plan quotas copied onto the row, usage counters, lifecycle and onboarding state.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One tenant.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique, URL-safe handle.
    pub slug: String,
    /// The identity provider's organisation id, if linked.
    pub external_org_id: Option<String>,
    /// Current plan's code (a row of `plans`).
    pub plan: crate::PlanCode,
    /// Where invoices go.
    pub billing_email: Option<String>,
    /// The billing provider's customer id.
    pub billing_customer_id: Option<String>,
    /// Quota: distinct workers.
    pub max_workers: i32,
    /// Quota: runs per UTC day.
    pub max_runs_per_day: i32,
    /// Quota: queued or running runs at once.
    pub max_concurrent_runs: i32,
    /// Quota: tokens per UTC month.
    pub max_tokens_per_month: i64,
    /// Quota: active API keys.
    pub max_api_keys: i32,
    /// Runs admitted on `usage_day`.
    pub runs_today: i32,
    /// Runs admitted in `usage_month`.
    pub runs_this_month: i32,
    /// Tokens used in `usage_month`.
    pub tokens_this_month: i64,
    /// The UTC day `runs_today` counts (counters reset lazily when the day changes).
    pub usage_day: Option<Date>,
    /// The first day of the UTC month the monthly counters count.
    pub usage_month: Option<Date>,
    /// When a counter was last reset.
    pub last_run_reset_at: Option<DateTimeUtc>,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// Why the tenant was suspended, while it is.
    pub suspended_reason: Option<String>,
    /// Onboarding progress.
    pub onboarding_state: OnboardingState,
    /// The tenant's memberships (`tenant_memberships` rows): the total of its unfiltered
    /// users and members lists. Kept by the drivers in the transaction of every membership
    /// insert and delete.
    pub member_count: i64,
    /// The tenant's API keys not revoked (`status <> 'revoked'`, so expired, frozen and
    /// rotated-away keys count): the total of its key list without revoked keys, and an upper
    /// bound of the keys that count against `max_api_keys`. Kept by the drivers in the
    /// transaction of every key issue and revocation (keys are never deleted).
    pub api_key_count: i64,
    /// The tenant's runs (`worker_runs` rows, any status): the total of its unfiltered run
    /// list. Bumped by run admission, the only way a run is written (runs are never deleted).
    pub run_count: i64,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Runs queued or running now (kept by admission and settlement).
    pub active_runs: i32,
    /// Workers with queued or running runs now (kept with `tenant_workers`).
    pub active_workers: i32,
    /// Tokens reserved by admitted runs not yet settled, on top of `tokens_this_month`.
    pub tokens_reserved: i64,
    /// Quota: requests per minute of the whole tenant (`None`: no tenant-wide limit).
    pub max_requests_per_minute: Option<i32>,
    /// Days an audit row of the tenant is kept before the retention purge removes it (`None`:
    /// kept forever, e.g. under a legal hold).
    pub audit_retention_days: Option<i32>,
    /// Quota: seats, members plus pending invitations.
    pub max_members: i32,
    /// The version of `plan` the tenant is on (its limits are that version's).
    pub plan_version: i32,
    /// Quota: live memory pins.
    pub max_memory_pins: i64,
    /// Quota: bytes of one pin's value.
    pub max_pin_value_bytes: i32,
    /// The plan version's soft-limit threshold, in percent (`None`: warn only at the limit).
    pub warn_at_percent: Option<i32>,
}

crate::schema::table!("tenants");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
