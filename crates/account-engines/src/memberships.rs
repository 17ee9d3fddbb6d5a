//! Memberships: role changes, removal and ownership transfer, with the rules that keep a
//! tenant governable: only owners change roles, never their own; the last owner can never
//! be removed or demoted. Each check runs under the tenant row lock, so two concurrent
//! demotions cannot both pass the "another owner remains" test.
//!
//! The actor's role is never taken from the caller: [`Acting::role`] is what the principal
//! claimed when it was authenticated, and may be stale. Every change re-reads the actor's
//! membership under the tenant lock, in the caller's transaction, and decides on that.

use crate::PageRequest;
use crate::roles::{RoleCapabilities, capabilities, rank};
use crate::{Db, DriverError, ErrorCode, KeysetPage, OffsetPage, Page, StorageError};
use account_drivers::memberships::MembershipSnapshot;
pub use account_drivers::memberships::MembershipSnapshot as Membership;
use account_drivers::types::{ApiKeyId, MembershipRole, TenantId, UserId, UserStatus};
pub use account_drivers::users::{
    UserDetailSnapshot as UserDetail, UserFilter, UserPosition, UserSnapshot as User,
};
use account_drivers::users::{UserDetailSnapshot, UserSnapshot};
use account_drivers::{get_accounts_facade_driver, get_tenant_driver};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The member acting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acting {
    /// Who.
    pub user_id: UserId,
    /// Their role in the tenant as the principal claims it. Engines that change memberships
    /// or invitations re-read the role and decide on the fresh one.
    pub role: MembershipRole,
}

/// Why a membership change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The user is not a member of this tenant.
    #[error("user is not a member of this tenant; check the user id")]
    NotAMember,
    /// The actor is not (or no longer) a member of this tenant.
    #[error("you are not a member of this tenant; sign in to a tenant you belong to")]
    ActorNotAMember,
    /// Only owners change roles.
    #[error("only owners can change roles; ask an owner")]
    OnlyOwnersChangeRoles,
    /// Members manage no users.
    #[error("role {0} cannot manage users; an admin or owner can")]
    CannotManageUsers(MembershipRole),
    /// Nobody changes their own role.
    #[error("you cannot change your own role; ask another owner")]
    OwnRole,
    /// Admins cannot remove owners.
    #[error("only owners can remove an owner; ask another owner")]
    OwnerRemovalNeedsOwner,
    /// The last owner must stay.
    #[error("the tenant's last owner cannot be removed or demoted; transfer ownership first")]
    LastOwner,
    /// Ownership goes to another member.
    #[error("ownership can only be transferred to another member; name someone else")]
    TransferToSelf,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// Another change won the race; read again.
    #[error("the membership changed concurrently; retry")]
    Conflict,
    /// Removing the member would revoke the tenant's last key able to manage keys (their
    /// personal key) while no owner can sign in through an identity provider.
    #[error(
        "removing this member revokes the tenant's last key able to manage keys while no owner \
         can sign in; issue another key with keys:manage first"
    )]
    LastKeyManager,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for MembershipError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for MembershipError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for MembershipError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotAMember => "not_a_member",
            Self::ActorNotAMember => "actor_not_a_member",
            Self::OnlyOwnersChangeRoles => "only_owners_change_roles",
            Self::CannotManageUsers(_) => "cannot_manage_users",
            Self::OwnRole => "own_role",
            Self::OwnerRemovalNeedsOwner => "owner_removal_needs_owner",
            Self::LastOwner => "last_owner",
            Self::TransferToSelf => "transfer_to_self",
            Self::InvalidPage => "invalid_page",
            Self::Conflict => "concurrent_change",
            Self::LastKeyManager => "last_key_manager",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::NotAMember => 404,
            Self::ActorNotAMember
            | Self::OnlyOwnersChangeRoles
            | Self::CannotManageUsers(_)
            | Self::OwnerRemovalNeedsOwner => 403,
            Self::OwnRole
            | Self::LastOwner
            | Self::TransferToSelf
            | Self::Conflict
            | Self::LastKeyManager => 409,
            Self::InvalidPage => 422,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// A role change's before and after.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleChange {
    /// Role before.
    pub previous: MembershipRole,
    /// The membership after.
    pub membership: MembershipSnapshot,
}

/// A removed member: the membership as it was, and the personal keys it took with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedMember {
    /// The membership, before removal.
    pub membership: MembershipSnapshot,
    /// The user's personal API keys of the tenant, revoked with the membership (hosts drop
    /// them from any verification cache).
    pub revoked_keys: Vec<ApiKeyId>,
}

/// The reason recorded on the personal keys a removal revokes.
pub const REMOVED_MEMBER_KEY_REASON: &str = "member removed from the tenant";

async fn member(
    db: Db<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<MembershipSnapshot, MembershipError> {
    get_accounts_facade_driver(db)
        .fetch_membership(tenant, user)
        .await?
        .ok_or(MembershipError::NotAMember)
}

/// Locks the tenant row, then reads the actor's current role (never the principal's claim).
async fn lock_and_read_actor(
    db: Db<'_>,
    tenant: TenantId,
    actor: Acting,
) -> Result<MembershipRole, MembershipError> {
    get_tenant_driver(db).lock_tenant(tenant).await?;
    Ok(get_accounts_facade_driver(db)
        .fetch_membership(tenant, actor.user_id)
        .await?
        .ok_or(MembershipError::ActorNotAMember)?
        .role)
}

/// Refuses when `target` is the only owner left. Call under the tenant lock.
async fn ensure_another_owner(
    db: Db<'_>,
    tenant: TenantId,
    target: &MembershipSnapshot,
) -> Result<(), MembershipError> {
    if target.role == MembershipRole::Owner
        && get_accounts_facade_driver(db).count_owners(tenant).await? <= 1
    {
        return Err(MembershipError::LastOwner);
    }
    Ok(())
}

/// Changes `target`'s role. Only owners may (by their role as it stands now); never their
/// own; never the last owner's.
pub async fn update_user_role(
    db: Db<'_>,
    tenant: TenantId,
    actor: Acting,
    target: UserId,
    new_role: MembershipRole,
    now: DateTime<Utc>,
) -> Result<RoleChange, MembershipError> {
    let own = lock_and_read_actor(db, tenant, actor).await?;
    if !capabilities(own).can_change_roles {
        return Err(MembershipError::OnlyOwnersChangeRoles);
    }
    if actor.user_id == target {
        return Err(MembershipError::OwnRole);
    }
    let current = member(db, tenant, target).await?;
    if current.role == new_role {
        return Ok(RoleChange {
            previous: current.role,
            membership: current,
        });
    }
    if rank(new_role) < rank(current.role) {
        ensure_another_owner(db, tenant, &current).await?;
    }
    let membership = get_accounts_facade_driver(db)
        .update_membership_role(tenant, target, new_role, Some(current.role), now)
        .await?
        .ok_or(MembershipError::Conflict)?;
    Ok(RoleChange {
        previous: current.role,
        membership,
    })
}

/// Removes `target` from the tenant (a member may also leave). Admins cannot remove owners;
/// the last owner cannot leave. The actor's role is the current one. The user's personal keys
/// of the tenant are revoked with the membership (they acted on the user's behalf, and the
/// user no longer may), and the tenant stops being their default.
pub async fn remove_member(
    db: Db<'_>,
    tenant: TenantId,
    actor: Acting,
    target: UserId,
    now: DateTime<Utc>,
) -> Result<RemovedMember, MembershipError> {
    let leaving = actor.user_id == target;
    let own = lock_and_read_actor(db, tenant, actor).await?;
    if !leaving && !capabilities(own).can_manage_users {
        return Err(MembershipError::CannotManageUsers(own));
    }
    let current = member(db, tenant, target).await?;
    if !leaving && current.role == MembershipRole::Owner && own != MembershipRole::Owner {
        return Err(MembershipError::OwnerRemovalNeedsOwner);
    }
    // A deleted project (on its way to the purge; only erasure still reaches it) lets its
    // last owner and last key manager go: nobody is left to lock out.
    let deleted = async || -> Result<bool, MembershipError> {
        Ok(leaving
            && account_drivers::projects::fetch_deletion(db, tenant)
                .await?
                .is_some())
    };
    if let Err(refused) = ensure_another_owner(db, tenant, &current).await
        && !deleted().await?
    {
        return Err(refused);
    }
    if !get_accounts_facade_driver(db)
        .delete_membership(tenant, target)
        .await?
    {
        return Err(MembershipError::Conflict);
    }
    let revoked = get_tenant_driver(db)
        .update_user_api_keys_revoked(tenant, target, REMOVED_MEMBER_KEY_REASON, now)
        .await?;
    // Their personal keys go with them: the same lock-out rule as revoking a key by hand.
    if revoked
        .iter()
        .any(|key| crate::api_keys::was_lasting_key_manager(key, now))
        && !crate::api_keys::key_management_remains(db, tenant, now)
            .await
            .map_err(|e| match e {
                crate::api_keys::ApiKeyError::Storage(storage) => MembershipError::Storage(storage),
                _ => MembershipError::LastKeyManager,
            })?
        && !deleted().await?
    {
        return Err(MembershipError::LastKeyManager);
    }
    let revoked_keys = revoked.into_iter().map(|key| key.id).collect();
    get_accounts_facade_driver(db)
        .clear_default_tenant(target, tenant, now)
        .await?;
    Ok(RemovedMember {
        membership: current,
        revoked_keys,
    })
}

/// Makes `new_owner` an owner and the acting owner (an owner now, not just by the principal's
/// claim) an admin, in the caller's transaction.
pub async fn transfer_ownership(
    db: Db<'_>,
    tenant: TenantId,
    actor: Acting,
    new_owner: UserId,
    now: DateTime<Utc>,
) -> Result<(MembershipSnapshot, MembershipSnapshot), MembershipError> {
    if lock_and_read_actor(db, tenant, actor).await? != MembershipRole::Owner {
        return Err(MembershipError::OnlyOwnersChangeRoles);
    }
    if actor.user_id == new_owner {
        return Err(MembershipError::TransferToSelf);
    }
    let target = member(db, tenant, new_owner).await?;
    let facade = get_accounts_facade_driver(db);
    let promoted = facade
        .update_membership_role(
            tenant,
            new_owner,
            MembershipRole::Owner,
            Some(target.role),
            now,
        )
        .await?
        .ok_or(MembershipError::Conflict)?;
    let demoted = facade
        .update_membership_role(
            tenant,
            actor.user_id,
            MembershipRole::Admin,
            Some(MembershipRole::Owner),
            now,
        )
        .await?
        .ok_or(MembershipError::Conflict)?;
    Ok((promoted, demoted))
}

/// The tenant's users with their roles, by email.
pub async fn list_users(
    db: Db<'_>,
    tenant: TenantId,
    filter: UserFilter,
    page: OffsetPage,
) -> Result<Page<UserSnapshot>, MembershipError> {
    let page = PageRequest::new(page)?.into_page();
    Ok(get_accounts_facade_driver(db)
        .fetch_users(tenant, filter, page)
        .await?)
}

/// The tenant's users with their roles, by email then id, continuing after `after` (the
/// first page when `None`). One statement and no total, whatever the depth.
pub async fn list_users_after(
    db: Db<'_>,
    tenant: TenantId,
    filter: UserFilter,
    after: Option<UserPosition>,
    limit: u64,
) -> Result<KeysetPage<UserSnapshot, UserPosition>, MembershipError> {
    let limit = PageRequest::limit(limit)?;
    Ok(get_accounts_facade_driver(db)
        .fetch_users_after(tenant, filter, after, limit)
        .await?)
}

/// Every tenant `user` belongs to, with their role there and when they joined, oldest first.
pub async fn list_user_memberships(
    db: Db<'_>,
    user: UserId,
) -> Result<Vec<(TenantId, MembershipRole, DateTime<Utc>)>, MembershipError> {
    Ok(get_accounts_facade_driver(db)
        .fetch_user_memberships(user)
        .await?)
}

/// One user of the tenant, with the capabilities their role gives.
pub async fn get_user_detail(
    db: Db<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<(UserDetailSnapshot, RoleCapabilities), MembershipError> {
    let detail = get_accounts_facade_driver(db)
        .fetch_user_detail(tenant, user)
        .await?
        .ok_or(MembershipError::NotAMember)?;
    let capabilities = capabilities(detail.role);
    Ok((detail, capabilities))
}

/// The tenant's members, oldest membership first.
pub async fn list_tenant_users(
    db: Db<'_>,
    tenant: TenantId,
    page: OffsetPage,
) -> Result<TenantUsersListResult, MembershipError> {
    let page = PageRequest::new(page)?.into_page();
    let found = get_accounts_facade_driver(db)
        .fetch_tenant_memberships(tenant, page)
        .await?;
    Ok(TenantUsersListResult {
        total: found.total,
        users: found.items.into_iter().map(Into::into).collect(),
    })
}

/// User detail response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserDetailResult {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Account status.
    pub status: UserStatus,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// `google`, `azure`, `email`, ...
    pub oauth_provider: Option<String>,
    /// When the user joined the tenant.
    pub membership_created_at: DateTime<Utc>,
    /// Who invited the user into the tenant.
    pub invited_by: Option<UserId>,
    /// The role may issue, rotate and revoke API keys.
    pub can_manage_keys: bool,
    /// The role may start runs.
    pub can_run_workers: bool,
    /// The role may read runs.
    pub can_view_runs: bool,
    /// Account creation time.
    pub created_at: DateTime<Utc>,
    /// Last change to the account (always stored, so never absent).
    pub updated_at: DateTime<Utc>,
    /// Last sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<(UserDetailSnapshot, RoleCapabilities)> for UserDetailResult {
    fn from((u, can): (UserDetailSnapshot, RoleCapabilities)) -> Self {
        Self {
            user_id: u.id,
            email: u.email,
            name: u.name,
            avatar_url: u.avatar_url,
            role: u.role,
            status: u.status,
            email_verified: u.email_verified,
            oauth_provider: u.oauth_provider,
            membership_created_at: u.membership_created_at,
            invited_by: u.invited_by,
            can_manage_keys: can.can_manage_keys,
            can_run_workers: can.can_run_workers,
            can_view_runs: can.can_view_runs,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// User in tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TenantUserResult {
    /// Id.
    pub user_id: UserId,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// When the user joined the tenant.
    pub joined_at: DateTime<Utc>,
}

impl From<MembershipSnapshot> for TenantUserResult {
    fn from(m: MembershipSnapshot) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role,
            joined_at: m.created_at,
        }
    }
}

/// List of tenant users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TenantUsersListResult {
    /// This page of the tenant's members, oldest membership first.
    pub users: Vec<TenantUserResult>,
    /// Members on all pages.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            MembershipError::NotAMember,
            MembershipError::ActorNotAMember,
            MembershipError::OnlyOwnersChangeRoles,
            MembershipError::CannotManageUsers(MembershipRole::Viewer),
            MembershipError::OwnRole,
            MembershipError::OwnerRemovalNeedsOwner,
            MembershipError::LastOwner,
            MembershipError::TransferToSelf,
            MembershipError::InvalidPage,
            MembershipError::Conflict,
            MembershipError::LastKeyManager,
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                MembershipError::NotAMember
                | MembershipError::ActorNotAMember
                | MembershipError::OnlyOwnersChangeRoles
                | MembershipError::CannotManageUsers(_)
                | MembershipError::OwnRole
                | MembershipError::OwnerRemovalNeedsOwner
                | MembershipError::LastOwner
                | MembershipError::TransferToSelf
                | MembershipError::InvalidPage
                | MembershipError::Conflict
                | MembershipError::LastKeyManager => {}
                MembershipError::Storage(_) => unreachable!("not caller-caused"),
            }
        }
        crate::error::assert_caller_errors(&errors);
    }
}
