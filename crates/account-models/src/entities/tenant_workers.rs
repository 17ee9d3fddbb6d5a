//! `tenant_workers`: each worker a tenant has run, with its runs queued or running now, so
//! admission knows in the rows it locks whether a run brings a new worker (`max_workers`).

use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One worker of one tenant.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Owning tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: TenantId,
    /// The worker.
    #[sea_orm(primary_key, auto_increment = false)]
    pub worker_id: String,
    /// Its runs queued or running now.
    pub active_runs: i32,
}

crate::schema::table!("tenant_workers");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
