//! Sample snapshots for unit tests of the layers above (feature `testing`).
//!
//! Snapshots are `#[non_exhaustive]`: outside this crate they cannot be built with a struct
//! literal, only read. A test that needs one without a database starts from a sample and
//! assigns the fields it is about: `let mut key = APIKeySnapshot::sample(); key.is_frozen =
//! true;`. Never part of a production build.

use crate::api_keys::APIKeySnapshot;
use crate::billing::SubscriptionSnapshot;
use crate::users::UserAccountSnapshot;
use account_models::{
    ApiKeyId, ApiKeyStatus, BillingPeriod, PlanCode, SubscriptionId, SubscriptionStatus, TenantId,
    UserId, UserStatus,
};
use sea_orm::prelude::DateTimeUtc;

impl APIKeySnapshot {
    /// An active machine key of a new tenant, `run:*`, with no limits, created at the epoch.
    pub fn sample() -> Self {
        Self {
            id: ApiKeyId::new(),
            tenant_id: TenantId::new(),
            user_id: None,
            name: "sample".into(),
            key_prefix: "acc_live_AAAAAAA".into(),
            status: ApiKeyStatus::Active,
            permissions: vec!["run:*".into()],
            allowed_workers: None,
            rate_limit_rpm: None,
            max_concurrent_runs: None,
            expires_at: None,
            revoked_at: None,
            revoked_reason: None,
            is_frozen: false,
            last_used_at: None,
            rotated_from_id: None,
            successor_id: None,
            metadata: None,
            created_at: DateTimeUtc::UNIX_EPOCH,
        }
    }
}

impl SubscriptionSnapshot {
    /// An active monthly Pro subscription of a new tenant, with no period, created at the
    /// epoch.
    pub fn sample() -> Self {
        Self {
            id: SubscriptionId::new(),
            tenant_id: TenantId::new(),
            external_id: "sub_sample".into(),
            plan: PlanCode::pro(),
            status: SubscriptionStatus::Active,
            billing_period: BillingPeriod::Monthly,
            current_period_start: None,
            current_period_end: None,
            trial_ends_at: None,
            canceled_at: None,
            cancel_at_period_end: false,
            convert_to_paid: false,
            grace_period_days: 7,
            grace_ends_at: None,
            created_at: DateTimeUtc::UNIX_EPOCH,
            updated_at: DateTimeUtc::UNIX_EPOCH,
        }
    }
}

impl UserAccountSnapshot {
    /// An active account `sample@example.com` with nothing else set, created at the epoch.
    pub fn sample() -> Self {
        Self {
            id: UserId::new(),
            external_user_id: None,
            email: "sample@example.com".into(),
            name: None,
            avatar_url: None,
            oauth_provider: None,
            email_verified: false,
            default_tenant_id: None,
            status: UserStatus::Active,
            time_zone: None,
            locale: None,
            preferences: None,
            created_at: DateTimeUtc::UNIX_EPOCH,
            updated_at: DateTimeUtc::UNIX_EPOCH,
            last_login_at: None,
        }
    }
}
