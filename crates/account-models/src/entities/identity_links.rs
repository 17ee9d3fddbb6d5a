//! `identity_links`: an identity provider's subject (issuer + subject) → our user. Global,
//! like `users`: one person signs in once and acts in every tenant they belong to.

use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One identity link.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: IdentityLinkId,
    /// The identity provider's issuer URL (the token's `iss`).
    #[sea_orm(column_type = "Text")]
    pub issuer: String,
    /// The subject at that issuer (the token's `sub`); unique together with the issuer.
    #[sea_orm(column_type = "Text")]
    pub subject: String,
    /// The user this identity is.
    pub user_id: UserId,
    /// When the link was made.
    pub created_at: DateTimeUtc,
}

crate::schema::table!("identity_links");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
