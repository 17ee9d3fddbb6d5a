//! `users`: global user accounts, with the profile (name, avatar, time zone, locale) and
//! preferences.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: UserId,
    /// The identity provider's user id; absent until the user first signs in.
    pub external_user_id: Option<String>,
    /// Normalised (lower-case) email; unique.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// `google`, `azure`, `email`, ...
    pub oauth_provider: Option<String>,
    /// The provider's subject id.
    pub oauth_provider_id: Option<String>,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// When it was verified.
    pub email_verified_at: Option<DateTimeUtc>,
    /// The tenant the user lands in.
    pub default_tenant_id: Option<TenantId>,
    /// Account status.
    pub status: UserStatus,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: Option<String>,
    /// Preferred language, a BCP 47 tag such as `fr-CA`.
    pub locale: Option<String>,
    /// Free-form preferences: a bounded JSON object.
    pub preferences: Option<Json>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Last sign-in.
    pub last_login_at: Option<DateTimeUtc>,
}

crate::schema::table!("users");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
