//! The account over HTTP: projects, invitations, users and roles, ownership, profile,
//! billing, support.
//!
//! These use cases act as a person, so they answer only to a key issued for a user (a
//! personal key, as bootstrap issues the owner's): it acts on that user's behalf, within both
//! its permissions and the user's current role. A machine key (issued for no user) gets a 403.

use super::{Cursor, ListBody};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, FieldErrors, Validate};
use account_spine::accounts::{
    OpenTicket, ProfileUpdate, ProjectFilters, User, UserFilter, UserPosition,
};
use account_spine::types::{
    InvitationId, InvitationStatus, InvoiceStatus, MembershipRole, OnboardingState, Plan, TenantId,
    TenantStatus, TicketCategory, TicketId, TicketPriority, TicketStatus, UserId, UserStatus,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every account route with its documentation; one `routes!` per path.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite, list_invitations))
        .routes(routes!(resend_invitation))
        .routes(routes!(revoke_invitation))
        .routes(routes!(list_projects))
        .routes(routes!(get_project))
        .routes(routes!(list_users))
        .routes(routes!(get_user, remove_user))
        .routes(routes!(change_role))
        .routes(routes!(transfer_ownership))
        .routes(routes!(get_profile, update_profile))
        .routes(routes!(billing_summary))
        .routes(routes!(list_invoices))
        .routes(routes!(support_contact))
        .routes(routes!(open_ticket, list_tickets))
}

fn string_enum(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

fn tenant_status() -> Object {
    string_enum(TenantStatus::ALL.iter().map(|s| s.as_str()))
}

fn plan() -> Object {
    string_enum(Plan::ALL.iter().map(|s| s.as_str()))
}

fn user_status() -> Object {
    string_enum(UserStatus::ALL.iter().map(|s| s.as_str()))
}

/// A project (tenant) the caller is a member of, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// Display name.
    name: String,
    /// Description (projects have none yet: always `null`).
    description: Option<String>,
    /// Lifecycle status.
    #[schema(schema_with = tenant_status)]
    status: TenantStatus,
    /// Plan.
    #[schema(schema_with = plan)]
    plan: Plan,
    /// Creation time.
    created_at: DateTime<Utc>,
    /// Last change.
    updated_at: DateTime<Utc>,
}

/// `GET /v1/projects?status=&limit=&offset=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProjectsQuery {
    /// Only projects in this status.
    #[param(schema_with = tenant_status, required = false)]
    status: Option<TenantStatus>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Items to skip (0).
    offset: Option<u64>,
}

impl Validate for ProjectsQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        super::validate_page(errors, self.limit);
    }
}

/// The projects (tenants) the caller is a member of, oldest first, whichever tenant the key
/// belongs to.
#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    operation_id = "list_projects",
    security(("bearer" = []), ("api_key" = [])),
    params(ProjectsQuery),
    responses(
        (status = 200, description = "A page of the caller's projects.", body = ListBody<ProjectView>),
        (status = 403, description = "A machine key (`machine_key_not_allowed`), a key without `read:*`, or a tenant whose status forbids reads (`forbidden`, `tenant_status_forbids`).", body = crate::error::ErrorBody),
        (status = 400, description = "`limit` outside 1 to 100, or an unknown `status` (`invalid_query`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list_projects(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<ProjectsQuery>,
) -> Result<Json<ListBody<ProjectView>>, ApiError> {
    let page = super::page(query.limit, query.offset);
    let filters = ProjectFilters {
        status: query.status,
    };
    let found = state.spine.list_projects(&principal, filters, page).await?;
    Ok(Json(ListBody::from_page(found, page, |p| ProjectView {
        id: p.project_id,
        name: p.name,
        description: p.description,
        status: p.status,
        plan: p.plan,
        created_at: p.created_at,
        updated_at: p.updated_at,
    })))
}

/// A project in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ProjectPath {
    /// The project's (tenant's) id.
    #[param(value_type = String, format = "uuid")]
    id: TenantId,
}

/// A project (tenant) in detail: quotas, current-period counters, onboarding.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectDetailView {
    /// The project's (tenant's) id.
    #[schema(value_type = String, format = "uuid")]
    id: TenantId,
    /// Display name.
    name: String,
    /// Unique handle.
    slug: String,
    /// Description (projects have none yet: always `null`).
    description: Option<String>,
    /// Lifecycle status.
    #[schema(schema_with = tenant_status)]
    status: TenantStatus,
    /// Plan.
    #[schema(schema_with = plan)]
    plan: Plan,
    /// Distinct workers allowed.
    max_workers: i32,
    /// Runs admitted per UTC day.
    max_runs_per_day: i32,
    /// Runs queued or running at once.
    max_concurrent_runs: i32,
    /// Tokens per UTC calendar month.
    max_tokens_per_month: i64,
    /// Active API keys allowed.
    max_api_keys: i32,
    /// Runs admitted today (UTC).
    runs_today: i32,
    /// Runs admitted this month (UTC).
    runs_this_month: i32,
    /// Tokens used this month (UTC).
    tokens_this_month: i64,
    /// Onboarding progress.
    #[schema(schema_with = crate::openapi::onboarding_state)]
    onboarding_state: OnboardingState,
    /// Whether onboarding reached `COMPLETE`.
    onboarding_complete: bool,
    /// Creation time.
    created_at: DateTime<Utc>,
    /// Last change.
    updated_at: DateTime<Utc>,
}

/// One project (tenant) the caller is a member of.
#[utoipa::path(
    get,
    path = "/v1/projects/{id}",
    tag = "projects",
    operation_id = "get_project",
    security(("bearer" = []), ("api_key" = [])),
    params(ProjectPath),
    responses(
        (status = 200, description = "The project.", body = ProjectDetailView),
        (status = 403, description = "A machine key (`machine_key_not_allowed`), a key without `read:*`, or a tenant whose status forbids reads (`forbidden`, `tenant_status_forbids`).", body = crate::error::ErrorBody),
        (status = 404, description = "No project with this id that the caller is a member of (`project_not_found`); other tenants' projects answer the same.", body = crate::error::ErrorBody),
        (status = 400, description = "The id is not a UUID (`invalid_path`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn get_project(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<ProjectPath>,
) -> Result<Json<ProjectDetailView>, ApiError> {
    let p = state.spine.get_project(&principal, path.id).await?;
    Ok(Json(ProjectDetailView {
        id: p.project_id,
        name: p.name,
        slug: p.slug,
        description: p.description,
        status: p.status,
        plan: p.plan,
        max_workers: p.max_workers,
        max_runs_per_day: p.max_runs_per_day,
        max_concurrent_runs: p.max_concurrent_runs,
        max_tokens_per_month: p.max_tokens_per_month,
        max_api_keys: p.max_api_keys,
        runs_today: p.runs_today,
        runs_this_month: p.runs_this_month,
        tokens_this_month: p.tokens_this_month,
        onboarding_state: p.onboarding_state,
        onboarding_complete: p.onboarding_complete,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }))
}

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

fn invitation_view(i: account_spine::accounts::Invitation) -> InvitationView {
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

fn issued_view(issued: account_spine::accounts::IssuedInvitation) -> IssuedInvitationView {
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
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<(StatusCode, Json<IssuedInvitationView>), ApiError> {
    let issued = state
        .spine
        .invite_user(&principal, body.email.trim(), body.role)
        .await?;
    Ok((StatusCode::CREATED, Json(issued_view(issued))))
}

/// `GET /v1/invitations?status=&limit=&offset=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InvitationsQuery {
    /// Only invitations in this status.
    #[param(value_type = Option<String>)]
    status: Option<InvitationStatus>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Items to skip (0).
    offset: Option<u64>,
}

impl Validate for InvitationsQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        super::validate_page(errors, self.limit);
    }
}

/// The tenant's invitations.
#[utoipa::path(
    get,
    path = "/v1/invitations",
    tag = "invitations",
    operation_id = "list_invitations",
    security(("bearer" = []), ("api_key" = [])),
    params(InvitationsQuery),
    responses((status = 200, description = "A page of invitations.", body = ListBody<InvitationView>))
)]
pub(crate) async fn list_invitations(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<InvitationsQuery>,
) -> Result<Json<ListBody<InvitationView>>, ApiError> {
    let page = super::page(query.limit, query.offset);
    let found = state
        .spine
        .list_invitations(&principal, query.status, page)
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
    ApiPath(path): ApiPath<InvitationPath>,
) -> Result<Json<IssuedInvitationView>, ApiError> {
    let issued = state.spine.resend_invitation(&principal, path.id).await?;
    Ok(Json(issued_view(issued)))
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
    ApiPath(path): ApiPath<InvitationPath>,
) -> Result<Json<InvitationView>, ApiError> {
    let revoked = state.spine.revoke_invitation(&principal, path.id).await?;
    Ok(Json(invitation_view(revoked)))
}

/// A user of the tenant with their role.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    id: UserId,
    /// Email.
    email: String,
    /// Display name.
    name: Option<String>,
    /// Account status.
    #[schema(value_type = String)]
    status: UserStatus,
    /// Role in the tenant.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
    /// Account creation time.
    created_at: DateTime<Utc>,
    /// Last sign-in.
    last_login_at: Option<DateTime<Utc>>,
}

/// A user's place in the users list as a cursor carries it: `[email, id]`.
type UserCursor = Cursor<(String, UserId)>;

fn user_cursor_position(user: &User) -> (String, UserId) {
    (user.email.clone(), user.id)
}

/// `GET /v1/users?role=&status=&limit=&offset=` or `...&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsersQuery {
    /// Only members with this role.
    #[param(value_type = Option<String>)]
    role: Option<MembershipRole>,
    /// Only users with this account status.
    #[param(value_type = Option<String>)]
    status: Option<UserStatus>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Items to skip (0). Not with `cursor`.
    offset: Option<u64>,
    /// Continue after the page that answered this `next_cursor` (opaque; pass it unchanged,
    /// with the same filters). Cursor pages cost the same at any depth and carry no `total`.
    /// Not with `offset`.
    #[param(value_type = Option<String>)]
    cursor: Option<UserCursor>,
}

impl Validate for UsersQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        super::validate_keyset_page(errors, self.limit, self.offset, self.cursor.as_ref());
    }
}

fn user_view(u: User) -> UserView {
    UserView {
        id: u.id,
        email: u.email,
        name: u.name,
        status: u.status,
        role: u.role,
        created_at: u.created_at,
        last_login_at: u.last_login_at,
    }
}

/// The tenant's users with their roles, by email. Page by `offset` (with `total`), or by
/// `cursor`: every page that has more answers `next_cursor`, and passing it as `cursor` reads
/// the next page in one statement however deep it is.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    operation_id = "list_users",
    security(("bearer" = []), ("api_key" = [])),
    params(UsersQuery),
    responses((status = 200, description = "A page of users.", body = ListBody<UserView>))
)]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> Result<Json<ListBody<UserView>>, ApiError> {
    let filter = UserFilter {
        role: query.role,
        status: query.status,
    };
    if let Some(Cursor((email, id))) = query.cursor {
        let limit = super::page(query.limit, None).limit;
        let after = Some(UserPosition { email, id });
        let found = state
            .spine
            .list_users_after(&principal, filter, after, limit)
            .await?;
        return Ok(Json(ListBody::from_keyset_page(
            found,
            limit,
            |next| (next.email, next.id),
            user_view,
        )));
    }
    let page = super::page(query.limit, query.offset);
    let found = state.spine.list_users(&principal, filter, page).await?;
    Ok(Json(ListBody::from_page_with_cursor(
        found,
        page,
        user_cursor_position,
        user_view,
    )))
}

/// A member of the caller's tenant in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct UserPath {
    /// The user's id.
    #[param(value_type = String, format = "uuid")]
    id: UserId,
}

/// A user of the tenant in detail, with what their role lets them do.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserDetailView {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    id: UserId,
    /// Email.
    email: String,
    /// Display name.
    name: Option<String>,
    /// Avatar image URL.
    avatar_url: Option<String>,
    /// Role in the tenant.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
    /// Account status.
    #[schema(schema_with = user_status)]
    status: UserStatus,
    /// Whether the email was verified.
    email_verified: bool,
    /// Sign-in provider (`google`, `azure`, `email`, ...).
    oauth_provider: Option<String>,
    /// When the user joined the tenant.
    membership_created_at: DateTime<Utc>,
    /// Who invited the user into the tenant.
    #[schema(value_type = Option<String>, format = "uuid")]
    invited_by: Option<UserId>,
    /// The role may issue, rotate and revoke API keys.
    can_manage_keys: bool,
    /// The role may start runs.
    can_run_workers: bool,
    /// The role may read runs.
    can_view_runs: bool,
    /// Account creation time.
    created_at: DateTime<Utc>,
    /// Last change to the account.
    updated_at: DateTime<Utc>,
    /// Last sign-in.
    last_login_at: Option<DateTime<Utc>>,
}

/// One user of the tenant.
#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "get_user",
    security(("bearer" = []), ("api_key" = [])),
    params(UserPath),
    responses(
        (status = 200, description = "The user.", body = UserDetailView),
        (status = 403, description = "A machine key (`machine_key_not_allowed`), a key without `users:read`, or a tenant whose status forbids reads (`forbidden`, `tenant_status_forbids`).", body = crate::error::ErrorBody),
        (status = 404, description = "No member of this tenant has this id (`not_a_member`); other tenants' users answer the same.", body = crate::error::ErrorBody),
        (status = 400, description = "The id is not a UUID (`invalid_path`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<UserPath>,
) -> Result<Json<UserDetailView>, ApiError> {
    let u = state.spine.get_user(&principal, path.id).await?;
    Ok(Json(UserDetailView {
        id: u.user_id,
        email: u.email,
        name: u.name,
        avatar_url: u.avatar_url,
        role: u.role,
        status: u.status,
        email_verified: u.email_verified,
        oauth_provider: u.oauth_provider,
        membership_created_at: u.membership_created_at,
        invited_by: u.invited_by,
        can_manage_keys: u.can_manage_keys,
        can_run_workers: u.can_run_workers,
        can_view_runs: u.can_view_runs,
        created_at: u.created_at,
        updated_at: u.updated_at,
        last_login_at: u.last_login_at,
    }))
}

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

fn member_view(m: account_spine::accounts::Membership) -> MemberView {
    MemberView {
        tenant_id: m.tenant_id,
        user_id: m.user_id,
        role: m.role,
    }
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
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Json<TransferView>, ApiError> {
    let (promoted, demoted) = state
        .spine
        .transfer_ownership(&principal, body.user_id)
        .await?;
    Ok(Json(TransferView {
        new_owner: member_view(promoted),
        previous_owner: member_view(demoted),
    }))
}

/// The caller's profile in the tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProfileView {
    /// The user.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// Email.
    email: String,
    /// Display name.
    name: Option<String>,
    /// Avatar image URL.
    avatar_url: Option<String>,
    /// The tenant.
    #[schema(value_type = String, format = "uuid")]
    tenant_id: TenantId,
    /// The tenant's display name.
    tenant_name: String,
    /// Role in the tenant.
    #[schema(schema_with = crate::openapi::role)]
    role: MembershipRole,
    /// IANA time zone.
    time_zone: Option<String>,
    /// Preferences (a JSON object).
    #[schema(value_type = Option<Object>)]
    preferences: Option<serde_json::Value>,
}

/// The caller's profile.
#[utoipa::path(
    get,
    path = "/v1/profile",
    tag = "profile",
    operation_id = "get_profile",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The profile.", body = ProfileView))
)]
pub(crate) async fn get_profile(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<ProfileView>, ApiError> {
    let p = state.spine.get_profile(&principal).await?;
    Ok(Json(ProfileView {
        user_id: p.user_id,
        email: p.email,
        name: p.name,
        avatar_url: p.avatar_url,
        tenant_id: p.tenant_id,
        tenant_name: p.tenant_name,
        role: p.role,
        time_zone: p.time_zone,
        preferences: p.preferences,
    }))
}

/// `PATCH /v1/profile`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileBody {
    /// New display name (1 to 100 characters).
    display_name: Option<String>,
    /// New IANA time zone.
    time_zone: Option<String>,
    /// Keys to set (a `null` value removes the key).
    #[schema(value_type = Option<Object>)]
    preferences: Option<serde_json::Value>,
}

impl Validate for ProfileBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("display_name", self.display_name.as_deref(), 1, 100);
        errors.length("time_zone", self.time_zone.as_deref(), 1, 64);
    }
}

/// The account after a profile update.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountView {
    /// The user.
    #[schema(value_type = String, format = "uuid")]
    id: UserId,
    /// Email.
    email: String,
    /// Display name.
    name: Option<String>,
    /// IANA time zone.
    time_zone: Option<String>,
}

/// Updates the caller's profile.
#[utoipa::path(
    patch,
    path = "/v1/profile",
    tag = "profile",
    operation_id = "update_profile",
    security(("bearer" = []), ("api_key" = [])),
    request_body = ProfileBody,
    responses((status = 200, description = "Updated.", body = AccountView))
)]
pub(crate) async fn update_profile(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Json<AccountView>, ApiError> {
    let update = ProfileUpdate {
        display_name: body.display_name,
        time_zone: body.time_zone,
        preferences: body.preferences,
    };
    let account = state.spine.update_profile(&principal, update).await?;
    Ok(Json(AccountView {
        id: account.id,
        email: account.email,
        name: account.name,
        time_zone: account.time_zone,
    }))
}

/// An invoice.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvoiceView {
    /// The billing system's id.
    external_id: String,
    /// Invoice number.
    number: Option<String>,
    /// Status.
    #[schema(value_type = String)]
    status: InvoiceStatus,
    /// ISO currency.
    currency: String,
    /// Amount due, in cents.
    amount_due_cents: i64,
    /// Amount paid, in cents.
    amount_paid_cents: i64,
    /// Period start.
    period_start: DateTime<Utc>,
    /// Period end.
    period_end: DateTime<Utc>,
    /// Issue time.
    issued_at: DateTime<Utc>,
    /// Due date.
    due_at: Option<DateTime<Utc>>,
    /// Payment time.
    paid_at: Option<DateTime<Utc>>,
    /// The billing system's page for it.
    hosted_url: Option<String>,
}

fn invoice_view(i: account_spine::accounts::Invoice) -> InvoiceView {
    InvoiceView {
        external_id: i.external_id,
        number: i.number,
        status: i.status,
        currency: i.currency,
        amount_due_cents: i.amount_due_cents,
        amount_paid_cents: i.amount_paid_cents,
        period_start: i.period_start,
        period_end: i.period_end,
        issued_at: i.issued_at,
        due_at: i.due_at,
        paid_at: i.paid_at,
        hosted_url: i.hosted_url,
    }
}

/// The billing summary.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BillingView {
    /// The tenant's plan.
    plan: String,
    /// When the next invoice is due to be issued.
    next_invoice_date: Option<DateTime<Utc>>,
    /// The five most recent invoices.
    recent_invoices: Vec<InvoiceView>,
}

/// The billing summary, from stored data (admins and owners).
#[utoipa::path(
    get,
    path = "/v1/billing",
    tag = "billing",
    operation_id = "billing_summary",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The summary.", body = BillingView))
)]
pub(crate) async fn billing_summary(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<BillingView>, ApiError> {
    let summary = state.spine.billing_summary(&principal).await?;
    Ok(Json(BillingView {
        plan: summary.tenant.plan.to_string(),
        next_invoice_date: summary.next_invoice_date,
        recent_invoices: summary
            .recent_invoices
            .into_iter()
            .map(invoice_view)
            .collect(),
    }))
}

/// `?limit=&offset=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Items to skip (0).
    offset: Option<u64>,
}

impl Validate for PageQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        super::validate_page(errors, self.limit);
    }
}

/// The tenant's invoices (admins and owners).
#[utoipa::path(
    get,
    path = "/v1/billing/invoices",
    tag = "billing",
    operation_id = "list_invoices",
    security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of invoices.", body = ListBody<InvoiceView>))
)]
pub(crate) async fn list_invoices(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListBody<InvoiceView>>, ApiError> {
    let page = super::page(query.limit, query.offset);
    let found = state.spine.list_invoices(&principal, page).await?;
    Ok(Json(ListBody::from_page(found, page, invoice_view)))
}

/// Where customers reach support.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SupportContactView {
    /// Support email address.
    #[schema(format = "email")]
    email: String,
    /// When support is staffed.
    hours: String,
    /// The response-time promise.
    response_time: String,
}

/// Where customers reach support, as the service is configured.
#[utoipa::path(
    get,
    path = "/v1/support",
    tag = "support",
    operation_id = "support_contact",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The support contact.", body = SupportContactView),
        (status = 403, description = "A machine key (`machine_key_not_allowed`) or a key without `support:read` (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "The service has no support contact configured (`support_contact_not_configured`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn support_contact(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<SupportContactView>, ApiError> {
    let contact = state.spine.support_contact(&principal).await?;
    Ok(Json(SupportContactView {
        email: contact.email.as_str().to_owned(),
        hours: contact.hours,
        response_time: contact.response_time,
    }))
}

/// A support ticket.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketView {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    id: TicketId,
    /// Who opened it.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// Subject line.
    subject: String,
    /// Body.
    description: String,
    /// Category.
    #[schema(value_type = String)]
    category: TicketCategory,
    /// Priority.
    #[schema(value_type = String)]
    priority: TicketPriority,
    /// Status.
    #[schema(value_type = String)]
    status: TicketStatus,
    /// Opening time.
    created_at: DateTime<Utc>,
}

fn ticket_view(t: account_spine::accounts::Ticket) -> TicketView {
    TicketView {
        id: t.id,
        user_id: t.user_id,
        subject: t.subject,
        description: t.description,
        category: t.category,
        priority: t.priority,
        status: t.status,
        created_at: t.created_at,
    }
}

/// `POST /v1/support/tickets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TicketBody {
    /// Subject line, 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    subject: String,
    /// Body, 1 to 4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    description: String,
    /// Category (`general` by default).
    #[schema(value_type = Option<String>)]
    category: Option<TicketCategory>,
    /// Priority (`medium` by default).
    #[schema(value_type = Option<String>)]
    priority: Option<TicketPriority>,
}

impl Validate for TicketBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("subject", Some(self.subject.trim()), 1, 200);
        errors.length("description", Some(self.description.trim()), 1, 4000);
    }
}

/// Opens a support ticket as the caller.
#[utoipa::path(
    post,
    path = "/v1/support/tickets",
    tag = "support",
    operation_id = "open_ticket",
    security(("bearer" = []), ("api_key" = [])),
    request_body = TicketBody,
    responses((status = 201, description = "Opened.", body = TicketView))
)]
pub(crate) async fn open_ticket(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<TicketBody>,
) -> Result<(StatusCode, Json<TicketView>), ApiError> {
    let ticket = OpenTicket {
        subject: body.subject,
        description: body.description,
        category: body.category.unwrap_or(TicketCategory::General),
        priority: body.priority.unwrap_or(TicketPriority::Medium),
    };
    let opened = state.spine.open_ticket(&principal, ticket).await?;
    Ok((StatusCode::CREATED, Json(ticket_view(opened))))
}

/// `GET /v1/support/tickets?status=&limit=&offset=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TicketsQuery {
    /// Only tickets in this status.
    #[param(value_type = Option<String>)]
    status: Option<TicketStatus>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Items to skip (0).
    offset: Option<u64>,
}

impl Validate for TicketsQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        super::validate_page(errors, self.limit);
    }
}

/// The tenant's support tickets.
#[utoipa::path(
    get,
    path = "/v1/support/tickets",
    tag = "support",
    operation_id = "list_tickets",
    security(("bearer" = []), ("api_key" = [])),
    params(TicketsQuery),
    responses((status = 200, description = "A page of tickets.", body = ListBody<TicketView>))
)]
pub(crate) async fn list_tickets(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<TicketsQuery>,
) -> Result<Json<ListBody<TicketView>>, ApiError> {
    let page = super::page(query.limit, query.offset);
    let found = state
        .spine
        .list_tickets(&principal, query.status, page)
        .await?;
    Ok(Json(ListBody::from_page(found, page, ticket_view)))
}
