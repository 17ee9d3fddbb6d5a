//! `api_keys`: API keys, stored only as a keyed digest plus a display prefix.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One API key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ApiKeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The user who issued it.
    pub user_id: Option<UserId>,
    /// Human label.
    pub name: String,
    /// The first characters of the key, shown to identify it.
    pub key_prefix: String,
    /// Keyed hash (HMAC) of the whole key, hex; unique.
    pub key_digest: String,
    /// Permission strings, a JSON array.
    pub permissions: Json,
    /// Workers the key may run, a JSON array; `None` means all.
    pub allowed_workers: Option<Json>,
    /// Requests per minute, overriding the plan.
    pub rate_limit_rpm: Option<i32>,
    /// Concurrent runs through this key.
    pub max_concurrent_runs: Option<i32>,
    /// Stored status.
    pub status: ApiKeyStatus,
    /// When it stops working.
    pub expires_at: Option<DateTimeUtc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
    /// Last use, recorded coarsely.
    pub last_used_at: Option<DateTimeUtc>,
    /// Requests counted at each coarse last-use update.
    pub total_requests: i64,
    /// Kill switch.
    pub is_frozen: bool,
    /// When it was frozen.
    pub frozen_at: Option<DateTimeUtc>,
    /// Who froze it.
    pub frozen_by: Option<String>,
    /// Why.
    pub freeze_reason: Option<String>,
    /// The key this one replaced by rotation.
    pub rotated_from_id: Option<ApiKeyId>,
    /// The key that replaced this one by rotation; set once, by the rotation's conditional
    /// update.
    pub successor_id: Option<ApiKeyId>,
    /// The tenant's JSON object about the key (at most 4 KiB), returned by verification.
    pub metadata: Option<Json>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Runs started with this key that are queued or running now.
    pub active_runs: i32,
}

crate::schema::table!("api_keys");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
