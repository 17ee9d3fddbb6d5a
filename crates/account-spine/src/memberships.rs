//! Membership use cases: the tenant's users and their roles, role changes, removal and
//! ownership transfer.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::memberships;
use account_engines::types::{MembershipRole, UserId};
use account_engines::{KeysetPage, OffsetPage, Page};
use serde_json::json;

pub use account_engines::memberships::{Membership, RoleChange, User, UserFilter, UserPosition};
pub use account_engines::memberships::{TenantUserResult, TenantUsersListResult, UserDetailResult};

/// The tenant's users with their roles.
#[derive(Clone, Debug)]
pub struct ListUsers {
    /// Which users.
    pub filter: UserFilter,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListUsers {}
impl UseCase for ListUsers {
    type Output = Page<User>;
    const OPERATION: Operation = Operation::AccountListUsers;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<User>, SpineError> {
        let tenant = cx.tenant()?;
        Ok(memberships::list_users(cx.db, tenant, self.filter, self.page).await?)
    }
}

/// The tenant's users with their roles by keyset, continuing after `after` (the first page
/// when `None`): one statement per page at any depth, and no total (use [`ListUsers`] for
/// that). `after` is a position, not a grant: it only ever pages the principal's tenant,
/// whichever tenant it was read from.
#[derive(Clone, Debug)]
pub struct ListUsersAfter {
    /// Which users.
    pub filter: UserFilter,
    /// Where the previous page ended.
    pub after: Option<UserPosition>,
    /// Most users in the page.
    pub limit: u64,
}

impl Sealed for ListUsersAfter {}
impl UseCase for ListUsersAfter {
    type Output = KeysetPage<User, UserPosition>;
    const OPERATION: Operation = Operation::AccountListUsers;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(
        &self,
        cx: &mut Context<'_>,
    ) -> Result<KeysetPage<User, UserPosition>, SpineError> {
        let (filter, after) = (self.filter, self.after.clone());
        let tenant = cx.tenant()?;
        Ok(memberships::list_users_after(cx.db, tenant, filter, after, self.limit).await?)
    }
}

/// The tenant's members, oldest membership first (the seed's `list_tenant_users`): who joined
/// when, with their role.
#[derive(Clone, Copy, Debug)]
pub struct ListTenantUsers {
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListTenantUsers {}
impl UseCase for ListTenantUsers {
    type Output = TenantUsersListResult;
    const OPERATION: Operation = Operation::AccountListTenantUsers;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<TenantUsersListResult, SpineError> {
        let tenant = cx.tenant()?;
        Ok(memberships::list_tenant_users(cx.db, tenant, self.page).await?)
    }
}

/// One user of the principal's tenant, with what their role lets them do. A user who is not
/// a member of this tenant (another tenant's included) is `not_a_member` (404).
#[derive(Clone, Copy, Debug)]
pub struct GetUser {
    /// The user.
    pub user: UserId,
}

impl Sealed for GetUser {}
impl UseCase for GetUser {
    type Output = UserDetailResult;
    const OPERATION: Operation = Operation::AccountGetUser;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<UserDetailResult, SpineError> {
        let tenant = cx.tenant()?;
        Ok(memberships::get_user_detail(cx.db, tenant, self.user)
            .await?
            .into())
    }
}

/// Changes a member's role (owners only; never their own; never the last owner's).
#[derive(Clone, Copy, Debug)]
pub struct ChangeRole {
    /// The member.
    pub user: UserId,
    /// Their new role.
    pub role: MembershipRole,
}

impl Sealed for ChangeRole {}
impl UseCase for ChangeRole {
    type Output = RoleChange;
    const OPERATION: Operation = Operation::AccountChangeRole;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RoleChange, SpineError> {
        let (tenant, actor) = (cx.tenant()?, cx.member()?);
        let change =
            memberships::update_user_role(cx.db, tenant, actor, self.user, self.role, cx.now)
                .await?;
        let (from, to) = (change.previous, change.membership.role);
        cx.forget_member(tenant, self.user);
        let audited = Change::of("membership", self.user)
            .before(json!({"role": from}))
            .after(json!({"role": to}));
        cx.audit(audited).await?;
        if from != to {
            cx.publish(DomainEvent::MemberRoleChanged {
                tenant_id: tenant,
                user_id: self.user,
                from,
                to,
                changed_by: actor.user_id,
            });
        }
        Ok(change)
    }
}

/// Removes a member (or lets one leave); the last owner stays. Their personal keys of the
/// tenant are revoked in the same transaction and stop verifying at once.
#[derive(Clone, Copy, Debug)]
pub struct RemoveUser {
    /// The member.
    pub user: UserId,
}

impl Sealed for RemoveUser {}
impl UseCase for RemoveUser {
    type Output = Membership;
    const OPERATION: Operation = Operation::AccountRemoveUser;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Membership, SpineError> {
        let (tenant, actor) = (cx.tenant()?, cx.member()?);
        let removal = memberships::remove_member(cx.db, tenant, actor, self.user, cx.now).await?;
        let before = json!({
            "role": removal.membership.role,
            "personal_keys_revoked": removal.revoked_keys,
        });
        cx.audit(Change::of("membership", self.user).before(before))
            .await?;
        for key in &removal.revoked_keys {
            cx.forget_key(tenant, *key);
        }
        cx.forget_member(tenant, self.user);
        let removed = removal.membership;
        cx.publish(DomainEvent::MemberRemoved {
            tenant_id: tenant,
            user_id: self.user,
            role: removed.role,
            removed_by: actor.user_id,
        });
        Ok(removed)
    }
}

/// Hands ownership to another member; the caller becomes an admin.
#[derive(Clone, Copy, Debug)]
pub struct TransferOwnership {
    /// The new owner.
    pub new_owner: UserId,
}

impl Sealed for TransferOwnership {}
impl UseCase for TransferOwnership {
    type Output = (Membership, Membership);
    const OPERATION: Operation = Operation::AccountTransferOwnership;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<(Membership, Membership), SpineError> {
        let (tenant, actor, new_owner) = (cx.tenant()?, cx.member()?, self.new_owner);
        let pair = memberships::transfer_ownership(cx.db, tenant, actor, new_owner, cx.now).await?;
        cx.forget_member(tenant, actor.user_id);
        cx.forget_member(tenant, new_owner);
        let after = json!({"new_owner": new_owner});
        cx.audit(Change::of("membership", new_owner).after(after))
            .await?;
        cx.publish(DomainEvent::OwnershipTransferred {
            tenant_id: tenant,
            from: actor.user_id,
            to: new_owner,
        });
        Ok(pair)
    }
}

impl Spine {
    /// The principal of `user_id` acting in `tenant_id`, with the role their membership has
    /// now: how a host that signed a person in (its own session, its own identity provider)
    /// obtains a principal for them. The role is never the host's to assert; every use case
    /// re-reads it anyway. A user without a membership there gets
    /// [`SpineError::TenantNotFound`], as for a tenant that does not exist.
    pub async fn user_principal(
        &self,
        tenant_id: account_engines::types::TenantId,
        user_id: UserId,
        request: crate::principal::RequestMeta,
    ) -> Result<Principal, SpineError> {
        let claimed = Principal {
            tenant_id,
            actor: crate::principal::Actor::User {
                user_id,
                role: MembershipRole::Viewer,
            },
            request,
        };
        self.member_principal(&claimed, user_id).await
    }

    /// Executes [`ListUsers`].
    pub async fn list_users(
        &self,
        principal: &Principal,
        filter: UserFilter,
        page: OffsetPage,
    ) -> Result<Page<User>, SpineError> {
        self.execute(principal, ListUsers { filter, page }).await
    }

    /// Executes [`ListUsersAfter`].
    pub async fn list_users_after(
        &self,
        principal: &Principal,
        filter: UserFilter,
        after: Option<UserPosition>,
        limit: u64,
    ) -> Result<KeysetPage<User, UserPosition>, SpineError> {
        let list = ListUsersAfter {
            filter,
            after,
            limit,
        };
        self.execute(principal, list).await
    }

    /// Executes [`ListTenantUsers`].
    pub async fn list_tenant_users(
        &self,
        principal: &Principal,
        page: OffsetPage,
    ) -> Result<TenantUsersListResult, SpineError> {
        self.execute(principal, ListTenantUsers { page }).await
    }

    /// Executes [`GetUser`].
    pub async fn get_user(
        &self,
        principal: &Principal,
        user: UserId,
    ) -> Result<UserDetailResult, SpineError> {
        self.execute(principal, GetUser { user }).await
    }

    /// Executes [`ChangeRole`].
    pub async fn change_role(
        &self,
        principal: &Principal,
        user: UserId,
        role: MembershipRole,
    ) -> Result<RoleChange, SpineError> {
        self.execute(principal, ChangeRole { user, role }).await
    }

    /// Executes [`RemoveUser`].
    pub async fn remove_user(
        &self,
        principal: &Principal,
        user: UserId,
    ) -> Result<Membership, SpineError> {
        self.execute(principal, RemoveUser { user }).await
    }

    /// Executes [`TransferOwnership`].
    pub async fn transfer_ownership(
        &self,
        principal: &Principal,
        new_owner: UserId,
    ) -> Result<(Membership, Membership), SpineError> {
        self.execute(principal, TransferOwnership { new_owner })
            .await
    }
}
