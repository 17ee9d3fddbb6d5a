//! `tenant_memberships`: a user's role in a tenant; one per (tenant, user).

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One membership.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MembershipId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The member.
    pub user_id: UserId,
    /// The member's role.
    pub role: MembershipRole,
    /// Who invited the member, if anyone.
    pub invited_by: Option<UserId>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last role change.
    pub updated_at: DateTimeUtc,
    /// The member's email, copied from `users.email` when the membership is written (emails
    /// never change), so that one index (`tenant_id, member_email, user_id`) serves the
    /// tenant's members in list order and a member found by email.
    pub member_email: String,
}

crate::schema::table!("tenant_memberships");

/// Memberships join their user and tenant.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The member.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id"
    )]
    User,
    /// The tenant.
    #[sea_orm(
        belongs_to = "super::tenants::Entity",
        from = "Column::TenantId",
        to = "super::tenants::Column::Id"
    )]
    Tenant,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::tenants::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
