//! Invitations: invite an address, list, resend and revoke (as a person, see below), and
//! `POST /v1/invitations/{tenant}/{id}/accept`, the one unauthenticated write: the token is the
//! authority.
//!
//! The routes other than accept act as a person, so they answer only to a key issued for a
//! user (a personal key, as bootstrap issues the owner's): it acts on that user's behalf,
//! within both its permissions and the user's current role. A machine key (issued for no
//! user) gets a 403.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, ListQuery, Validate};
use crate::idempotency::Idempotency;
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::idempotency::AsTenant;
use account_spine::invitations::{InviteUser, Invitee, ResendInvitation, RevokeInvitation};
use account_spine::types::{InvitationId, InvitationStatus, MembershipRole, TenantId, UserId};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Longest invited email, in characters.
const MAX_EMAIL: usize = 254;

/// An invitation as the API shows it (never its token, except once on creation).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationView {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    id: InvitationId,
    /// Inviting tenant.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// Invitee email.
    email: String,
    /// Role granted on acceptance.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
    /// `pending`, `accepted`, `expired` or `revoked`.
    #[schema(value_type = String)]
    status: InvitationStatus,
    /// Who invited.
    #[schema(value_type = String, format = "uuid")]
    invited_by: UserId,
    /// Creation (or last resend) time.
    created_at: DateTime<Utc>,
    /// Expiry.
    expires_at: DateTime<Utc>,
}

fn invitation_view(i: account_spine::invitations::Invitation) -> InvitationView {
    InvitationView {
        id: i.id,
        tenant_id: i.tenant_id,
        email: i.email,
        role: i.role,
        status: i.status,
        invited_by: i.invited_by,
        created_at: i.created_at,
        expires_at: i.expires_at,
    }
}

/// A created or resent invitation with its one-time token, shown here only.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuedInvitationView {
    /// The invitation.
    invitation: InvitationView,
    /// The token to deliver to the invitee (accept with it); never shown again.
    token: String,
}

fn issued_view(issued: account_spine::invitations::IssuedInvitation) -> IssuedInvitationView {
    IssuedInvitationView {
        token: issued.token.expose().to_owned(),
        invitation: invitation_view(issued.invitation),
    }
}

/// `POST /v1/invitations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteBody {
    /// The invitee's email.
    #[schema(min_length = 3, max_length = 254)]
    email: String,
    /// The role they get on acceptance.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
}

impl Validate for InviteBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("email", Some(self.email.trim()), 3, MAX_EMAIL);
    }
}

/// Invites an address to the tenant; the answer holds the token, once.
#[utoipa::path(
    post,
    path = "/v1/invitations",
    tag = "invitations",
    operation_id = "invite_user",
    security(("bearer" = []), ("api_key" = [])),
    request_body = InviteBody,
    responses((status = 201, description = "Invited.", body = IssuedInvitationView))
)]
pub(crate) async fn invite(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<Response, ApiError> {
    let invite = InviteUser {
        email: body.email.trim().to_owned(),
        role: body.role,
    };
    let render = |issued| (StatusCode::CREATED, Json(issued_view(issued)));
    idempotency
        .answer(&state, AsTenant(&principal, invite), render)
        .await
}

/// The filters of `GET /v1/invitations?status=` (its page is a [`PageQuery`]).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InvitationsFilter {
    /// Only invitations in this status.
    #[param(value_type = Option<String>)]
    status: Option<InvitationStatus>,
}

impl Validate for InvitationsFilter {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// The tenant's invitations.
#[utoipa::path(
    get,
    path = "/v1/invitations",
    tag = "invitations",
    operation_id = "list_invitations",
    security(("bearer" = []), ("api_key" = [])),
    params(InvitationsFilter, PageQuery),
    responses((status = 200, description = "A page of invitations.", body = ListBody<InvitationView>))
)]
pub(crate) async fn list_invitations(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<InvitationsFilter, PageQuery>,
) -> Result<Json<ListBody<InvitationView>>, ApiError> {
    let page = page.offset_page();
    let found = state
        .spine
        .list_invitations(&principal, filter.status, page)
        .await?;
    Ok(Json(ListBody::from_page(found, page, invitation_view)))
}

/// An invitation of the caller's tenant in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct InvitationPath {
    /// The invitation's id.
    #[param(value_type = String, format = "uuid")]
    id: InvitationId,
}

/// Sends a pending invitation again: a new token (in the answer, once) and a new expiry.
#[utoipa::path(
    post,
    path = "/v1/invitations/{id}/resend",
    tag = "invitations",
    operation_id = "resend_invitation",
    security(("bearer" = []), ("api_key" = [])),
    params(InvitationPath),
    responses((status = 200, description = "Resent.", body = IssuedInvitationView))
)]
pub(crate) async fn resend_invitation(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<InvitationPath>,
) -> Result<Response, ApiError> {
    let resend = ResendInvitation { id: path.id };
    let render = |issued| Json(issued_view(issued));
    idempotency
        .answer(&state, AsTenant(&principal, resend), render)
        .await
}

/// Revokes a pending invitation.
#[utoipa::path(
    post,
    path = "/v1/invitations/{id}/revoke",
    tag = "invitations",
    operation_id = "revoke_invitation",
    security(("bearer" = []), ("api_key" = [])),
    params(InvitationPath),
    responses((status = 200, description = "Revoked.", body = InvitationView))
)]
pub(crate) async fn revoke_invitation(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<InvitationPath>,
) -> Result<Response, ApiError> {
    let revoke = RevokeInvitation { id: path.id };
    let render = |revoked| Json(invitation_view(revoked));
    idempotency
        .answer(&state, AsTenant(&principal, revoke), render)
        .await
}

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

/// Accepts an invitation with its token (no API key: the token is the authority). With a bearer
/// JWT from a configured identity provider, the person's identity is linked to the new member.
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
    signed_in: Option<crate::auth::SignedInPerson>,
    parts: Parts,
    ApiJson(body): ApiJson<AcceptBody>,
) -> Result<Json<MembershipView>, ApiError> {
    let invitee = Invitee {
        external_user_id: None,
        name: body.name,
    };
    let request = crate::auth::request_meta(&parts, &state)?;
    // A signed-in person (a bearer JWT from a configured issuer) is linked to the user the
    // invitation makes them, in the same transaction: from then on they sign in as themselves.
    let membership = match signed_in {
        Some(crate::auth::SignedInPerson(signed_in)) => {
            state
                .spine
                .accept_invitation_signed_in(
                    path.tenant,
                    path.id,
                    &body.token,
                    invitee,
                    signed_in,
                    request,
                )
                .await?
        }
        None => {
            state
                .spine
                .accept_invitation(path.tenant, path.id, &body.token, invitee, request)
                .await?
        }
    };
    Ok(Json(MembershipView {
        tenant_id: membership.tenant_id,
        user_id: membership.user_id,
        role: membership.role,
    }))
}
