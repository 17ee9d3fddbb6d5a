//! `GET /v1/me`: a signed-in person's own user, identity links and memberships. Answers only
//! to a bearer JWT from a configured identity provider (no tenant needed).

use crate::AppState;
use crate::auth::SignedInPerson;
use crate::error::ApiError;
use account_spine::types::{MembershipRole, TenantId, UserId};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// One identity provider account linked to the user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IdentityView {
    /// The issuer.
    issuer: String,
    /// The person's id there.
    subject: String,
    /// When it was linked.
    linked_at: DateTime<Utc>,
}

/// One tenant the person belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MyMembershipView {
    /// The tenant.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// Their role there.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
    /// When they joined.
    joined_at: DateTime<Utc>,
}

/// The signed-in person.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeView {
    /// Their user.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// Their identity links, oldest first.
    identities: Vec<IdentityView>,
    /// The tenants they belong to, oldest membership first.
    memberships: Vec<MyMembershipView>,
}

/// The signed-in person: their user, identities and memberships.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "users",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in person.", body = MeView),
        (status = 401, description = "No valid token from a configured identity provider.", body = crate::error::ErrorBody),
        (status = 404, description = "The identity is linked to no user yet (`identity_not_linked`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn me(
    State(state): State<AppState>,
    SignedInPerson(signed_in): SignedInPerson,
) -> Result<Json<MeView>, ApiError> {
    let me = state.spine.me(&signed_in).await?;
    Ok(Json(MeView {
        user_id: me.user_id,
        identities: me
            .identities
            .into_iter()
            .map(|link| IdentityView {
                issuer: link.issuer,
                subject: link.subject,
                linked_at: link.created_at,
            })
            .collect(),
        memberships: me
            .memberships
            .into_iter()
            .map(|(tenant_id, role, joined_at)| MyMembershipView {
                tenant_id,
                role,
                joined_at,
            })
            .collect(),
    }))
}
