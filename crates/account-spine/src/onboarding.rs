//! Onboarding use cases: status, evidence-based advance, the SDK handshake.

use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::Subject;
use crate::{Spine, SpineError};
use account_engines::onboarding::{self, ActivationEvidence, OnboardingOutcome};
use account_engines::types::OnboardingState;
use serde_json::json;

/// Where a tenant stands in onboarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnboardingStatus {
    /// The state.
    pub state: OnboardingState,
    /// What COMPLETE still needs.
    pub evidence: ActivationEvidence,
}

impl Spine {
    /// The tenant's onboarding state and activation evidence.
    pub async fn onboarding_status(
        &self,
        principal: &Principal,
    ) -> Result<OnboardingStatus, SpineError> {
        let operation = Operation::OnboardingStatus;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            read_use_case!(self, principal, operation, |db| {
                let state = onboarding::state(db, principal.tenant_id).await?;
                let evidence = onboarding::evidence(db, principal.tenant_id, now).await?;
                Ok(OnboardingStatus { state, evidence })
            })
        })
        .await
    }

    /// Moves onboarding forward; COMPLETE only with the evidence. The current state is a no-op,
    /// an earlier one is refused (`onboarding_regression`, 409).
    pub async fn advance_onboarding(
        &self,
        principal: &Principal,
        target: OnboardingState,
    ) -> Result<OnboardingOutcome, SpineError> {
        let operation = Operation::OnboardingAdvance;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            write_use_case!(self, principal, operation, |db| {
                let outcome =
                    onboarding::advance(db, principal.tenant_id, target, None, now).await?;
                if !outcome.was_no_op {
                    let (before, after) =
                        (json!({"state": outcome.from}), json!({"state": outcome.to}));
                    self.audit(
                        db,
                        principal,
                        operation,
                        "tenant",
                        &principal.tenant_id.to_string(),
                        Some(before),
                        Some(after),
                        now,
                    )
                    .await?;
                }
                Ok(outcome)
            })
        })
        .await
    }

    /// Records an SDK handshake and advances onboarding to SDK_CONNECTED.
    pub async fn sdk_handshake(
        &self,
        principal: &Principal,
        sdk_version: &str,
        sdk_language: &str,
        client_id: Option<&str>,
    ) -> Result<OnboardingOutcome, SpineError> {
        let operation = Operation::OnboardingSdkHandshake;
        self.observe(operation, Subject::Principal(principal), async {
        let now = self.clock.now();
        write_use_case!(self, principal, operation, |db| {
            let attestation = onboarding::attest(
                db,
                principal.tenant_id,
                sdk_version,
                sdk_language,
                client_id,
                now,
            )
            .await?;
            // Evidence-driven: a handshake from a tenant already past SDK_CONNECTED is fine.
            let outcome =
                onboarding::reach(db, principal.tenant_id, OnboardingState::SdkConnected, now)
                    .await?;
            let after = json!({"sdk_version": attestation.sdk_version, "sdk_language": attestation.sdk_language});
            self.audit(
                db,
                principal,
                operation,
                "sdk_attestation",
                &attestation.id.to_string(),
                None,
                Some(after),
                now,
            )
            .await?;
            Ok(outcome)
        })
        })
        .await
    }
}
