//! The host's `orders` table, as a sea-orm entity.

use sea_orm::entity::prelude::*;

/// One order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    /// The host's id (a UUID, as text).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The account tenant that placed it.
    pub tenant_id: String,
    /// What was ordered.
    pub item: String,
    /// How many.
    pub quantity: i32,
    /// The account domain's run that fulfils it.
    pub run_id: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
