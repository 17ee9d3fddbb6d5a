//! Users: creation, sign-in, profile, and the tenant's view of its users (joined with
//! `tenant_memberships`).
//!
//! Emails are stored normalised (lower case); callers pass them normalised. Permission flags
//! derived from a role are business rules: snapshots carry the role and engines decide.

use crate::{AccountsFacadeDriver, Db, DriverError};
use account_models::entities::{memberships, tenants, users};
use account_models::{MembershipRole, TenantId, UserId, UserStatus};
use sea_orm::prelude::{DateTimeUtc, Json};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, JoinType, QueryFilter,
    QuerySelect, RelationTrait, Select,
};

/// Users: creation, sign-in, profile.
#[derive(Clone, Copy, Debug)]
pub struct UserWriteDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The driver on `db`.
pub fn get_user_write_driver(db: Db<'_>) -> UserWriteDriver<'_> {
    UserWriteDriver { db }
}

/// A user account on its own, outside any tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserAccountSnapshot {
    /// Id.
    pub id: UserId,
    /// The identity provider's user id.
    pub external_user_id: Option<String>,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// `google`, `azure`, `email`, ...
    pub oauth_provider: Option<String>,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// The tenant the user lands in.
    pub default_tenant_id: Option<TenantId>,
    /// Account status.
    pub status: UserStatus,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Preferred language (BCP 47).
    pub locale: Option<String>,
    /// Preferences object, as stored.
    pub preferences: Option<Json>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Last sign-in.
    pub last_login_at: Option<DateTimeUtc>,
}

pub(crate) fn account(m: users::Model) -> UserAccountSnapshot {
    UserAccountSnapshot {
        id: m.id,
        external_user_id: m.external_user_id,
        email: m.email,
        name: m.name,
        avatar_url: m.avatar_url,
        oauth_provider: m.oauth_provider,
        email_verified: m.email_verified,
        default_tenant_id: m.default_tenant_id,
        status: m.status,
        time_zone: m.time_zone,
        locale: m.locale,
        preferences: m.preferences,
        created_at: m.created_at,
        updated_at: m.updated_at,
        last_login_at: m.last_login_at,
    }
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Id to create it with.
    pub id: UserId,
    /// Normalised (lower-case) email.
    pub email: String,
    /// The identity provider's user id, if known yet.
    pub external_user_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Initial status.
    pub status: UserStatus,
}

/// A tenant's member as its user list shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserSnapshot {
    /// Id.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Account status.
    pub status: UserStatus,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Account creation time.
    pub created_at: DateTimeUtc,
    /// Last sign-in.
    pub last_login_at: Option<DateTimeUtc>,
}

/// A tenant's member in detail. Permission flags are the engine's to derive from `role`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserDetailSnapshot {
    /// Id.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Account status.
    pub status: UserStatus,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Account creation time.
    pub created_at: DateTimeUtc,
    /// Last sign-in.
    pub last_login_at: Option<DateTimeUtc>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// `google`, `azure`, `email`, ...
    pub oauth_provider: Option<String>,
    /// When the user joined the tenant.
    pub membership_created_at: DateTimeUtc,
    /// Who invited the user into the tenant.
    pub invited_by: Option<UserId>,
    /// Last change to the account.
    pub updated_at: DateTimeUtc,
}

/// Where a keyset page of a tenant's users continues: after the user with this email and id
/// (the list's order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPosition {
    /// Normalised email of the last user read.
    pub email: String,
    /// Id of the last user read (the tie-breaker).
    pub id: UserId,
}

impl UserPosition {
    /// The position of `user` in the list.
    pub fn of(user: &UserSnapshot) -> Self {
        Self {
            email: user.email.clone(),
            id: user.id,
        }
    }
}

/// Which of a tenant's users to list; `None` means any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserFilter {
    /// Only members with this role.
    pub role: Option<MembershipRole>,
    /// Only users with this account status.
    pub status: Option<UserStatus>,
}

impl UserFilter {
    /// Only members with `role`.
    pub fn with_role(mut self, role: MembershipRole) -> Self {
        self.role = Some(role);
        self
    }

    /// Only users whose account is in `status`.
    pub fn with_status(mut self, status: UserStatus) -> Self {
        self.status = Some(status);
        self
    }
}

/// A user's profile within one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProfileSnapshot {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The tenant's display name.
    pub tenant_name: String,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Preferred language (BCP 47).
    pub locale: Option<String>,
    /// Preferences object, as stored.
    pub preferences: Option<Json>,
    /// Account creation time.
    pub created_at: DateTimeUtc,
    /// Last change to the account.
    pub updated_at: DateTimeUtc,
}

/// Profile fields to write; `None` leaves a field as it is. The engine merges preferences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// New display name.
    pub name: Option<String>,
    /// New IANA time zone.
    pub time_zone: Option<String>,
    /// New preferred language (BCP 47).
    pub locale: Option<String>,
    /// The whole preferences object after the engine's merge.
    pub preferences_merged: Option<Json>,
}

/// A user row joined with the membership columns the tenant views need.
#[derive(Debug, sea_orm::FromQueryResult)]
struct MemberRow {
    #[sea_orm(nested)]
    user: users::Model,
    role: MembershipRole,
    membership_created_at: DateTimeUtc,
    invited_by: Option<UserId>,
}

/// A user row joined with the membership role and the tenant's name.
#[derive(Debug, sea_orm::FromQueryResult)]
struct ProfileRow {
    #[sea_orm(nested)]
    user: users::Model,
    role: MembershipRole,
    tenant_id: TenantId,
    tenant_name: String,
}

pub mod erasure;
mod list;

/// Users who are members of `tenant`, with their membership columns.
fn members_of(tenant: TenantId) -> Select<users::Entity> {
    users::Entity::find()
        .join(JoinType::InnerJoin, memberships::Relation::User.def().rev())
        .filter(memberships::Column::TenantId.eq(tenant))
}

fn filtered(tenant: TenantId, filter: UserFilter) -> Select<users::Entity> {
    let mut query = members_of(tenant);
    if let Some(role) = filter.role {
        query = query.filter(memberships::Column::Role.eq(role));
    }
    if let Some(status) = filter.status {
        query = query.filter(users::Column::Status.eq(status));
    }
    query
}

fn member(r: MemberRow) -> UserSnapshot {
    UserSnapshot {
        id: r.user.id,
        email: r.user.email,
        name: r.user.name,
        status: r.user.status,
        role: r.role,
        created_at: r.user.created_at,
        last_login_at: r.user.last_login_at,
    }
}

fn with_membership_columns(query: Select<users::Entity>) -> Select<users::Entity> {
    query
        .column_as(memberships::Column::Role, "role")
        .column_as(memberships::Column::CreatedAt, "membership_created_at")
        .column_as(memberships::Column::InvitedBy, "invited_by")
}

impl UserWriteDriver<'_> {
    /// Inserts a user and returns the written row. A taken email or external id surfaces as
    /// [`DriverError::Conflict`] (`uq_users_email`, `uq_users_external_user_id`).
    pub async fn create_user(
        &self,
        user: NewUser,
        now: DateTimeUtc,
    ) -> Result<UserAccountSnapshot, DriverError> {
        let model = users::ActiveModel {
            id: Set(user.id),
            external_user_id: Set(user.external_user_id),
            email: Set(user.email),
            name: Set(user.name),
            avatar_url: Set(user.avatar_url),
            oauth_provider: Set(None),
            oauth_provider_id: Set(None),
            email_verified: Set(false),
            email_verified_at: Set(None),
            default_tenant_id: Set(None),
            status: Set(user.status),
            time_zone: Set(None),
            locale: Set(None),
            preferences: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            last_login_at: Set(None),
        }
        .insert(self.db.conn())
        .await?;
        Ok(account(model))
    }

    /// Records a sign-in at `now`; `None` when the user does not exist.
    pub async fn update_user_login(
        &self,
        user: UserId,
        now: DateTimeUtc,
    ) -> Result<Option<UserAccountSnapshot>, DriverError> {
        let rows = users::Entity::update_many()
            .set(users::ActiveModel {
                last_login_at: Set(Some(now)),
                updated_at: Set(now),
                ..Default::default()
            })
            .filter(users::Column::Id.eq(user))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(account))
    }

    /// The user with this id.
    pub async fn fetch_user_by_id(
        &self,
        user: UserId,
    ) -> Result<Option<UserAccountSnapshot>, DriverError> {
        let row = users::Entity::find_by_id(user).one(self.db.conn()).await?;
        Ok(row.map(account))
    }

    /// The user with this normalised email (exact match; emails are unique).
    pub async fn fetch_user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<UserAccountSnapshot>, DriverError> {
        let row = users::Entity::find()
            .filter(users::Column::Email.eq(email))
            .one(self.db.conn())
            .await?;
        Ok(row.map(account))
    }
}

impl AccountsFacadeDriver<'_> {
    /// The user with this id, in one statement (the same lookup as
    /// [`UserWriteDriver::fetch_user_by_id`]). Users are global: no tenant applies; use
    /// [`AccountsFacadeDriver::fetch_user_detail`] for a tenant's member.
    pub async fn fetch_user_by_id(
        &self,
        user: UserId,
    ) -> Result<Option<UserAccountSnapshot>, DriverError> {
        get_user_write_driver(self.db).fetch_user_by_id(user).await
    }

    /// The user with this normalised email (exact match), in one statement (the same lookup
    /// as [`UserWriteDriver::fetch_user_by_email`]). Users are global: no tenant applies.
    pub async fn fetch_user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<UserAccountSnapshot>, DriverError> {
        get_user_write_driver(self.db)
            .fetch_user_by_email(email)
            .await
    }

    /// Inserts a user and returns the written row, in one statement (the same insert as
    /// [`UserWriteDriver::create_user`]). A taken email or external id surfaces as
    /// [`DriverError::Conflict`].
    pub async fn insert_user(
        &self,
        user: NewUser,
        now: DateTimeUtc,
    ) -> Result<UserAccountSnapshot, DriverError> {
        get_user_write_driver(self.db).create_user(user, now).await
    }

    /// One of the tenant's users with their membership, in one query; `None` when the user
    /// is not a member of `tenant`.
    pub async fn fetch_user_detail(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<UserDetailSnapshot>, DriverError> {
        let row = with_membership_columns(members_of(tenant))
            .filter(users::Column::Id.eq(user))
            // A member of a deleted project is no member (their principal is refused).
            .filter(crate::projects::not_deleted((
                memberships::Entity,
                memberships::Column::TenantId,
            )))
            .into_model::<MemberRow>()
            .one(self.db.conn())
            .await?;
        Ok(row.map(|r| UserDetailSnapshot {
            id: r.user.id,
            email: r.user.email,
            name: r.user.name,
            status: r.user.status,
            role: r.role,
            created_at: r.user.created_at,
            last_login_at: r.user.last_login_at,
            avatar_url: r.user.avatar_url,
            email_verified: r.user.email_verified,
            oauth_provider: r.user.oauth_provider,
            membership_created_at: r.membership_created_at,
            invited_by: r.invited_by,
            updated_at: r.user.updated_at,
        }))
    }

    /// The user's profile in `tenant` (user, role and tenant name) in one query; `None` when
    /// the user is not a member of `tenant`.
    pub async fn fetch_profile(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<ProfileSnapshot>, DriverError> {
        let row = members_of(tenant)
            .join(JoinType::InnerJoin, memberships::Relation::Tenant.def())
            .column_as(memberships::Column::Role, "role")
            .column_as(tenants::Column::Id, "tenant_id")
            .column_as(tenants::Column::Name, "tenant_name")
            .filter(users::Column::Id.eq(user))
            .into_model::<ProfileRow>()
            .one(self.db.conn())
            .await?;
        Ok(row.map(|r| ProfileSnapshot {
            user_id: r.user.id,
            email: r.user.email,
            name: r.user.name,
            avatar_url: r.user.avatar_url,
            tenant_id: r.tenant_id,
            tenant_name: r.tenant_name,
            role: r.role,
            time_zone: r.user.time_zone,
            locale: r.user.locale,
            preferences: r.user.preferences,
            created_at: r.user.created_at,
            updated_at: r.user.updated_at,
        }))
    }

    /// Makes `tenant` the user's default tenant if they have none, in one conditional
    /// statement; whether it changed (a user keeps the default they have).
    pub async fn update_default_tenant_if_unset(
        &self,
        user: UserId,
        tenant: TenantId,
        now: DateTimeUtc,
    ) -> Result<bool, DriverError> {
        let result = users::Entity::update_many()
            .col_expr(users::Column::DefaultTenantId, Expr::value(tenant))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user))
            .filter(users::Column::DefaultTenantId.is_null())
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Clears the user's default tenant if it is `tenant` (they left it), in one conditional
    /// statement; whether it changed.
    pub async fn clear_default_tenant(
        &self,
        user: UserId,
        tenant: TenantId,
        now: DateTimeUtc,
    ) -> Result<bool, DriverError> {
        let result = users::Entity::update_many()
            .col_expr(
                users::Column::DefaultTenantId,
                Expr::value(Option::<TenantId>::None),
            )
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user))
            .filter(users::Column::DefaultTenantId.eq(tenant))
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Writes the given profile fields (and `updated_at`) in one statement and returns the
    /// row; `None` when the user does not exist. Users are global: no tenant applies.
    pub async fn update_user_profile(
        &self,
        user: UserId,
        changes: ProfileChanges,
        now: DateTimeUtc,
    ) -> Result<Option<UserAccountSnapshot>, DriverError> {
        let mut values = users::ActiveModel {
            updated_at: Set(now),
            ..Default::default()
        };
        if let Some(name) = changes.name {
            values.name = Set(Some(name));
        }
        if let Some(time_zone) = changes.time_zone {
            values.time_zone = Set(Some(time_zone));
        }
        if let Some(locale) = changes.locale {
            values.locale = Set(Some(locale));
        }
        if let Some(preferences) = changes.preferences_merged {
            values.preferences = Set(Some(preferences));
        }
        let rows = users::Entity::update_many()
            .set(values)
            .filter(users::Column::Id.eq(user))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(account))
    }
}
