//! Onboarding: the tenant's progress (`/v1/onboarding`), SDK attestations
//! (`/v1/sdk/handshake`), advancing, and the operator's forced completion.
//!
//! `/v1/platform/...` routes take a platform operator key (`acc_op_...`, created with
//! `account-api operator-key create`); a tenant key is refused with 403.

use crate::AppState;
use crate::auth::{Authenticated, Operator};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, Validate};
use crate::idempotency::Idempotency;
use crate::routes::tenants::TenantPath;
use account_spine::idempotency::{AsOperator, AsTenant};
use account_spine::onboarding::{AdvanceOnboarding, ForceCompleteOnboarding, SdkHandshake};
use account_spine::types::OnboardingState;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Steps from `CREATED` to `COMPLETE`, both counted.
const TOTAL_STEPS: usize = OnboardingState::ALL.len();

/// What activation still needs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EvidenceView {
    /// An active, unexpired API key exists.
    key_ready: bool,
    /// An SDK attested for the tenant.
    sdk_attested: bool,
}

/// The tenant's onboarding progress.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OnboardingView {
    /// The state.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    state: OnboardingState,
    /// Its position, 0 (`CREATED`) to 4 (`COMPLETE`).
    step_index: i16,
    /// How many states there are.
    total_steps: usize,
    /// Whether the state is `COMPLETE`.
    is_complete: bool,
    /// What activation still needs.
    evidence: EvidenceView,
}

/// The tenant's onboarding state and what activation still needs.
#[utoipa::path(
    get,
    path = "/v1/onboarding",
    tag = "onboarding",
    operation_id = "onboarding_status",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The onboarding state.", body = OnboardingView))
)]
pub(crate) async fn status(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<OnboardingView>, ApiError> {
    let status = state.spine.onboarding_status(&principal).await?;
    Ok(Json(OnboardingView {
        state: status.state,
        step_index: status.state.value(),
        total_steps: TOTAL_STEPS,
        is_complete: status.state == OnboardingState::Complete,
        evidence: EvidenceView {
            key_ready: status.evidence.key_ready,
            sdk_attested: status.evidence.sdk_attested,
        },
    }))
}

/// `POST /v1/sdk/handshake`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandshakeBody {
    /// The SDK's version: 1 to 100 letters, digits and `. _ + -`.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._+-]+$")]
    sdk_version: String,
    /// The SDK's language: 1 to 50 letters, digits and `. _ + -`.
    #[schema(min_length = 1, max_length = 50, pattern = "^[A-Za-z0-9._+-]+$")]
    sdk_language: String,
    /// The client's id: 1 to 200 letters, digits and `. _ + -`.
    #[schema(min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9._+-]+$")]
    client_id: Option<String>,
}

impl Validate for HandshakeBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("sdk_version", Some(&self.sdk_version), 1, 100);
        errors.length("sdk_language", Some(&self.sdk_language), 1, 50);
        errors.length("client_id", self.client_id.as_deref(), 1, 200);
    }
}

/// The onboarding transition a handshake caused.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HandshakeView {
    /// The state before.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    from: OnboardingState,
    /// The state after.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    to: OnboardingState,
    /// Nothing changed: the tenant was already there or past it.
    was_no_op: bool,
}

/// Records an SDK attestation for the tenant, advancing onboarding to `SDK_CONNECTED`.
#[utoipa::path(
    post,
    path = "/v1/sdk/handshake",
    tag = "onboarding",
    operation_id = "sdk_handshake",
    security(("bearer" = []), ("api_key" = [])),
    request_body = HandshakeBody,
    responses((status = 200, description = "Recorded.", body = HandshakeView))
)]
pub(crate) async fn handshake(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<HandshakeBody>,
) -> Result<Response, ApiError> {
    let handshake = SdkHandshake {
        sdk_version: body.sdk_version,
        sdk_language: body.sdk_language,
        client_id: body.client_id,
    };
    let write = AsTenant(&principal, handshake);
    idempotency
        .answer(&state, write, |outcome| {
            Json(HandshakeView {
                from: outcome.from,
                to: outcome.to,
                was_no_op: outcome.was_no_op,
            })
        })
        .await
}

/// `POST /v1/onboarding/advance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvanceBody {
    /// The state to move to; `COMPLETE` needs the activation evidence.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    state: OnboardingState,
}

impl Validate for AdvanceBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// Moves the tenant's onboarding forward (the current state is a no-op, an earlier one is
/// refused with `onboarding_regression`).
#[utoipa::path(
    post,
    path = "/v1/onboarding/advance",
    tag = "onboarding",
    operation_id = "onboarding_advance",
    security(("bearer" = []), ("api_key" = [])),
    request_body = AdvanceBody,
    responses((status = 200, description = "Advanced (or already there).", body = HandshakeView))
)]
pub(crate) async fn advance(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<AdvanceBody>,
) -> Result<Response, ApiError> {
    let advance = AdvanceOnboarding { target: body.state };
    let write = AsTenant(&principal, advance);
    idempotency
        .answer(&state, write, |outcome| {
            Json(HandshakeView {
                from: outcome.from,
                to: outcome.to,
                was_no_op: outcome.was_no_op,
            })
        })
        .await
}

/// `POST /v1/platform/tenants/{tenant_id}/onboarding/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForceCompleteBody {
    /// Why completion is forced (1 to 500 characters), audited.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

impl Validate for ForceCompleteBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("reason", Some(self.reason.trim()), 1, 500);
    }
}

/// An onboarding transition.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OnboardingTransitionView {
    /// The state before.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    from: OnboardingState,
    /// The state after.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    to: OnboardingState,
    /// Nothing changed.
    was_no_op: bool,
}

/// Completes a tenant's onboarding without the activation evidence (platform operators only).
#[utoipa::path(
    post,
    path = "/v1/platform/tenants/{tenant_id}/onboarding/complete",
    tag = "platform",
    operation_id = "platform_force_complete_onboarding",
    security(("bearer" = []), ("api_key" = [])),
    params(TenantPath),
    request_body = ForceCompleteBody,
    responses((status = 200, description = "Completed.", body = OnboardingTransitionView))
)]
pub(crate) async fn force_complete(
    State(state): State<AppState>,
    Operator(operator): Operator,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<TenantPath>,
    ApiJson(body): ApiJson<ForceCompleteBody>,
) -> Result<Response, ApiError> {
    let force = ForceCompleteOnboarding {
        tenant: path.tenant_id,
        reason: body.reason.trim().to_owned(),
    };
    let write = AsOperator(&operator, path.tenant_id, force);
    idempotency
        .answer(&state, write, |outcome| {
            Json(OnboardingTransitionView {
                from: outcome.from,
                to: outcome.to,
                was_no_op: outcome.was_no_op,
            })
        })
        .await
}
