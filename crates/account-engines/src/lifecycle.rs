//! The tenant lifecycle state machine (§3.3): which transitions exist, what each status
//! allows, and the transition use case that records actor, reason and time.
//!
//! Fixes over the original: a transition to the current status is an idempotent no-op, the
//! write is conditional on the status read (no lost race), every transition is recorded in
//! the history, and valid transitions come out in a fixed order.

use crate::PageRequest;
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
use account_drivers::get_tenant_lifecycle_driver;
pub use account_drivers::lifecycle::LifecycleEventSnapshot;
use account_drivers::lifecycle::NewLifecycleEvent;
use account_drivers::types::{ActorType, Reason, TenantId, TenantStatus, TextError};
use chrono::{DateTime, Utc};

/// What a tenant in a given status may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// SDK calls (runs).
    pub allows_sdk_execution: bool,
    /// Any write.
    pub allows_writes: bool,
    /// Any read.
    pub allows_reads: bool,
    /// Issuing API keys.
    pub allows_new_api_keys: bool,
    /// Refreshing tokens.
    pub allows_token_refresh: bool,
    /// No way out but archival (or none at all).
    pub is_terminal: bool,
    /// Can go back to active.
    pub is_reversible: bool,
}

/// The capability table.
pub fn capabilities(status: TenantStatus) -> Capabilities {
    let all = |on: bool| Capabilities {
        allows_sdk_execution: on,
        allows_writes: on,
        allows_reads: on,
        allows_new_api_keys: on,
        allows_token_refresh: on,
        is_terminal: false,
        is_reversible: false,
    };
    match status {
        TenantStatus::Active => all(true),
        TenantStatus::Suspended => Capabilities {
            allows_reads: true,
            allows_token_refresh: true,
            is_reversible: true,
            ..all(false)
        },
        TenantStatus::Terminated | TenantStatus::Archived => Capabilities {
            is_terminal: true,
            ..all(false)
        },
    }
}

/// The statuses reachable from `from`, in a fixed order.
pub fn valid_transitions(from: TenantStatus) -> &'static [TenantStatus] {
    match from {
        TenantStatus::Active => &[TenantStatus::Suspended, TenantStatus::Terminated],
        TenantStatus::Suspended => &[TenantStatus::Active, TenantStatus::Terminated],
        TenantStatus::Terminated => &[TenantStatus::Archived],
        TenantStatus::Archived => &[],
    }
}

/// A lifecycle action, as operators name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleAction {
    /// Active → suspended.
    Suspend,
    /// Suspended → active.
    Resume,
    /// Active or suspended → terminated.
    Terminate,
    /// Terminated → archived.
    Archive,
}

impl LifecycleAction {
    /// The status the action leads to.
    pub fn target(self) -> TenantStatus {
        match self {
            Self::Suspend => TenantStatus::Suspended,
            Self::Resume => TenantStatus::Active,
            Self::Terminate => TenantStatus::Terminated,
            Self::Archive => TenantStatus::Archived,
        }
    }

    /// The action's recorded name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Suspend => "suspend_tenant",
            Self::Resume => "resume_tenant",
            Self::Terminate => "terminate_tenant",
            Self::Archive => "archive_tenant",
        }
    }
}

/// Who transitions the tenant. Only platform actors may (the spine checks the principal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleActor {
    /// `founder` (platform operator) or `system`.
    pub actor_type: ActorType,
    /// The operator's id or the system component's name: 1 to [`MAX_ACTOR_ID_CHARS`]
    /// characters, no control characters.
    pub actor_id: String,
}

/// Longest recorded actor id (the history's `actor_id` column holds 100).
pub const MAX_ACTOR_ID_CHARS: usize = 100;

/// Why a transition was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// No such tenant.
    #[error("tenant not found; check the tenant id")]
    TenantNotFound,
    /// The state machine has no such edge.
    #[error("cannot go from {from} to {to}; from {from} the tenant can go to: {allowed}")]
    InvalidTransition {
        /// Current status.
        from: TenantStatus,
        /// Requested status.
        to: TenantStatus,
        /// What is allowed instead.
        allowed: String,
    },
    /// Only the platform transitions tenants.
    #[error(
        "only platform operators or the system may change a tenant's lifecycle; ask an operator"
    )]
    Forbidden,
    /// The actor id is empty, too long or has control characters.
    #[error("the actor id must be 1 to {MAX_ACTOR_ID_CHARS} characters without control characters")]
    InvalidActor,
    /// The reason is missing, too long or holds control characters (see [`Reason`]).
    #[error(transparent)]
    InvalidReason(TextError),
    /// Another transition won the race; read the status again.
    #[error("the tenant's status changed concurrently; retry")]
    Conflict,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for LifecycleError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for LifecycleError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for LifecycleError {
    fn code(&self) -> &'static str {
        match self {
            Self::TenantNotFound => "tenant_not_found",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::Forbidden => "forbidden",
            Self::InvalidActor => "invalid_actor",
            Self::InvalidReason(_) => "invalid_reason",
            Self::Conflict => "concurrent_transition",
            Self::InvalidPage => "invalid_page",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::TenantNotFound => 404,
            Self::InvalidTransition { .. } | Self::Conflict => 409,
            Self::Forbidden => 403,
            Self::InvalidActor | Self::InvalidReason(_) | Self::InvalidPage => 422,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidReason(_) => Some("reason"),
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// Checks an edge of the state machine.
pub fn check_transition(from: TenantStatus, to: TenantStatus) -> Result<(), LifecycleError> {
    if from == to || valid_transitions(from).contains(&to) {
        return Ok(());
    }
    let allowed = valid_transitions(from);
    Err(LifecycleError::InvalidTransition {
        from,
        to,
        allowed: if allowed.is_empty() {
            "nothing (terminal)".to_owned()
        } else {
            allowed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// The outcome of a transition request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransitionOutcome {
    /// Status before.
    pub from: TenantStatus,
    /// Status after.
    pub to: TenantStatus,
    /// Whether nothing had to change (already in the target status).
    pub was_no_op: bool,
    /// The recorded history entry, when something changed.
    pub event: Option<LifecycleEventSnapshot>,
}

/// Applies `action` to the tenant: conditional on the status just read, recorded in the
/// history with actor, reason and time. A transition to the current status changes nothing.
pub async fn transition(
    db: Db<'_>,
    tenant: TenantId,
    action: LifecycleAction,
    actor: &LifecycleActor,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<TransitionOutcome, LifecycleError> {
    if !matches!(actor.actor_type, ActorType::Founder | ActorType::System) {
        return Err(LifecycleError::Forbidden);
    }
    let actor_id = actor.actor_id.trim();
    let actor_chars = actor_id.chars().count();
    if actor_chars == 0
        || actor_chars > MAX_ACTOR_ID_CHARS
        || actor_id.chars().any(char::is_control)
    {
        return Err(LifecycleError::InvalidActor);
    }
    let reason = Reason::parse(reason).map_err(LifecycleError::InvalidReason)?;
    let reason = reason.as_str();
    let driver = get_tenant_lifecycle_driver(db);
    let from = driver
        .fetch_tenant_status(tenant)
        .await?
        .ok_or(LifecycleError::TenantNotFound)?;
    let to = action.target();
    check_transition(from, to)?;
    if from == to {
        return Ok(TransitionOutcome {
            from,
            to,
            was_no_op: true,
            event: None,
        });
    }
    let suspended_reason = (to == TenantStatus::Suspended).then_some(reason);
    driver
        .update_lifecycle_status(tenant, from, to, suspended_reason, now)
        .await?
        .ok_or(LifecycleError::Conflict)?;
    let event = driver
        .insert_lifecycle_event(
            NewLifecycleEvent {
                tenant_id: tenant,
                from,
                to,
                action: action.name().to_owned(),
                actor_type: actor.actor_type,
                actor_id: actor_id.to_owned(),
                reason: Some(reason.to_owned()),
            },
            now,
        )
        .await?;
    Ok(TransitionOutcome {
        from,
        to,
        was_no_op: false,
        event: Some(event),
    })
}

/// The tenant's transitions, newest first.
pub async fn history(
    db: Db<'_>,
    tenant: TenantId,
    page: OffsetPage,
) -> Result<Page<LifecycleEventSnapshot>, LifecycleError> {
    let page = PageRequest::new(page)?.into_page();
    Ok(get_tenant_lifecycle_driver(db)
        .fetch_lifecycle_history(tenant, page)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_matches_the_specification() {
        use TenantStatus::*;
        assert!(check_transition(Active, Suspended).is_ok());
        assert!(check_transition(Suspended, Active).is_ok());
        assert!(check_transition(Suspended, Terminated).is_ok());
        assert!(check_transition(Terminated, Archived).is_ok());
        assert!(check_transition(Active, Active).is_ok(), "idempotent no-op");
        for (from, to) in [
            (Active, Archived),
            (Suspended, Archived),
            (Terminated, Active),
            (Terminated, Suspended),
            (Archived, Active),
            (Archived, Terminated),
        ] {
            assert!(
                matches!(
                    check_transition(from, to),
                    Err(LifecycleError::InvalidTransition { .. })
                ),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn archived_is_terminal_and_says_so() {
        let error = check_transition(TenantStatus::Archived, TenantStatus::Active).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot go from archived to active; from archived the tenant can go to: nothing (terminal)"
        );
        assert_eq!(error.http_status(), 409);
    }

    #[test]
    fn capabilities_follow_the_table() {
        assert!(capabilities(TenantStatus::Active).allows_writes);
        let suspended = capabilities(TenantStatus::Suspended);
        assert!(suspended.allows_reads && !suspended.allows_writes && suspended.is_reversible);
        assert!(!capabilities(TenantStatus::Terminated).allows_reads);
        assert!(capabilities(TenantStatus::Archived).is_terminal);
    }

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            LifecycleError::TenantNotFound,
            LifecycleError::InvalidTransition {
                from: TenantStatus::Archived,
                to: TenantStatus::Active,
                allowed: "nothing (terminal)".into(),
            },
            LifecycleError::Forbidden,
            LifecycleError::InvalidActor,
            LifecycleError::InvalidReason(TextError::Empty { field: "reason" }),
            LifecycleError::Conflict,
            LifecycleError::InvalidPage,
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                LifecycleError::TenantNotFound
                | LifecycleError::InvalidTransition { .. }
                | LifecycleError::Forbidden
                | LifecycleError::InvalidActor
                | LifecycleError::InvalidReason(_)
                | LifecycleError::Conflict
                | LifecycleError::InvalidPage => {}
                LifecycleError::Storage(_) => unreachable!("not caller-caused"),
            }
        }
        crate::error::assert_caller_errors(&errors);
    }

    #[test]
    fn transitions_come_out_in_a_fixed_order() {
        assert_eq!(
            valid_transitions(TenantStatus::Active),
            &[TenantStatus::Suspended, TenantStatus::Terminated]
        );
    }
}
