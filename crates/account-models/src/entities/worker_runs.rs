//! `worker_runs`: runs admitted against the tenant's quotas; immutable once completed or failed.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One run.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: RunId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The worker that runs it.
    pub worker_id: String,
    /// The key that started it.
    pub api_key_id: Option<ApiKeyId>,
    /// The user that started it.
    pub user_id: Option<UserId>,
    /// What to do.
    pub task: String,
    /// Input payload.
    pub input: Option<Json>,
    /// Status.
    pub status: RunStatus,
    /// Outcome, once finished.
    pub success: Option<bool>,
    /// Error text of a failed run.
    pub error: Option<String>,
    /// Output payload.
    pub output: Option<Json>,
    /// Replay token.
    pub replay_token: Option<Json>,
    /// Tokens used.
    pub total_tokens: i64,
    /// Total latency in milliseconds.
    pub total_latency_ms: i64,
    /// Stages completed.
    pub stages_completed: i32,
    /// Recoveries performed.
    pub recoveries: i32,
    /// Policy violations seen.
    pub policy_violations: i32,
    /// Cost in cents.
    pub cost_cents: i64,
    /// The run this one retries.
    pub parent_run_id: Option<RunId>,
    /// Attempt number, from 1.
    pub attempt: i32,
    /// Admission time.
    pub created_at: DateTimeUtc,
    /// Start time.
    pub started_at: Option<DateTimeUtc>,
    /// Completion time.
    pub completed_at: Option<DateTimeUtc>,
    /// Tokens reserved against the month's quota at admission, released when it finishes.
    pub token_estimate: i64,
    /// Until when the run's worker is known to be alive: set at admission, moved forward by
    /// each heartbeat; once it lapses the reaper expires the run (`crashed`).
    pub lease_expires_at: Option<DateTimeUtc>,
}

crate::schema::table!("worker_runs");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
