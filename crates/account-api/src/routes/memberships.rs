//! Memberships: the tenant's members in the order they joined, a member's role, removing a
//! member, handing over ownership.
//!
//! These routes act as a person, so they answer only to a key issued for a user (a personal
//! key, as bootstrap issues the owner's): it acts on that user's behalf, within both its
//! permissions and the user's current role. A machine key (issued for no user) gets a 403.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, FieldErrors, Validate};
use crate::idempotency::Idempotency;
use crate::routes::lists::{ListBody, PageQuery};
use crate::routes::users::UserPath;
use account_spine::Page;
use account_spine::idempotency::AsTenant;
use account_spine::memberships::{TenantUserResult, TransferOwnership};
use account_spine::types::{MembershipRole, TenantId, UserId};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A membership.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberView {
    /// The tenant.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// The member.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// Their role.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
}

fn member_view(m: account_spine::memberships::Membership) -> MemberView {
    MemberView {
        tenant_id: m.tenant_id,
        user_id: m.user_id,
        role: m.role,
    }
}

/// A member of the tenant, as the members list shows them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TenantMemberView {
    /// The user.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// Their normalised email.
    email: String,
    /// Their display name.
    name: Option<String>,
    /// Their role.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
    /// When they joined the tenant.
    joined_at: DateTime<Utc>,
}

fn tenant_member_view(m: TenantUserResult) -> TenantMemberView {
    TenantMemberView {
        user_id: m.user_id,
        email: m.email,
        name: m.name,
        role: m.role,
        joined_at: m.joined_at,
    }
}

/// The tenant's members, oldest membership first, with when each joined.
#[utoipa::path(
    get,
    path = "/v1/members",
    tag = "users",
    operation_id = "list_tenant_users",
    security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of members.", body = ListBody<TenantMemberView>))
)]
pub(crate) async fn list_tenant_users(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ListBody<TenantMemberView>>, ApiError> {
    let page = page.offset_page();
    let found = state.spine.list_tenant_users(&principal, page).await?;
    let found = Page::new(found.users, found.total, page);
    Ok(Json(ListBody::from_page(found, page, tenant_member_view)))
}

/// `PUT /v1/users/{id}/role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    /// The new role.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
}

impl Validate for RoleBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// A role change: the role before and the membership after.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoleChangeView {
    /// The role before.
    #[schema(schema_with = crate::openapi::role)]
    previous: MembershipRole,
    /// The membership after.
    membership: MemberView,
}

/// Changes a member's role (owners only; never one's own; never the last owner's: 409).
#[utoipa::path(
    put,
    path = "/v1/users/{id}/role",
    tag = "users",
    operation_id = "change_role",
    security(("bearer" = []), ("api_key" = [])),
    params(UserPath),
    request_body = RoleBody,
    responses((status = 200, description = "Changed.", body = RoleChangeView))
)]
pub(crate) async fn change_role(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<UserPath>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<RoleChangeView>, ApiError> {
    let change = state
        .spine
        .change_role(&principal, path.id, body.role)
        .await?;
    Ok(Json(RoleChangeView {
        previous: change.previous,
        membership: member_view(change.membership),
    }))
}

/// Removes a member (or lets the caller leave); the last owner stays (409).
#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "remove_user",
    security(("bearer" = []), ("api_key" = [])),
    params(UserPath),
    responses((status = 200, description = "Removed: the membership that was.", body = MemberView))
)]
pub(crate) async fn remove_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<UserPath>,
) -> Result<Json<MemberView>, ApiError> {
    let removed = state.spine.remove_user(&principal, path.id).await?;
    Ok(Json(member_view(removed)))
}

/// `POST /v1/ownership/transfer`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferBody {
    /// The member who becomes owner.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
}

impl Validate for TransferBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// An ownership transfer's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TransferView {
    /// The new owner's membership.
    new_owner: MemberView,
    /// The caller's membership (now admin).
    previous_owner: MemberView,
}

/// Hands ownership to another member; the caller becomes an admin.
#[utoipa::path(
    post,
    path = "/v1/ownership/transfer",
    tag = "users",
    operation_id = "transfer_ownership",
    security(("bearer" = []), ("api_key" = [])),
    request_body = TransferBody,
    responses((status = 200, description = "Transferred.", body = TransferView))
)]
pub(crate) async fn transfer_ownership(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Response, ApiError> {
    let transfer = TransferOwnership {
        new_owner: body.user_id,
    };
    let render = |(promoted, demoted)| {
        Json(TransferView {
            new_owner: member_view(promoted),
            previous_owner: member_view(demoted),
        })
    };
    idempotency
        .answer(&state, AsTenant(&principal, transfer), render)
        .await
}
