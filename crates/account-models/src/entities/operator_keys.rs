//! `operator_keys`: platform operator keys, stored only as a keyed digest plus a display prefix.

use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One operator key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: OperatorKeyId,
    /// Human label (who or what holds it).
    pub name: String,
    /// The first characters of the key, shown to identify it.
    pub key_prefix: String,
    /// Keyed hash (HMAC) of the whole key, hex; unique.
    pub key_digest: String,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// When it was revoked; `None` while it is valid.
    pub revoked_at: Option<DateTimeUtc>,
}

crate::schema::table!("operator_keys");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
