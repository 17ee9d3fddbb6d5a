//! `POST /v1/invitations/{tenant}/{id}/accept`: the one unauthenticated write; the token is
//! the authority.

use crate::AppState;
use crate::error::ApiError;
use account_spine::accounts::Invitee;
use account_spine::types::{InvitationId, TenantId};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// The token and the invitee's name for a new account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptBody {
    token: String,
    name: Option<String>,
}

pub(crate) async fn accept(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(TenantId, InvitationId)>,
    Json(body): Json<AcceptBody>,
) -> Result<Json<Value>, ApiError> {
    let invitee = Invitee {
        external_user_id: None,
        name: body.name,
    };
    let membership = state
        .spine
        .accept_invitation(tenant, id, &body.token, invitee)
        .await?;
    Ok(Json(
        json!({ "tenant_id": membership.tenant_id, "user_id": membership.user_id, "role": membership.role }),
    ))
}
