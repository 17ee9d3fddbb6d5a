//! Erasure: `POST /v1/me/erasure` (a signed-in person erases their own account) and
//! `POST /v1/platform/users/{user_id}/erasure` (a platform operator erases a user). Both are
//! irreversible and answer once the erasure committed: the person's email and name are
//! replaced by a stable pseudonym in every stored row, they leave every tenant, their identity
//! links are gone (the same token then gets 404 `identity_not_linked`), and their audit
//! history stays, linked by their user id and the pseudonym.

use crate::AppState;
use crate::auth::{Operator, SignedInPerson, request_meta};
use crate::error::ApiError;
use crate::extract::ApiPath;
use account_spine::types::{MembershipRole, TenantId, UserId};
use account_spine::users::erasure::Erased;
use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// A tenant the erased user left.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LeftTenantView {
    /// The tenant.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// The role they had there.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
}

/// What an erasure did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErasureView {
    /// The erased user (the id stays; it stands for the pseudonym now).
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// The pseudonym that replaced their email and name everywhere (an address where one
    /// must stay one: `<pseudonym>@erased.invalid`).
    pseudonym: String,
    /// When it was erased.
    erased_at: DateTime<Utc>,
    /// The tenants they left.
    left: Vec<LeftTenantView>,
    /// Identity provider links deleted.
    identity_links_deleted: u64,
    /// Pending invitations to their address revoked.
    invitations_revoked: u64,
    /// Rows rewritten, by table.
    rows_rewritten: BTreeMap<String, u64>,
}

fn view(erased: Erased) -> ErasureView {
    ErasureView {
        user_id: erased.user_id,
        pseudonym: erased.pseudonym,
        erased_at: erased.erased_at,
        left: erased
            .left
            .into_iter()
            .map(|(tenant_id, role)| LeftTenantView { tenant_id, role })
            .collect(),
        identity_links_deleted: erased.counts.identity_links,
        invitations_revoked: erased.counts.invitations_revoked,
        rows_rewritten: erased
            .counts
            .rewritten
            .into_iter()
            .map(|(table, rows)| (table.to_owned(), rows))
            .collect(),
    }
}

/// Erases the signed-in person's own account, at once and for good.
#[utoipa::path(
    post,
    path = "/v1/me/erasure",
    tag = "users",
    operation_id = "erase_me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Erased: nothing of the person is left but the pseudonym.", body = ErasureView),
        (status = 400, description = "`invalid_header`: a malformed `Consistency-Token`.", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token from a configured identity provider.", body = crate::error::ErrorBody),
        (status = 404, description = "The identity is linked to no user (`identity_not_linked`: never linked, or erased already).", body = crate::error::ErrorBody),
        (status = 409, description = "`last_owner`: the person is the last owner of a project (the message names them; transfer ownership or delete it first); `last_key_manager`: leaving would revoke a project's last key able to manage keys; `user_already_erased`.", body = crate::error::ErrorBody),
        (status = 503, description = "Storage unavailable; retry (nothing was erased).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn erase_me(
    State(state): State<AppState>,
    SignedInPerson(signed_in): SignedInPerson,
    parts: Parts,
) -> Result<Json<ErasureView>, ApiError> {
    let request = request_meta(&parts, &state)?;
    let erased = state.spine.erase_me(&signed_in, request).await?;
    Ok(Json(view(erased)))
}

/// A user in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct UserPath {
    /// The user's id.
    #[param(value_type = String, format = "uuid")]
    user_id: UserId,
}

/// Erases a user's account, at once and for good (platform operators).
#[utoipa::path(
    post,
    path = "/v1/platform/users/{user_id}/erasure",
    tag = "platform",
    operation_id = "platform_erase_user",
    security(("bearer" = []), ("api_key" = [])),
    params(UserPath),
    responses(
        (status = 200, description = "Erased: nothing of the person is left but the pseudonym.", body = ErasureView),
        (status = 401, description = "No key presented, or not a valid operator key.", body = crate::error::ErrorBody),
        (status = 403, description = "Not an operator key (`operator_key_required`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such user (`user_not_found`).", body = crate::error::ErrorBody),
        (status = 409, description = "`last_owner` (the user is the last owner of a project, named in the message), `last_key_manager` or `user_already_erased`.", body = crate::error::ErrorBody),
        (status = 400, description = "`invalid_path`: the user id is not a UUID.", body = crate::error::ErrorBody),
        (status = 503, description = "Storage unavailable; retry (nothing was erased).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn erase_user(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiPath(path): ApiPath<UserPath>,
) -> Result<Json<ErasureView>, ApiError> {
    let erased = state.spine.erase_user(&operator, path.user_id).await?;
    Ok(Json(view(erased)))
}
