//! Onboarding use cases: status, evidence-based advance, the SDK handshake, and the
//! operator's forced completion.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::{OperatorPrincipal, Principal};
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::onboarding::{self, ActivationEvidence, ForcedCompletion, OnboardingOutcome};
use account_engines::types::{ActorType, OnboardingState, TenantId};
use serde_json::json;

/// Where a tenant stands in onboarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnboardingStatus {
    /// The state.
    pub state: OnboardingState,
    /// What COMPLETE still needs.
    pub evidence: ActivationEvidence,
}

/// The tenant's onboarding state and activation evidence.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetOnboardingStatus;

impl Sealed for GetOnboardingStatus {}
impl UseCase for GetOnboardingStatus {
    type Output = OnboardingStatus;
    const OPERATION: Operation = Operation::OnboardingStatus;

    async fn run(&self, cx: &mut Context<'_>) -> Result<OnboardingStatus, SpineError> {
        let tenant = cx.tenant()?;
        let state = onboarding::state(cx.db, tenant).await?;
        let evidence = onboarding::evidence(cx.db, tenant, cx.now).await?;
        Ok(OnboardingStatus { state, evidence })
    }
}

/// Moves onboarding forward; COMPLETE only with the evidence. The current state is a no-op,
/// an earlier one is refused (`onboarding_regression`, 409).
#[derive(Clone, Copy, Debug)]
pub struct AdvanceOnboarding {
    /// The state to reach.
    pub target: OnboardingState,
}

impl Sealed for AdvanceOnboarding {}
impl UseCase for AdvanceOnboarding {
    type Output = OnboardingOutcome;
    const OPERATION: Operation = Operation::OnboardingAdvance;

    async fn run(&self, cx: &mut Context<'_>) -> Result<OnboardingOutcome, SpineError> {
        let tenant = cx.tenant()?;
        let outcome = onboarding::advance(cx.db, tenant, self.target, None, cx.now).await?;
        if !outcome.was_no_op {
            let change = Change::of("tenant", tenant)
                .before(json!({"state": outcome.from}))
                .after(json!({"state": outcome.to}));
            cx.audit(change).await?;
        }
        Ok(outcome)
    }
}

/// Records an SDK handshake and advances onboarding to SDK_CONNECTED.
#[derive(Clone, Debug)]
pub struct SdkHandshake {
    /// The SDK's version.
    pub sdk_version: String,
    /// The SDK's language.
    pub sdk_language: String,
    /// The client's own id, if it sent one.
    pub client_id: Option<String>,
}

impl Sealed for SdkHandshake {}
impl UseCase for SdkHandshake {
    type Output = OnboardingOutcome;
    const OPERATION: Operation = Operation::OnboardingSdkHandshake;

    async fn run(&self, cx: &mut Context<'_>) -> Result<OnboardingOutcome, SpineError> {
        let tenant = cx.tenant()?;
        let attestation = onboarding::attest(
            cx.db,
            tenant,
            &self.sdk_version,
            &self.sdk_language,
            self.client_id.as_deref(),
            cx.now,
        )
        .await?;
        // Evidence-driven: a handshake from a tenant already past SDK_CONNECTED is fine.
        let reached = OnboardingState::SdkConnected;
        let outcome = onboarding::reach(cx.db, tenant, reached, cx.now).await?;
        let after = json!({"sdk_version": attestation.sdk_version, "sdk_language": attestation.sdk_language});
        cx.audit(Change::of("sdk_attestation", attestation.id).after(after))
            .await?;
        Ok(outcome)
    }
}

/// Completes a tenant's onboarding without the activation evidence (operators only); the
/// reason is audited.
#[derive(Clone, Debug)]
pub struct ForceCompleteOnboarding {
    /// The tenant.
    pub tenant: TenantId,
    /// Why, for the audit row.
    pub reason: String,
}

impl Sealed for ForceCompleteOnboarding {}
impl UseCase for ForceCompleteOnboarding {
    type Output = OnboardingOutcome;
    const OPERATION: Operation = Operation::OnboardingForceComplete;

    async fn run(&self, cx: &mut Context<'_>) -> Result<OnboardingOutcome, SpineError> {
        let force = ForcedCompletion {
            actor_type: ActorType::Founder,
            reason: self.reason.clone(),
        };
        let complete = OnboardingState::Complete;
        let outcome =
            onboarding::advance(cx.db, self.tenant, complete, Some(&force), cx.now).await?;
        if !outcome.was_no_op {
            let after = json!({"state": outcome.to, "forced": outcome.forced});
            let change = Change::of("onboarding", self.tenant)
                .reason(&self.reason)
                .after(after);
            cx.audit(change).await?;
        }
        Ok(outcome)
    }
}

impl OperatorUseCase for ForceCompleteOnboarding {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant)
    }
}

impl Spine {
    /// Executes [`GetOnboardingStatus`].
    pub async fn onboarding_status(
        &self,
        principal: &Principal,
    ) -> Result<OnboardingStatus, SpineError> {
        self.execute(principal, GetOnboardingStatus).await
    }

    /// Executes [`AdvanceOnboarding`].
    pub async fn advance_onboarding(
        &self,
        principal: &Principal,
        target: OnboardingState,
    ) -> Result<OnboardingOutcome, SpineError> {
        self.execute(principal, AdvanceOnboarding { target }).await
    }

    /// Executes [`SdkHandshake`].
    pub async fn sdk_handshake(
        &self,
        principal: &Principal,
        sdk_version: &str,
        sdk_language: &str,
        client_id: Option<&str>,
    ) -> Result<OnboardingOutcome, SpineError> {
        let handshake = SdkHandshake {
            sdk_version: sdk_version.to_owned(),
            sdk_language: sdk_language.to_owned(),
            client_id: client_id.map(str::to_owned),
        };
        self.execute(principal, handshake).await
    }

    /// Executes [`ForceCompleteOnboarding`].
    pub async fn force_complete_onboarding(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        reason: &str,
    ) -> Result<OnboardingOutcome, SpineError> {
        let reason = reason.to_owned();
        let force = ForceCompleteOnboarding { tenant, reason };
        self.execute_as_operator(operator, force).await
    }
}
