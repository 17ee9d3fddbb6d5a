//! `identity_links`: an identity provider's subject (issuer + subject) → our user.
//!
//! Not tenant-scoped, like `users`: a person's identity spans every tenant they belong to,
//! and a request presenting a token names no tenant until the link leads to the user. The one
//! tenant question ([`tenant_has_owner_with_identity`]) is scoped by `tenant_id`.

use crate::{Db, DriverError};
use account_models::entities::{identity_links, memberships, users};
use account_models::{IdentityLinkId, MembershipRole, TenantId, UserId, UserStatus};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, JoinType, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, RelationDef,
};

/// An identity link as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityLinkSnapshot {
    /// Id.
    pub id: IdentityLinkId,
    /// The identity provider's issuer URL.
    pub issuer: String,
    /// The subject at that issuer.
    pub subject: String,
    /// The user it is.
    pub user_id: UserId,
    /// When it was made.
    pub created_at: DateTimeUtc,
}

fn snapshot(m: identity_links::Model) -> IdentityLinkSnapshot {
    IdentityLinkSnapshot {
        id: m.id,
        issuer: m.issuer,
        subject: m.subject,
        user_id: m.user_id,
        created_at: m.created_at,
    }
}

/// Links `issuer` + `subject` to `user`. A second link of the same pair is
/// [`DriverError::Conflict`] on `uq_identity_links_issuer_subject`; a missing user is
/// [`DriverError::ForeignKey`].
pub async fn insert_identity_link(
    db: Db<'_>,
    issuer: &str,
    subject: &str,
    user: UserId,
    now: DateTimeUtc,
) -> Result<IdentityLinkSnapshot, DriverError> {
    let model = identity_links::ActiveModel {
        id: Set(IdentityLinkId::new()),
        issuer: Set(issuer.to_owned()),
        subject: Set(subject.to_owned()),
        user_id: Set(user),
        created_at: Set(now),
    }
    .insert(db.conn())
    .await?;
    Ok(snapshot(model))
}

/// The user `issuer` + `subject` is linked to, if any (the unique index's lookup).
pub async fn fetch_user_by_identity(
    db: Db<'_>,
    issuer: &str,
    subject: &str,
) -> Result<Option<UserId>, DriverError> {
    Ok(identity_links::Entity::find()
        .select_only()
        .column(identity_links::Column::UserId)
        .filter(identity_links::Column::Issuer.eq(issuer))
        .filter(identity_links::Column::Subject.eq(subject))
        .into_tuple()
        .one(db.conn())
        .await?)
}

/// A user's identity links, oldest first.
pub async fn fetch_user_identities(
    db: Db<'_>,
    user: UserId,
) -> Result<Vec<IdentityLinkSnapshot>, DriverError> {
    let rows = identity_links::Entity::find()
        .filter(identity_links::Column::UserId.eq(user))
        .order_by_asc(identity_links::Column::CreatedAt)
        .order_by_asc(identity_links::Column::Id)
        .all(db.conn())
        .await?;
    Ok(rows.into_iter().map(snapshot).collect())
}

fn user_of_membership() -> RelationDef {
    memberships::Entity::belongs_to(users::Entity)
        .from(memberships::Column::UserId)
        .to(users::Column::Id)
        .into()
}

fn identity_of_membership() -> RelationDef {
    memberships::Entity::belongs_to(identity_links::Entity)
        .from(memberships::Column::UserId)
        .to(identity_links::Column::UserId)
        .into()
}

/// Whether `tenant` has an owner who can sign in: an Owner membership whose user is active
/// and has at least one identity link. One statement.
pub async fn tenant_has_owner_with_identity(
    db: Db<'_>,
    tenant: TenantId,
) -> Result<bool, DriverError> {
    let found = memberships::Entity::find()
        .join(JoinType::InnerJoin, user_of_membership())
        .join(JoinType::InnerJoin, identity_of_membership())
        .filter(memberships::Column::TenantId.eq(tenant))
        .filter(memberships::Column::Role.eq(MembershipRole::Owner))
        .filter(users::Column::Status.eq(UserStatus::Active))
        .limit(1)
        .count(db.conn())
        .await?;
    Ok(found > 0)
}
