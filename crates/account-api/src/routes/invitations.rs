//! `POST /v1/invitations/{tenant}/{id}/accept`: the one unauthenticated write; the token is
//! the authority.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, Validate};
use account_spine::accounts::Invitee;
use account_spine::types::{InvitationId, MembershipRole, TenantId, UserId};
use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The invitation in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct AcceptPath {
    /// The inviting tenant's id.
    #[param(value_type = String, format = "uuid")]
    tenant: TenantId,
    /// The invitation's id.
    #[param(value_type = String, format = "uuid")]
    id: InvitationId,
}

/// The token and the invitee's name for a new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptBody {
    /// The invitation's one-time token.
    #[schema(min_length = 1)]
    token: String,
    /// The invitee's name, for a new account.
    name: Option<String>,
}

impl Validate for AcceptBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("token", Some(self.token.trim()), 1, 1_000);
    }
}

/// The membership an accepted invitation created.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MembershipView {
    /// The tenant joined.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// The member.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// Their role.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
}

/// Accepts an invitation with its token (no API key: the token is the authority).
#[utoipa::path(
    post,
    path = "/v1/invitations/{tenant}/{id}/accept",
    tag = "invitations",
    operation_id = "accept_invitation",
    params(AcceptPath),
    request_body = AcceptBody,
    responses(
        (status = 200, description = "Accepted: the new membership.", body = MembershipView),
        (status = 410, description = "The invitation expired or was revoked.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn accept(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<AcceptPath>,
    parts: Parts,
    ApiJson(body): ApiJson<AcceptBody>,
) -> Result<Json<MembershipView>, ApiError> {
    let invitee = Invitee {
        external_user_id: None,
        name: body.name,
    };
    let membership = state
        .spine
        .accept_invitation(
            path.tenant,
            path.id,
            &body.token,
            invitee,
            crate::auth::request_meta(&parts),
        )
        .await?;
    Ok(Json(MembershipView {
        tenant_id: membership.tenant_id,
        user_id: membership.user_id,
        role: membership.role,
    }))
}
