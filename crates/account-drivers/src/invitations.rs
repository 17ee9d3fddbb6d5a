//! `invitations`: invitations to join a tenant.
//!
//! The token is stored only as a keyed digest that the engine computes; snapshots never carry
//! it. At most one invitation per (tenant, email) is pending (`uq_invitations_pending_email`),
//! and every state change is one statement conditional on the invitation still being pending.

use crate::{AccountsFacadeDriver, DriverError, OffsetPage, Page};
use account_models::entities::invitations;
use account_models::{InvitationId, InvitationStatus, MembershipRole, TenantId, UserId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, UpdateMany,
};

/// An invitation as the engines see it (never the token digest).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvitationSnapshot {
    /// Id.
    pub id: InvitationId,
    /// Inviting tenant.
    pub tenant_id: TenantId,
    /// Normalised invitee email.
    pub email: String,
    /// Role granted on acceptance.
    pub role: MembershipRole,
    /// Status.
    pub status: InvitationStatus,
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

/// An invitation to insert; it starts `pending`.
#[derive(Clone, PartialEq, Eq)]
pub struct NewInvitation {
    /// Id to create it with.
    pub id: InvitationId,
    /// Inviting tenant.
    pub tenant_id: TenantId,
    /// Normalised invitee email.
    pub email: String,
    /// Role granted on acceptance.
    pub role: MembershipRole,
    /// Keyed digest of the token (hex), computed by the engine.
    pub token_digest: String,
    /// Who invites.
    pub invited_by: UserId,
    /// Expiry.
    pub expires_at: DateTimeUtc,
}

impl std::fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvitation")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("token_digest", &"<redacted>")
            .field("invited_by", &self.invited_by)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn snapshot(m: invitations::Model) -> InvitationSnapshot {
    InvitationSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        email: m.email,
        role: m.role,
        status: m.status,
        invited_by: m.invited_by,
        created_at: m.created_at,
        expires_at: m.expires_at,
        accepted_at: m.accepted_at,
        accepted_by: m.accepted_by,
        revoked_at: m.revoked_at,
        updated_at: m.updated_at,
    }
}

/// An update of the tenant's invitation `id`, only while it is pending.
fn update_pending(
    tenant: TenantId,
    id: InvitationId,
    now: DateTimeUtc,
) -> UpdateMany<invitations::Entity> {
    invitations::Entity::update_many()
        .col_expr(invitations::Column::UpdatedAt, Expr::value(now))
        .filter(invitations::Column::TenantId.eq(tenant))
        .filter(invitations::Column::Id.eq(id))
        .filter(invitations::Column::Status.eq(InvitationStatus::Pending))
}

fn status_value(status: InvitationStatus) -> Expr {
    Expr::value(status.as_str())
}

impl AccountsFacadeDriver<'_> {
    /// The tenant's invitation for this normalised email with this status (the newest, if
    /// several are no longer pending).
    pub async fn fetch_invitation_by_email(
        &self,
        tenant: TenantId,
        email: &str,
        status: InvitationStatus,
    ) -> Result<Option<InvitationSnapshot>, DriverError> {
        let row = invitations::Entity::find()
            .filter(invitations::Column::TenantId.eq(tenant))
            .filter(invitations::Column::Email.eq(email))
            .filter(invitations::Column::Status.eq(status))
            .order_by_desc(invitations::Column::CreatedAt)
            .order_by_desc(invitations::Column::Id)
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// The tenant's seats: how many are taken (members plus pending invitations live at
    /// `now`) and how many it has; `None` when there is no such tenant. Locks the tenant row
    /// until the caller's transaction ends, then counts in a statement of its own: on
    /// PostgreSQL a count in the locking statement would read the snapshot taken before the
    /// wait, and miss the invitation the transaction it waited for committed (SQLite's
    /// writer is alone anyway).
    pub async fn lock_seats(
        &self,
        tenant: TenantId,
        now: DateTimeUtc,
    ) -> Result<Option<(i64, i64)>, DriverError> {
        if !crate::get_tenant_driver(self.db)
            .lock_tenant(tenant)
            .await?
        {
            return Ok(None);
        }
        let backend = sea_orm::ConnectionTrait::get_database_backend(self.db.conn());
        let [p1, p2] = crate::db::params(backend);
        let sql = format!(
            "SELECT CAST(t.member_count + (SELECT COUNT(*) FROM {i} i WHERE i.tenant_id = t.id \
               AND i.status = 'pending' AND i.expires_at > {p2}) AS BIGINT) AS taken, \
               CAST(t.max_members AS BIGINT) AS seats \
             FROM {t} t WHERE t.id = {p1}",
            i = crate::db::our_table("invitations"),
            t = crate::db::our_table("tenants"),
        );
        let values = vec![
            sea_orm::Value::from(tenant.as_uuid()),
            sea_orm::Value::from(now),
        ];
        let rows = crate::db::query_raw(self.db, sql, values).await?;
        rows.first()
            .map(|row| Ok((row.try_get("", "taken")?, row.try_get("", "seats")?)))
            .transpose()
    }

    /// Inserts a pending invitation and returns it (`INSERT ... RETURNING`). A second pending
    /// invitation for the same address surfaces as [`DriverError::Conflict`] on
    /// `uq_invitations_pending_email`.
    pub async fn insert_invitation(
        &self,
        invitation: NewInvitation,
        now: DateTimeUtc,
    ) -> Result<InvitationSnapshot, DriverError> {
        let model = invitations::ActiveModel {
            id: Set(invitation.id),
            tenant_id: Set(invitation.tenant_id),
            email: Set(invitation.email),
            role: Set(invitation.role),
            status: Set(InvitationStatus::Pending),
            token_digest: Set(invitation.token_digest),
            invited_by: Set(invitation.invited_by),
            created_at: Set(now),
            expires_at: Set(invitation.expires_at),
            accepted_at: Set(None),
            accepted_by: Set(None),
            revoked_at: Set(None),
            updated_at: Set(now),
        }
        .insert(self.db.conn())
        .await?;
        Ok(snapshot(model))
    }

    /// The tenant's invitations, newest first (ties by id), optionally with one status. Two
    /// statements: the count and the page.
    pub async fn fetch_invitations(
        &self,
        tenant: TenantId,
        status: Option<InvitationStatus>,
        page: OffsetPage,
    ) -> Result<Page<InvitationSnapshot>, DriverError> {
        let query = || {
            let query =
                invitations::Entity::find().filter(invitations::Column::TenantId.eq(tenant));
            match status {
                Some(status) => query.filter(invitations::Column::Status.eq(status)),
                None => query,
            }
        };
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_desc(invitations::Column::CreatedAt)
            .order_by_desc(invitations::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(snapshot).collect(),
            total,
            page,
        ))
    }

    /// The tenant's invitation with this id and token digest, whatever its status (the engine
    /// decides what a non-pending or expired invitation means).
    pub async fn fetch_invitation_by_id_and_token(
        &self,
        tenant: TenantId,
        id: InvitationId,
        token_digest: &str,
    ) -> Result<Option<InvitationSnapshot>, DriverError> {
        let row = invitations::Entity::find()
            .filter(invitations::Column::TenantId.eq(tenant))
            .filter(invitations::Column::Id.eq(id))
            .filter(invitations::Column::TokenDigest.eq(token_digest))
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// The tenant's invitation with this id.
    pub async fn fetch_invitation(
        &self,
        tenant: TenantId,
        id: InvitationId,
    ) -> Result<Option<InvitationSnapshot>, DriverError> {
        let row = invitations::Entity::find()
            .filter(invitations::Column::TenantId.eq(tenant))
            .filter(invitations::Column::Id.eq(id))
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// Marks the invitation accepted by `accepted_by`, only if it is still pending and not
    /// expired at `now`; whether it changed. Accepting twice changes nothing the second time.
    pub async fn update_invitation_accepted(
        &self,
        tenant: TenantId,
        id: InvitationId,
        accepted_by: UserId,
        now: DateTimeUtc,
    ) -> Result<bool, DriverError> {
        let result = update_pending(tenant, id, now)
            .col_expr(
                invitations::Column::Status,
                status_value(InvitationStatus::Accepted),
            )
            .col_expr(invitations::Column::AcceptedAt, Expr::value(now))
            .col_expr(invitations::Column::AcceptedBy, Expr::value(accepted_by))
            .filter(invitations::Column::ExpiresAt.gt(now))
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Marks a pending invitation expired; whether it changed.
    pub async fn update_invitation_expired(
        &self,
        tenant: TenantId,
        id: InvitationId,
        now: DateTimeUtc,
    ) -> Result<bool, DriverError> {
        let result = update_pending(tenant, id, now)
            .col_expr(
                invitations::Column::Status,
                status_value(InvitationStatus::Expired),
            )
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Revokes a pending invitation; whether it changed.
    pub async fn update_invitation_revoked(
        &self,
        tenant: TenantId,
        id: InvitationId,
        now: DateTimeUtc,
    ) -> Result<bool, DriverError> {
        let result = update_pending(tenant, id, now)
            .col_expr(
                invitations::Column::Status,
                status_value(InvitationStatus::Revoked),
            )
            .col_expr(invitations::Column::RevokedAt, Expr::value(now))
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Resend: replaces a pending invitation's token digest and expiry and restarts its
    /// `created_at` at `now`, returning the row; `None` (nothing changed) when it is not
    /// pending or not the tenant's.
    pub async fn update_invitation_token(
        &self,
        tenant: TenantId,
        id: InvitationId,
        new_digest: &str,
        new_expiry: DateTimeUtc,
        now: DateTimeUtc,
    ) -> Result<Option<InvitationSnapshot>, DriverError> {
        let rows = update_pending(tenant, id, now)
            .col_expr(invitations::Column::TokenDigest, Expr::value(new_digest))
            .col_expr(invitations::Column::ExpiresAt, Expr::value(new_expiry))
            .col_expr(invitations::Column::CreatedAt, Expr::value(now))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }
}
