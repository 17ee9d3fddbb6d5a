//! Users of the tenant (list, read) and the caller's own profile (read, update).
//!
//! These routes act as a person, so they answer only to a key issued for a user (a personal
//! key, as bootstrap issues the owner's): it acts on that user's behalf, within both its
//! permissions and the user's current role. A machine key (issued for no user) gets a 403.

pub(crate) mod erasure;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, ListQuery, Validate};
use crate::json_object::JsonObject;
use crate::openapi::user_status;
use crate::routes::lists::{CursorPage, CursorPageQuery, ListBody};
use account_spine::memberships::{User, UserFilter, UserPosition};
use account_spine::types::{MembershipRole, TenantId, UserId, UserStatus};
use account_spine::users::ProfileUpdate;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
type UsersPage = CursorPageQuery<(String, UserId)>;

fn user_cursor_position(user: &User) -> (String, UserId) {
    (user.email.clone(), user.id)
}

/// The filters of `GET /v1/users?role=&status=` (its page is a [`UsersPage`]: by offset or by
/// cursor).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsersFilter {
    /// Only members with this role.
    #[param(value_type = Option<String>)]
    role: Option<MembershipRole>,
    /// Only users with this account status.
    #[param(value_type = Option<String>)]
    status: Option<UserStatus>,
}

impl Validate for UsersFilter {
    fn validate(&self, _errors: &mut FieldErrors) {}
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
    params(UsersFilter, UsersPage),
    responses((status = 200, description = "A page of users.", body = ListBody<UserView>))
)]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<UsersFilter, UsersPage>,
) -> Result<Json<ListBody<UserView>>, ApiError> {
    let (role, status) = (filter.role, filter.status);
    let mut filter = UserFilter::default();
    (filter.role, filter.status) = (role, status);
    match page.page() {
        CursorPage::After {
            position: (email, id),
            limit,
        } => {
            let after = Some(UserPosition { email, id });
            let found = state
                .spine
                .list_users_after(&principal, filter, after, limit)
                .await?;
            Ok(Json(ListBody::from_keyset_page(
                found,
                limit,
                |next| (next.email, next.id),
                user_view,
            )))
        }
        CursorPage::Offset(page) => {
            let found = state.spine.list_users(&principal, filter, page).await?;
            Ok(Json(ListBody::from_page_with_cursor(
                found,
                page,
                user_cursor_position,
                user_view,
            )))
        }
    }
}

/// A member of the caller's tenant in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct UserPath {
    /// The user's id.
    #[param(value_type = String, format = "uuid")]
    pub(crate) id: UserId,
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
    /// Preferred language, a BCP 47 tag (`fr-CA`).
    locale: Option<String>,
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
        locale: p.locale,
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
    /// New preferred language, a BCP 47 tag (`fr-CA`, `zh-Hant-TW`).
    locale: Option<String>,
    /// Keys to set (a `null` value removes the key).
    #[schema(value_type = Option<Object>)]
    preferences: Option<JsonObject>,
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
    /// Preferred language (BCP 47).
    locale: Option<String>,
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
    // Field by field: `ProfileUpdate` is non-exhaustive (a later field stays `None` here).
    let mut update = ProfileUpdate::default();
    update.display_name = body.display_name;
    update.time_zone = body.time_zone;
    update.locale = body.locale;
    update.preferences = body.preferences.map(JsonObject::into_value);
    let account = state.spine.update_profile(&principal, update).await?;
    Ok(Json(AccountView {
        id: account.id,
        email: account.email,
        name: account.name,
        time_zone: account.time_zone,
        locale: account.locale,
    }))
}
