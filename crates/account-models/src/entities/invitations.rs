//! `invitations`: invitations to join a tenant; the token is stored only as a keyed digest.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One invitation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: InvitationId,
    /// Inviting tenant.
    pub tenant_id: TenantId,
    /// Normalised invitee email.
    pub email: String,
    /// Role granted on acceptance.
    pub role: MembershipRole,
    /// Status.
    pub status: InvitationStatus,
    /// Keyed digest of the token, hex.
    pub token_digest: String,
    /// Who invited.
    pub invited_by: UserId,
    /// Creation (or last resend) time.
    pub created_at: DateTimeUtc,
    /// Expiry.
    pub expires_at: DateTimeUtc,
    /// Acceptance time.
    pub accepted_at: Option<DateTimeUtc>,
    /// The user who accepted.
    pub accepted_by: Option<UserId>,
    /// Revocation time.
    pub revoked_at: Option<DateTimeUtc>,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

crate::schema::table!("invitations");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
