//! Onboarding (§3.4): forward-only, idempotent, and COMPLETE only with evidence.
//!
//! The advance is one conditional update in the driver (`WHERE state < target`), so two
//! concurrent advances can never regress the state. Completion needs an active API key and
//! an SDK attestation, unless a platform operator forces it with a reason, which the caller
//! records in the audit log.

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::types::{ActorType, OnboardingState, TenantId};
use account_drivers::{get_onboarding_driver, get_sdk_attestation_driver, get_tenant_driver};
use chrono::{DateTime, Utc};

/// Why an advance was refused.
#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    /// No such tenant.
    #[error("tenant not found")]
    TenantNotFound,
    /// COMPLETE needs evidence that is missing.
    #[error("onboarding cannot complete yet: missing {missing}")]
    ActivationIncomplete {
        /// The unmet requirements, comma-separated.
        missing: String,
    },
    /// Only the platform may force completion.
    #[error("only platform operators may force onboarding completion")]
    Forbidden,
    /// A forced completion needs a reason.
    #[error("forcing completion needs a reason of 1 to 500 characters")]
    InvalidReason,
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
            Self::ActivationIncomplete { .. } => "activation_incomplete",
            Self::Forbidden => "forbidden",
            Self::InvalidReason => "invalid_reason",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::TenantNotFound => 404,
            Self::ActivationIncomplete { .. } => 409,
            Self::Forbidden => 403,
            Self::InvalidReason => 422,
            Self::Storage(e) => e.http_status(),
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
pub struct OnboardingOutcome {
    /// The tenant.
    pub tenant_id: TenantId,
    /// State before.
    pub from: OnboardingState,
    /// State after.
    pub to: OnboardingState,
    /// Nothing changed: the tenant was already at or past the target.
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

/// Moves the tenant forward to `target` (skipping is allowed; going back never happens).
pub async fn advance(
    db: Db<'_>,
    tenant: TenantId,
    target: OnboardingState,
    forced: Option<&ForcedCompletion>,
    now: DateTime<Utc>,
) -> Result<OnboardingOutcome, OnboardingError> {
    if let Some(force) = forced {
        if !matches!(force.actor_type, ActorType::Founder | ActorType::System) {
            return Err(OnboardingError::Forbidden);
        }
        let reason = force.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(OnboardingError::InvalidReason);
        }
    }
    let current = state(db, tenant).await?;
    if current >= target {
        return Ok(OnboardingOutcome {
            tenant_id: tenant,
            from: current,
            to: current,
            was_no_op: true,
            forced: false,
        });
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
    fn refusals_are_client_errors() {
        assert_eq!(
            OnboardingError::ActivationIncomplete {
                missing: "x".into()
            }
            .http_status(),
            409
        );
        assert_eq!(OnboardingError::Forbidden.http_status(), 403);
        assert_eq!(OnboardingError::TenantNotFound.code(), "tenant_not_found");
    }
}
