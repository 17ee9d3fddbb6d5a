//! Worker runs: admission against the tenant's quotas, completion, listing.
//!
//! Admission is one atomic step in the driver (tenant row lock plus one conditional update);
//! this engine validates the request, asks for admission, and when refused says which limit
//! refused, with the numbers. Completion is recorded once; its usage records are idempotent.
//! A run holds a lease its worker renews; the reaper expires lapsed ones ([`leases`]).

pub mod leases;

use crate::PageRequest;
use crate::audit::AuditEntry;
use crate::json::{NulCharacter, reject_nul};
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
use account_drivers::get_tenant_driver;
use account_drivers::runs::{Admission, AdmissionUsage, NewRun, RunAdmission, UsagePeriod};
pub use account_drivers::runs::{RunCompletion, RunFilter, RunSnapshot};
use account_drivers::tenants::TenantCoreSnapshot;
use account_drivers::types::{
    ApiKeyId, FreeText, MembershipRole, RunId, RunStatus, TenantId, TenantStatus, TextError,
    UsageRecordId, UsageUnit, UserId,
};
use account_drivers::usage::NewUsageRecord;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use leases::LeaseDuration;
use serde_json::Value as Json;

/// Longest accepted worker id.
const MAX_WORKER_ID: usize = 100;
/// Longest accepted task text.
const MAX_TASK: usize = 10_000;

/// Who asks for a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunPrincipal {
    /// A machine caller, with its key's restrictions.
    ApiKey {
        /// The key.
        key_id: ApiKeyId,
        /// Workers the key may run; `None` means all. (Its concurrent-run limit is read
        /// from its row by the admission itself.)
        allowed_workers: Option<Vec<String>>,
    },
    /// A signed-in member.
    User {
        /// The user.
        user_id: UserId,
        /// Their role in the tenant.
        role: MembershipRole,
    },
}

/// A request to start a run.
#[derive(Clone, Debug)]
pub struct AdmitRunRequest {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Who asks.
    pub principal: RunPrincipal,
    /// Worker to run.
    pub worker_id: String,
    /// What to do.
    pub task: String,
    /// Input payload.
    pub input: Option<Json>,
    /// Id to create the run with (the caller's audit row names it).
    pub run_id: RunId,
    /// Tokens to reserve against the month's quota until the run finishes (0 to
    /// [`MAX_RUN_METRIC`]); a run that declares none reserves none.
    pub token_estimate: i64,
    /// The audit row to write with the run, in the same statement (values are redacted).
    pub audit: Option<AuditEntry>,
    /// The lease it is admitted with (renewed by its worker's heartbeats).
    pub lease: LeaseDuration,
}

/// Why a run was refused or could not be recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No such tenant.
    #[error("tenant not found; check the tenant id")]
    TenantNotFound,
    /// The tenant's lifecycle status forbids running.
    #[error("the tenant is {status}; runs need an active tenant")]
    TenantInactive {
        /// Its status.
        status: TenantStatus,
    },
    /// The member's role cannot run workers.
    #[error("role {role} cannot run workers; ask an admin for the member role")]
    Forbidden {
        /// The role.
        role: MembershipRole,
    },
    /// The worker id is empty, too long or has characters outside `[a-z0-9_-]`.
    #[error("worker id must be 1 to {MAX_WORKER_ID} characters of a-z, 0-9, `-` or `_`")]
    InvalidWorker,
    /// The task is empty or too long.
    #[error("task must be 1 to {MAX_TASK} characters")]
    InvalidTask,
    /// The task, input, output, replay token or error text holds a NUL character, which
    /// storage cannot hold.
    #[error(transparent)]
    TextHasNul(#[from] NulCharacter),
    /// The task or error text holds a control character other than line feed and tab.
    #[error(transparent)]
    ControlCharacter(TextError),
    /// The key may not run this worker.
    #[error("this API key may not run worker `{worker}`")]
    WorkerNotAllowed {
        /// The worker asked for.
        worker: String,
    },
    /// The daily run quota is used up.
    #[error(
        "runs_per_day quota exceeded: {used}/{limit}; try again tomorrow (UTC) or upgrade the plan"
    )]
    DailyRunLimit {
        /// The quota.
        limit: i32,
        /// Runs today.
        used: i32,
    },
    /// The monthly token quota is used up, or the run's estimate does not fit in what is
    /// left of it.
    #[error(
        "tokens_per_month quota exceeded: {used} used and {reserved} reserved of {limit}, \
         {requested} requested; wait for runs to finish or upgrade the plan"
    )]
    MonthlyTokenLimit {
        /// The quota.
        limit: i64,
        /// Tokens used this month.
        used: i64,
        /// Tokens reserved by runs not yet finished.
        reserved: i64,
        /// The run's estimate.
        requested: i64,
    },
    /// The run would bring one more worker than the plan allows at once.
    #[error("workers quota exceeded: {active}/{limit} workers busy; wait for one to finish")]
    WorkerLimit {
        /// The quota.
        limit: i32,
        /// Workers with runs queued or running.
        active: i32,
    },
    /// Too many runs are queued or running for the tenant.
    #[error("concurrent_runs quota exceeded: {active}/{limit}; wait for a run to finish")]
    ConcurrentRunLimit {
        /// The quota.
        limit: i32,
        /// Runs queued or running.
        active: u64,
    },
    /// Too many runs are queued or running for this key.
    #[error("this key's concurrent runs are exceeded: {active}/{limit}; wait for a run to finish")]
    KeyConcurrentRunLimit {
        /// The key's limit.
        limit: i32,
        /// Its runs queued or running.
        active: u64,
    },
    /// The admission was refused, yet the usage read back under the same lock exhausts no
    /// limit: a fault on our side (the driver's conditions and this engine's reading
    /// disagree), never the caller's.
    #[error(
        "the run was refused but no quota is exhausted ({active} active runs); this is our fault, retry later"
    )]
    AdmissionUnexplained {
        /// Runs queued or running when it was refused.
        active: u64,
    },
    /// No such run in this tenant.
    #[error("run not found; check the run id")]
    RunNotFound,
    /// The run already finished; its results are final.
    #[error("run already finished as {status}; a finished run is final")]
    AlreadyFinished {
        /// How it finished.
        status: RunStatus,
    },
    /// A metric is negative or above [`MAX_RUN_METRIC`].
    #[error("run metrics must be 0 to {MAX_RUN_METRIC} ({field})")]
    InvalidMetrics {
        /// The offending field.
        field: &'static str,
    },
    /// The error text of a completion is longer than [`MAX_RUN_ERROR_CHARS`].
    #[error("error text must be at most {MAX_RUN_ERROR_CHARS} characters (got {chars})")]
    ErrorTextTooLong {
        /// Characters sent.
        chars: usize,
    },
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to {}", crate::MAX_PAGE_LIMIT)]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for RunError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for RunError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl RunError {
    /// A refused free-text field: NUL keeps its own code (`text_has_nul`), as for JSON fields.
    fn from_text(error: TextError) -> Self {
        match error {
            TextError::Nul { field } => Self::TextHasNul(NulCharacter {
                field: field.to_owned(),
                in_key: false,
            }),
            other => Self::ControlCharacter(other),
        }
    }
}

impl ErrorCode for RunError {
    fn code(&self) -> &'static str {
        match self {
            Self::TenantNotFound => "tenant_not_found",
            Self::TenantInactive { .. } => "tenant_inactive",
            Self::Forbidden { .. } => "forbidden",
            Self::InvalidWorker => "invalid_worker_id",
            Self::InvalidTask => "invalid_task",
            Self::TextHasNul(_) => "text_has_nul",
            Self::ControlCharacter(_) => "text_has_control_character",
            Self::WorkerNotAllowed { .. } => "worker_not_allowed",
            Self::DailyRunLimit { .. } => "quota_runs_per_day",
            Self::MonthlyTokenLimit { .. } => "quota_tokens_per_month",
            Self::WorkerLimit { .. } => "quota_workers",
            Self::ConcurrentRunLimit { .. } => "quota_concurrent_runs",
            Self::KeyConcurrentRunLimit { .. } => "quota_key_concurrent_runs",
            Self::AdmissionUnexplained { .. } => "admission_unexplained",
            Self::RunNotFound => "run_not_found",
            Self::AlreadyFinished { .. } => "run_already_finished",
            Self::InvalidMetrics { .. } => "invalid_run_metrics",
            Self::ErrorTextTooLong { .. } => "run_error_too_long",
            Self::InvalidPage => "invalid_page",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::TenantNotFound | Self::RunNotFound => 404,
            Self::TenantInactive { .. }
            | Self::Forbidden { .. }
            | Self::WorkerNotAllowed { .. } => 403,
            Self::InvalidWorker
            | Self::InvalidTask
            | Self::TextHasNul(_)
            | Self::ControlCharacter(_)
            | Self::InvalidMetrics { .. }
            | Self::ErrorTextTooLong { .. }
            | Self::InvalidPage => 422,
            Self::DailyRunLimit { .. }
            | Self::MonthlyTokenLimit { .. }
            | Self::WorkerLimit { .. }
            | Self::ConcurrentRunLimit { .. }
            | Self::KeyConcurrentRunLimit { .. } => 429,
            Self::AlreadyFinished { .. } => 409,
            Self::AdmissionUnexplained { .. } => 500,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidWorker => Some("worker_id"),
            Self::InvalidTask => Some("task"),
            Self::TextHasNul(nul) => Some(&nul.field),
            Self::ControlCharacter(text) => Some(text.field()),
            Self::InvalidMetrics { field } => Some(field),
            Self::ErrorTextTooLong { .. } => Some("error"),
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// The UTC day and month the counters of `now` belong to.
pub fn usage_period(now: DateTime<Utc>) -> UsagePeriod {
    let day = now.date_naive();
    let month = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day);
    UsagePeriod { day, month }
}

fn validate(request: &AdmitRunRequest) -> Result<(), RunError> {
    let worker = request.worker_id.as_str();
    let valid_worker = !worker.is_empty()
        && worker.len() <= MAX_WORKER_ID
        && worker
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_worker {
        return Err(RunError::InvalidWorker);
    }
    let task_len = request.task.trim().chars().count();
    if task_len == 0 || request.task.chars().count() > MAX_TASK {
        return Err(RunError::InvalidTask);
    }
    FreeText::parse("task", &request.task).map_err(RunError::from_text)?;
    if let Some(input) = &request.input {
        reject_nul("input", input)?;
    }
    if !(0..=MAX_RUN_METRIC).contains(&request.token_estimate) {
        return Err(RunError::InvalidMetrics {
            field: "token_estimate",
        });
    }
    match &request.principal {
        RunPrincipal::User { role, .. } if *role == MembershipRole::Viewer => {
            Err(RunError::Forbidden { role: *role })
        }
        RunPrincipal::ApiKey {
            allowed_workers: Some(allowed),
            ..
        } if !allowed.iter().any(|w| w == worker) => Err(RunError::WorkerNotAllowed {
            worker: worker.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Which limit refused an admission, from the usage read after the refusal. When none is
/// exhausted, says so ([`RunError::AdmissionUnexplained`]) instead of blaming one.
fn refusal(usage: &AdmissionUsage, period: UsagePeriod, requested: i64) -> RunError {
    let tenant = &usage.tenant;
    if tenant.status != TenantStatus::Active {
        return RunError::TenantInactive {
            status: tenant.status,
        };
    }
    if let Some(key) = usage.key {
        return match key.max_concurrent_runs {
            Some(limit) if key.active_runs >= limit => RunError::KeyConcurrentRunLimit {
                limit,
                active: u64::try_from(key.active_runs).unwrap_or_default(),
            },
            _ => RunError::AdmissionUnexplained {
                active: u64::try_from(tenant.active_runs).unwrap_or_default(),
            },
        };
    }
    let runs_today = if tenant.usage_day == Some(period.day) {
        tenant.runs_today
    } else {
        0
    };
    if runs_today >= tenant.quotas.max_runs_per_day {
        return RunError::DailyRunLimit {
            limit: tenant.quotas.max_runs_per_day,
            used: runs_today,
        };
    }
    let used = if tenant.usage_month == Some(period.month) {
        tenant.tokens_this_month
    } else {
        0
    };
    let committed = used.saturating_add(tenant.tokens_reserved);
    let limit = tenant.quotas.max_tokens_per_month;
    if committed >= limit || committed.saturating_add(requested) > limit {
        return RunError::MonthlyTokenLimit {
            limit,
            used,
            reserved: tenant.tokens_reserved,
            requested,
        };
    }
    let limit = tenant.quotas.max_concurrent_runs;
    if tenant.active_runs >= limit {
        return RunError::ConcurrentRunLimit {
            limit,
            active: u64::try_from(tenant.active_runs).unwrap_or_default(),
        };
    }
    let limit = tenant.quotas.max_workers;
    if usage.new_worker && tenant.active_workers >= limit {
        return RunError::WorkerLimit {
            limit,
            active: tenant.active_workers,
        };
    }
    RunError::AdmissionUnexplained {
        active: u64::try_from(tenant.active_runs).unwrap_or_default(),
    }
}

/// An admitted run and the tenant's counters as the admission left them (read under the
/// admission's row lock, by the statement that bumped them: no second read needed).
#[derive(Clone, Debug)]
pub struct AdmittedRun {
    /// The run as inserted.
    pub run: RunSnapshot,
    /// The tenant after the admission: `runs_today` includes this run.
    pub tenant: TenantCoreSnapshot,
}

/// Admits and records a run (with its usage record and the caller's audit row), or says
/// which limit refused it. Run it inside one write transaction, and roll back on an error:
/// a refused admission may have moved counters before the limit that refused it.
pub async fn admit_run(
    db: Db<'_>,
    request: AdmitRunRequest,
    now: DateTime<Utc>,
) -> Result<AdmittedRun, RunError> {
    validate(&request)?;
    let driver = get_tenant_driver(db);
    let period = usage_period(now);
    let (key, user) = match &request.principal {
        RunPrincipal::ApiKey { key_id, .. } => (Some(*key_id), None),
        RunPrincipal::User { user_id, .. } => (None, Some(*user_id)),
    };
    let requested = request.token_estimate;
    let run = NewRun {
        id: request.run_id,
        tenant_id: request.tenant_id,
        worker_id: request.worker_id,
        task: request.task,
        api_key_id: key,
        user_id: user,
        input: request.input,
        parent_run_id: None,
        attempt: 1,
        token_estimate: request.token_estimate,
        lease_expires_at: request.lease.expiry(now),
    };
    let record = usage(
        &run.tenant_id,
        run.id,
        &run.worker_id,
        run.api_key_id,
        ("worker_runs", 1, UsageUnit::Count, "admitted"),
    );
    let audit = request.audit.map(crate::audit::redacted);
    match driver
        .admit_run(RunAdmission::new(run, period, record, audit), now)
        .await?
    {
        Admission::Admitted { run, tenant } => Ok(AdmittedRun { run, tenant }),
        Admission::Refused(usage) => Err(refusal(&usage, period, requested)),
        Admission::TenantMissing => Err(RunError::TenantNotFound),
        _ => Err(RunError::AdmissionUnexplained { active: 0 }),
    }
}

/// The usage record of `run`'s `event`, idempotent by run and event.
fn usage(
    tenant: &TenantId,
    run: RunId,
    worker: &str,
    key: Option<ApiKeyId>,
    (meter, amount, unit, event): (&str, i64, UsageUnit, &str),
) -> NewUsageRecord {
    NewUsageRecord {
        id: UsageRecordId::new(),
        tenant_id: *tenant,
        meter_name: meter.to_owned(),
        amount,
        unit,
        worker_id: Some(worker.to_owned()),
        api_key_id: key,
        run_id: Some(run),
        idempotency_key: Some(format!("run:{run}:{event}")),
        metadata: None,
    }
}

/// The largest metric a run may report: more than any run uses, and far enough from
/// `i64::MAX` that the month's token counter it is added to cannot overflow.
pub const MAX_RUN_METRIC: i64 = 1_000_000_000_000;

/// The longest error text a completion may carry: a message and a stack trace fit, a log
/// file does not (the text is stored on the run row and shown in every run read).
pub const MAX_RUN_ERROR_CHARS: usize = 10_000;

/// Records a run's results once, adds its tokens to the month's counter and writes its
/// usage records (idempotent by run). A second completion is refused with the first outcome.
pub async fn complete_run(
    db: Db<'_>,
    tenant: TenantId,
    run_id: RunId,
    completion: RunCompletion,
    now: DateTime<Utc>,
) -> Result<RunSnapshot, RunError> {
    let metrics = [
        ("total_tokens", completion.total_tokens),
        ("total_latency_ms", completion.total_latency_ms),
        ("cost_cents", completion.cost_cents),
        ("stages_completed", i64::from(completion.stages_completed)),
        ("recoveries", i64::from(completion.recoveries)),
        ("policy_violations", i64::from(completion.policy_violations)),
    ];
    if let Some((field, _)) = metrics
        .iter()
        .find(|(_, value)| !(0..=MAX_RUN_METRIC).contains(value))
    {
        return Err(RunError::InvalidMetrics { field });
    }
    if let Some(output) = &completion.output {
        reject_nul("output", output)?;
    }
    if let Some(replay_token) = &completion.replay_token {
        reject_nul("replay_token", replay_token)?;
    }
    if let Some(error) = &completion.error {
        let chars = error.chars().count();
        if chars > MAX_RUN_ERROR_CHARS {
            return Err(RunError::ErrorTextTooLong { chars });
        }
        FreeText::parse("error", error).map_err(RunError::from_text)?;
    }
    let driver = get_tenant_driver(db);
    let Some(run) = driver
        .update_run_completed(tenant, run_id, completion, now)
        .await?
    else {
        return match driver.fetch_run_by_id(tenant, run_id).await? {
            Some(existing) => Err(RunError::AlreadyFinished {
                status: existing.status,
            }),
            None => Err(RunError::RunNotFound),
        };
    };
    settle_finished_run(db, &run, now).await?;
    Ok(run)
}

/// What every run that just finished (completed, failed, or expired by its lease) settles:
/// it releases its worker's, tenant's and key's concurrency counts and its token
/// reservation, and adds the tokens it used to the month's counter, with their usage record
/// (idempotent by run). Call it once, in the transaction that finished the run.
pub async fn settle_finished_run(
    db: Db<'_>,
    run: &RunSnapshot,
    now: DateTime<Utc>,
) -> Result<(), RunError> {
    let driver = get_tenant_driver(db);
    driver.settle_run(run, usage_period(now), now).await?;
    if run.total_tokens > 0 {
        let record = usage(
            &run.tenant_id,
            run.id,
            &run.worker_id,
            run.api_key_id,
            ("tokens_used", run.total_tokens, UsageUnit::Tokens, "tokens"),
        );
        driver.insert_usage_record(record, now).await?;
    }
    Ok(())
}

/// The tenant's runs, newest first.
pub async fn list_runs(
    db: Db<'_>,
    tenant: TenantId,
    filter: &RunFilter,
    page: OffsetPage,
) -> Result<Page<RunSnapshot>, RunError> {
    let page = PageRequest::new(page)?.into_page();
    Ok(get_tenant_driver(db)
        .fetch_runs(tenant, filter, page)
        .await?)
}

/// One run of the tenant.
pub async fn get_run(db: Db<'_>, tenant: TenantId, run_id: RunId) -> Result<RunSnapshot, RunError> {
    get_tenant_driver(db)
        .fetch_run_by_id(tenant, run_id)
        .await?
        .ok_or(RunError::RunNotFound)
}

#[cfg(test)]
mod tests;
