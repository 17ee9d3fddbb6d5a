//! Self-service projects: a signed-in person creates a project (`POST /v1/projects`, they
//! become its owner), renames it (`PATCH /v1/projects/{id}`, admins and owners), leaves it
//! (`POST /v1/projects/{id}/leave`, not as its last owner), deletes it
//! (`DELETE /v1/projects/{id}`, owners: soft, restorable for 30 days) and restores it
//! (`POST /v1/projects/{id}/restore`, a signed-in owner).
//!
//! Creating and restoring answer only to a bearer JWT of a configured identity provider: they
//! act for the person, in no tenant (a deleted project's keys and principals are gone, so
//! only the person can bring it back). The other routes take the project in the path: a
//! signed-in person acts in it with their membership's role (no `X-Tenant-Id` needed), and an
//! API key only in its own tenant (another project's id is `project_not_found`).
//!
//! No `Idempotency-Key`: idempotency keys are kept per tenant and credential, and creation
//! and restore have no tenant credential; a repeated rename, leave or delete answers with
//! the state it finds (the same name, `last_owner` or not a member, `tenant_not_found`).

use crate::AppState;
use crate::auth::{Authenticated, SignedInPerson, request_meta};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, Validate};
use account_spine::Principal;
use account_spine::types::TenantId;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Json, RequestPartsExt};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A project in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ProjectPath {
    /// The project's (tenant's) id.
    #[param(value_type = String, format = "uuid")]
    id: TenantId,
}

/// The caller acting in the project of the path.
pub(crate) struct InProject(Principal);

impl FromRequestParts<AppState> for InProject {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ApiPath(path) = parts.extract::<ApiPath<ProjectPath>>().await?;
        let person = parts
            .extract_with_state::<Option<SignedInPerson>, AppState>(state)
            .await?;
        if let Some(SignedInPerson(signed_in)) = person {
            let meta = request_meta(parts, state)?;
            let principal = state
                .spine
                .identity_principal(&signed_in, path.id, meta)
                .await?;
            return Ok(Self(principal));
        }
        let Authenticated(principal) = parts
            .extract_with_state::<Authenticated, AppState>(state)
            .await?;
        if principal.tenant_id != path.id {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "project_not_found",
                "project not found",
            ));
        }
        Ok(Self(principal))
    }
}

/// `POST /v1/projects` and `PATCH /v1/projects/{id}`: the project's name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectNameBody {
    /// Display name, 1 to 255 characters (its slug is derived from it at creation).
    name: String,
}

impl Validate for ProjectNameBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("name", Some(self.name.trim()), 1, 255);
    }
}

/// A project just created.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedProjectView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// Display name.
    name: String,
    /// Unique handle.
    slug: String,
    /// Plan (the default plan).
    plan: String,
    /// Creation time.
    created_at: DateTime<Utc>,
}

/// Creates a project owned by the signed-in person, on the default plan. One person owns at
/// most 10 projects (deleted ones count until purged).
#[utoipa::path(
    post,
    path = "/v1/projects",
    tag = "projects",
    operation_id = "create_project",
    security(("bearer" = [])),
    request_body = ProjectNameBody,
    responses(
        (status = 201, description = "Created; the caller is its owner.", body = CreatedProjectView),
        (status = 400, description = "A body that is not the documented JSON (`invalid_json`).", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token from a configured identity provider.", body = crate::error::ErrorBody),
        (status = 404, description = "The identity is linked to no user yet (`identity_not_linked`).", body = crate::error::ErrorBody),
        (status = 409, description = "The person owns 10 projects already (`project_limit`).", body = crate::error::ErrorBody),
        (status = 422, description = "The name is empty, too long or has control characters (`invalid_name`, `invalid_fields`).", body = crate::error::ErrorBody),
        (status = 503, description = "The identity provider's keys or the database are unavailable.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create_project(
    State(state): State<AppState>,
    SignedInPerson(signed_in): SignedInPerson,
    parts: Parts,
    ApiJson(body): ApiJson<ProjectNameBody>,
) -> Result<(StatusCode, Json<CreatedProjectView>), ApiError> {
    let meta = request_meta(&parts, &state)?;
    let created = state
        .spine
        .create_project(&signed_in, &body.name, meta)
        .await?;
    let t = created.tenant;
    Ok((
        StatusCode::CREATED,
        Json(CreatedProjectView {
            id: t.id,
            name: t.name,
            slug: t.slug,
            plan: t.plan.to_string(),
            created_at: t.created_at,
        }),
    ))
}

/// The project's name now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RenamedProjectView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// Its name now.
    name: String,
}

/// Renames the project (admins and owners; a key needs `users:manage`).
#[utoipa::path(
    patch,
    path = "/v1/projects/{id}",
    tag = "projects",
    operation_id = "rename_project",
    security(("bearer" = []), ("api_key" = [])),
    params(ProjectPath),
    request_body = ProjectNameBody,
    responses(
        (status = 200, description = "Renamed.", body = RenamedProjectView),
        (status = 400, description = "The id is not a UUID (`invalid_path`), or a body that is not the documented JSON (`invalid_json`).", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credential.", body = crate::error::ErrorBody),
        (status = 403, description = "Below admin, a machine key, a key without `users:manage`, or a tenant whose status forbids writes.", body = crate::error::ErrorBody),
        (status = 404, description = "No such project the caller is a member of, or a deleted one (`project_not_found`, `tenant_not_found`).", body = crate::error::ErrorBody),
        (status = 422, description = "The name is empty, too long or has control characters (`invalid_name`, `invalid_fields`).", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited.", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the identity provider's keys are unavailable.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn rename_project(
    State(state): State<AppState>,
    InProject(principal): InProject,
    ApiJson(body): ApiJson<ProjectNameBody>,
) -> Result<Json<RenamedProjectView>, ApiError> {
    let name = state.spine.rename_project(&principal, &body.name).await?;
    Ok(Json(RenamedProjectView {
        id: principal.tenant_id,
        name,
    }))
}

/// The caller left the project.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LeftProjectView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// The role the caller had.
    #[schema(schema_with = crate::openapi::role)]
    role: account_spine::types::MembershipRole,
}

/// Leaves the project: the caller's membership and their personal keys of it go. Its last
/// owner cannot leave (transfer ownership or delete the project instead).
#[utoipa::path(
    post,
    path = "/v1/projects/{id}/leave",
    tag = "projects",
    operation_id = "leave_project",
    security(("bearer" = []), ("api_key" = [])),
    params(ProjectPath),
    responses(
        (status = 200, description = "Left.", body = LeftProjectView),
        (status = 400, description = "The id is not a UUID (`invalid_path`).", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credential.", body = crate::error::ErrorBody),
        (status = 403, description = "A machine key, or a key without `profile:write`.", body = crate::error::ErrorBody),
        (status = 404, description = "No such project the caller is a member of, or a deleted one (`project_not_found`, `tenant_not_found`).", body = crate::error::ErrorBody),
        (status = 409, description = "The caller is its last owner (`last_owner`), or the project's last way to manage keys (`last_key_manager`).", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited.", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the identity provider's keys are unavailable.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn leave_project(
    State(state): State<AppState>,
    InProject(principal): InProject,
) -> Result<Json<LeftProjectView>, ApiError> {
    let left = state.spine.leave_project(&principal).await?;
    Ok(Json(LeftProjectView {
        id: principal.tenant_id,
        role: left.role,
    }))
}

/// A deleted project: restorable until `purge_after`, purged after it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeletedProjectView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// When it was deleted.
    deleted_at: DateTime<Utc>,
    /// Until when an owner can restore it; from then on it is purged.
    purge_after: DateTime<Utc>,
}

/// Deletes the project (owners; a key needs `users:manage`): from now on it is gone to every
/// request and key, until a signed-in owner restores it within 30 days; then its data is
/// purged.
#[utoipa::path(
    delete,
    path = "/v1/projects/{id}",
    tag = "projects",
    operation_id = "delete_project",
    security(("bearer" = []), ("api_key" = [])),
    params(ProjectPath),
    responses(
        (status = 200, description = "Deleted; restorable until `purge_after`.", body = DeletedProjectView),
        (status = 400, description = "The id is not a UUID (`invalid_path`).", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credential.", body = crate::error::ErrorBody),
        (status = 403, description = "Not an owner, a machine key, or a key without `users:manage`.", body = crate::error::ErrorBody),
        (status = 404, description = "No such project the caller is a member of, or one already deleted (`project_not_found`, `tenant_not_found`).", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited.", body = crate::error::ErrorBody),
        (status = 503, description = "The database or the identity provider's keys are unavailable.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn delete_project(
    State(state): State<AppState>,
    InProject(principal): InProject,
) -> Result<Json<DeletedProjectView>, ApiError> {
    let deletion = state.spine.delete_project(&principal).await?;
    Ok(Json(DeletedProjectView {
        id: deletion.tenant_id,
        deleted_at: deletion.deleted_at,
        purge_after: deletion.purge_after,
    }))
}

/// Restores a deleted project within its window (a signed-in owner of it): every row it had
/// is there again, and its keys and members work again.
#[utoipa::path(
    post,
    path = "/v1/projects/{id}/restore",
    tag = "projects",
    operation_id = "restore_project",
    security(("bearer" = [])),
    params(ProjectPath),
    responses(
        (status = 200, description = "Restored; the deletion it took back.", body = DeletedProjectView),
        (status = 400, description = "The id is not a UUID (`invalid_path`).", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token from a configured identity provider.", body = crate::error::ErrorBody),
        (status = 404, description = "No such project the person owns (`project_not_found`), or an identity linked to no user (`identity_not_linked`).", body = crate::error::ErrorBody),
        (status = 409, description = "The project is not deleted (`project_not_deleted`), or its window closed (`restore_window_closed`).", body = crate::error::ErrorBody),
        (status = 503, description = "The identity provider's keys or the database are unavailable.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn restore_project(
    State(state): State<AppState>,
    SignedInPerson(signed_in): SignedInPerson,
    ApiPath(path): ApiPath<ProjectPath>,
    parts: Parts,
) -> Result<Json<DeletedProjectView>, ApiError> {
    let meta = request_meta(&parts, &state)?;
    let deletion = state
        .spine
        .restore_project(&signed_in, path.id, meta)
        .await?;
    Ok(Json(DeletedProjectView {
        id: deletion.tenant_id,
        deleted_at: deletion.deleted_at,
        purge_after: deletion.purge_after,
    }))
}
