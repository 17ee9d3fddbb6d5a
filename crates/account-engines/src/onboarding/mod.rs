//! Onboarding (§3.4): forward-only, idempotent, and COMPLETE only with evidence.
//!
//! [`advance`] to the current state is an idempotent no-op; to an earlier state it is refused
//! ([`OnboardingError::Regression`]), so a caller never believes it moved a tenant back.
//! [`reach`] is the evidence-driven form (an SDK handshake): it moves forward when behind and
//! is a no-op when the tenant is already there or past it. The write is one conditional
//! update in the driver (`WHERE state < target`), so two concurrent advances can never regress
//! the state. Completion needs an active API key and an SDK attestation, unless a platform
//! operator forces it with a reason, which the caller records in the audit log.

mod attestations;

pub use attestations::*;

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::types::{ActorType, OnboardingState, Reason, TenantId, TextError};
use account_drivers::{get_onboarding_driver, get_sdk_attestation_driver, get_tenant_driver};
use chrono::{DateTime, Utc};

/// Why an advance was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardingError {
    /// No such tenant.
    #[error("tenant not found; check the tenant id")]
    TenantNotFound,
    /// The target is behind the tenant's current state; onboarding only moves forward.
    #[error(
        "onboarding is at {current} and only moves forward; ask for {current} or a later state, not {target}"
    )]
    Regression {
        /// The tenant's state.
        current: OnboardingState,
        /// The earlier state asked for.
        target: OnboardingState,
    },
    /// COMPLETE needs evidence that is missing.
    #[error("onboarding cannot complete yet: missing {missing}; provide it and retry")]
    ActivationIncomplete {
        /// The unmet requirements, comma-separated.
        missing: String,
    },
    /// Only the platform may force completion.
    #[error(
        "only platform operators may force onboarding completion; provide the evidence instead"
    )]
    Forbidden,
    /// A forced completion needs a reason (see [`Reason`]): missing, too long or holding
    /// control characters.
    #[error(transparent)]
    InvalidReason(TextError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for OnboardingError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for OnboardingError {
    fn code(&self) -> &'static str {
        match self {
            Self::TenantNotFound => "tenant_not_found",
            Self::Regression { .. } => "onboarding_regression",
            Self::ActivationIncomplete { .. } => "activation_incomplete",
            Self::Forbidden => "forbidden",
            Self::InvalidReason(_) => "invalid_reason",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::TenantNotFound => 404,
            Self::ActivationIncomplete { .. } | Self::Regression { .. } => 409,
            Self::Forbidden => 403,
            Self::InvalidReason(_) => 422,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidReason(_) => Some("reason"),
            _ => None,
        }
    }
}

/// A platform operator's override of the activation evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForcedCompletion {
    /// Must be `founder` or `system`.
    pub actor_type: ActorType,
    /// Why the evidence is waived.
    pub reason: String,
}

/// The evidence COMPLETE requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActivationEvidence {
    /// An active, unexpired API key exists.
    pub key_ready: bool,
    /// An SDK attested for the tenant.
    pub sdk_attested: bool,
}

impl ActivationEvidence {
    /// What is missing, or `None` when complete.
    pub fn missing(self) -> Option<String> {
        let mut missing = Vec::new();
        if !self.key_ready {
            missing.push("an active API key");
        }
        if !self.sdk_attested {
            missing.push("an SDK attestation (connect the SDK once)");
        }
        (!missing.is_empty()).then(|| missing.join(", "))
    }
}

/// The result of an advance.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnboardingOutcome {
    /// The tenant.
    pub tenant_id: TenantId,
    /// State before.
    pub from: OnboardingState,
    /// State after.
    pub to: OnboardingState,
    /// Nothing changed: the tenant was already at the target (or, for [`reach`], past it).
    pub was_no_op: bool,
    /// COMPLETE was reached without the evidence, on an operator's authority.
    pub forced: bool,
}

/// The state, or `TenantNotFound`.
pub async fn state(db: Db<'_>, tenant: TenantId) -> Result<OnboardingState, OnboardingError> {
    get_onboarding_driver(db)
        .fetch_onboarding_state(tenant)
        .await?
        .ok_or(OnboardingError::TenantNotFound)
}

/// Reads the activation evidence.
pub async fn evidence(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<ActivationEvidence, OnboardingError> {
    let keys = get_tenant_driver(db)
        .count_active_api_keys(tenant, now)
        .await?;
    let attested = get_sdk_attestation_driver(db)
        .has_attestation(tenant)
        .await?;
    Ok(ActivationEvidence {
        key_ready: keys > 0,
        sdk_attested: attested,
    })
}

/// Moves the tenant forward to `target` (skipping is allowed). Asking for the current state is
/// an idempotent no-op; asking for an earlier one is refused with
/// [`OnboardingError::Regression`], also when a concurrent advance overtook this one.
pub async fn advance(
    db: Db<'_>,
    tenant: TenantId,
    target: OnboardingState,
    forced: Option<&ForcedCompletion>,
    now: DateTime<Utc>,
) -> Result<OnboardingOutcome, OnboardingError> {
    check_force(forced)?;
    let current = state(db, tenant).await?;
    if current > target {
        return Err(OnboardingError::Regression { current, target });
    }
    move_forward(db, tenant, current, target, forced, now).await
}

/// Moves the tenant forward to `target` when it is behind, and is a no-op when it is already
/// there or past it: for advances driven by evidence (an SDK handshake after completion is
/// not a regression). Never forced.
pub async fn reach(
    db: Db<'_>,
    tenant: TenantId,
    target: OnboardingState,
    now: DateTime<Utc>,
) -> Result<OnboardingOutcome, OnboardingError> {
    let current = state(db, tenant).await?;
    if current >= target {
        return Ok(no_op(tenant, current));
    }
    match move_forward(db, tenant, current, target, None, now).await {
        Err(OnboardingError::Regression { current, .. }) => Ok(no_op(tenant, current)),
        other => other,
    }
}

fn check_force(forced: Option<&ForcedCompletion>) -> Result<(), OnboardingError> {
    if let Some(force) = forced {
        if !matches!(force.actor_type, ActorType::Founder | ActorType::System) {
            return Err(OnboardingError::Forbidden);
        }
        Reason::parse(&force.reason).map_err(OnboardingError::InvalidReason)?;
    }
    Ok(())
}

fn no_op(tenant: TenantId, current: OnboardingState) -> OnboardingOutcome {
    OnboardingOutcome {
        tenant_id: tenant,
        from: current,
        to: current,
        was_no_op: true,
        forced: false,
    }
}

/// The advance from `current` (just read, at most `target`) to `target`.
async fn move_forward(
    db: Db<'_>,
    tenant: TenantId,
    current: OnboardingState,
    target: OnboardingState,
    forced: Option<&ForcedCompletion>,
    now: DateTime<Utc>,
) -> Result<OnboardingOutcome, OnboardingError> {
    if current == target {
        return Ok(no_op(tenant, current));
    }
    let mut was_forced = false;
    if target >= OnboardingState::Complete
        && let Some(missing) = evidence(db, tenant, now).await?.missing()
    {
        if forced.is_none() {
            return Err(OnboardingError::ActivationIncomplete { missing });
        }
        was_forced = true;
    }
    let advance = get_onboarding_driver(db)
        .advance_onboarding_state(tenant, target, now)
        .await?
        .ok_or(OnboardingError::TenantNotFound)?;
    if !advance.changed && advance.current > target {
        // A concurrent advance went past the target between the read and the write.
        return Err(OnboardingError::Regression {
            current: advance.current,
            target,
        });
    }
    Ok(OnboardingOutcome {
        tenant_id: tenant,
        from: current,
        to: advance.current,
        was_no_op: !advance.changed,
        forced: was_forced && advance.changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_names_every_missing_piece_of_evidence() {
        let none = ActivationEvidence {
            key_ready: false,
            sdk_attested: false,
        };
        assert_eq!(
            none.missing().unwrap(),
            "an active API key, an SDK attestation (connect the SDK once)"
        );
        assert_eq!(
            ActivationEvidence {
                key_ready: true,
                sdk_attested: false
            }
            .missing()
            .unwrap(),
            "an SDK attestation (connect the SDK once)"
        );
        assert!(
            ActivationEvidence {
                key_ready: true,
                sdk_attested: true
            }
            .missing()
            .is_none()
        );
    }

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            OnboardingError::TenantNotFound,
            OnboardingError::Regression {
                current: OnboardingState::SdkConnected,
                target: OnboardingState::Created,
            },
            OnboardingError::ActivationIncomplete {
                missing: "an active API key".into(),
            },
            OnboardingError::Forbidden,
            OnboardingError::InvalidReason(TextError::Empty { field: "reason" }),
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                OnboardingError::TenantNotFound
                | OnboardingError::Regression { .. }
                | OnboardingError::ActivationIncomplete { .. }
                | OnboardingError::Forbidden
                | OnboardingError::InvalidReason(_) => {}
                OnboardingError::Storage(_) => unreachable!("not caller-caused"),
            }
        }
        crate::error::assert_caller_errors(&errors);
        let regression = &errors[1];
        assert_eq!(
            (regression.code(), regression.http_status()),
            ("onboarding_regression", 409)
        );
        assert_eq!(
            regression.to_string(),
            "onboarding is at SDK_CONNECTED and only moves forward; ask for SDK_CONNECTED or a later state, not CREATED"
        );
    }
}
