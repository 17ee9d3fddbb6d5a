//! `/v1/onboarding` and `/v1/sdk/handshake`.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) async fn status(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let status = state.spine.onboarding_status(&principal).await?;
    Ok(Json(json!({
        "state": status.state,
        "step_index": status.state.value(),
        "total_steps": 5,
        "is_complete": status.state == account_spine::types::OnboardingState::Complete,
        "evidence": { "key_ready": status.evidence.key_ready, "sdk_attested": status.evidence.sdk_attested },
    })))
}

/// `POST /v1/sdk/handshake`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandshakeBody {
    sdk_version: String,
    sdk_language: String,
    client_id: Option<String>,
}

pub(crate) async fn handshake(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Json(body): Json<HandshakeBody>,
) -> Result<Json<Value>, ApiError> {
    let outcome = state
        .spine
        .sdk_handshake(
            &principal,
            &body.sdk_version,
            &body.sdk_language,
            body.client_id.as_deref(),
        )
        .await?;
    Ok(Json(
        json!({ "from": outcome.from, "to": outcome.to, "was_no_op": outcome.was_no_op }),
    ))
}
