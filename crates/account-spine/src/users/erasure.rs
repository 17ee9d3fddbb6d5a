//! Erasure: a signed-in person erases their own account ([`EraseMe`]), or a platform operator
//! erases a user ([`EraseUser`]). One transaction does it all (the work is bounded by the
//! person's rows), so the request, the erasure and its record commit together or not at all:
//!
//! 1. the last owner of any tenant is refused (409 `last_owner`, naming every such tenant:
//!    ownership goes to someone first, or the project is deleted);
//! 2. `user.erasure_requested` is audited (platform-wide, no tenant);
//! 3. the person leaves every tenant as a member leaving would (personal keys revoked, the
//!    same last-key-manager rule), each tenant's log getting the operation's row
//!    (`user.erased`, or `user.erased_by_operator`) and its
//!    event stream a [`DomainEvent::UserErased`] (so hosts and webhooks erase their copies);
//! 4. the engine pseudonymises everything else
//!    ([`account_engines::users::erasure::complete`]);
//! 5. the operation's action is audited platform-wide with what was changed.
//!
//! The audit rows keep their `user_id` (an opaque id, not personal data), and every email or
//! name in them becomes the stable pseudonym, so a person's history is still found by either.
//! A person's own rows lose their client address and user agent, the erasure's rows included.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::identities::SignedIn;
use crate::operations::Operation;
use crate::principal::{OperatorPrincipal, RequestMeta};
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::audit;
use account_engines::identities::IdentityError;
use account_engines::memberships::{self, Acting};
use account_engines::types::{MembershipRole, TenantId, UserId};
use account_engines::users::erasure::{self, RequestedBy};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};

pub use account_engines::users::erasure::{ErasureCounts, ErasureSnapshot, pseudonym_email};

/// The action of the row that records the request, before anything is erased.
pub const REQUESTED_ACTION: &str = "user.erasure_requested";

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Erased {
    /// The user (the id stays; it now stands for the pseudonym).
    pub user_id: UserId,
    /// The pseudonym their rows carry from now on.
    pub pseudonym: String,
    /// The tenants they left, with the role they had.
    pub left: Vec<(TenantId, MembershipRole)>,
    /// What was deleted, revoked and rewritten.
    pub counts: ErasureCounts,
    /// When.
    pub erased_at: DateTime<Utc>,
}

/// Erases the signed-in person's own account (authority: the person).
#[derive(Clone, Copy, Debug, Default)]
pub struct EraseMe;

impl Sealed for EraseMe {}
impl UseCase for EraseMe {
    type Output = Erased;
    const OPERATION: Operation = Operation::UsersEraseMe;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Erased, SpineError> {
        let user = cx.person()?;
        erase(cx, user, RequestedBy::User).await
    }
}

/// Erases a user (platform operators; e.g. a request received by mail).
#[derive(Clone, Copy, Debug)]
pub struct EraseUser {
    /// The user.
    pub user_id: UserId,
}

impl Sealed for EraseUser {}
impl UseCase for EraseUser {
    type Output = Erased;
    const OPERATION: Operation = Operation::UsersErase;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Erased, SpineError> {
        cx.operator()?;
        erase(cx, self.user_id, RequestedBy::Operator).await
    }
}

impl OperatorUseCase for EraseUser {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

async fn erase(
    cx: &mut Context<'_>,
    user: UserId,
    requested_by: RequestedBy,
) -> Result<Erased, SpineError> {
    let started = erasure::begin(cx.db, cx.pepper()?, user, requested_by, cx.now).await?;
    let pseudonym = started.pseudonym.clone();
    let tenants: Vec<TenantId> = started.memberships.iter().map(|(t, _)| *t).collect();
    let mut requested = cx.audit_row(Change::of("user", user).after(json!({
        "pseudonym": pseudonym,
        "requested_by": requested_by.as_str(),
        "tenants": tenants,
    })));
    (requested.action, requested.tenant_id) = (REQUESTED_ACTION.to_owned(), None);
    audit::record(cx.db, requested, cx.now).await?;
    for &(tenant, role) in &started.memberships {
        let acting = Acting {
            user_id: user,
            role,
        };
        let removed = memberships::remove_member(cx.db, tenant, acting, user, cx.now).await?;
        for &key in &removed.revoked_keys {
            cx.forget_key(tenant, key);
        }
        cx.forget_member(tenant, user);
        let after = json!({
            "pseudonym": pseudonym,
            "role": role,
            "revoked_keys": removed.revoked_keys,
        });
        cx.audit(Change::of("user", user).in_tenant(tenant).after(after))
            .await?;
        cx.publish(DomainEvent::UserErased {
            tenant_id: tenant,
            user_id: user,
            pseudonym: pseudonym.clone(),
        });
    }
    let counts = erasure::complete(cx.db, &started, &tenants, cx.now).await?;
    let rewritten: Map<String, Json> = counts
        .rewritten
        .iter()
        .map(|(table, rows)| ((*table).to_owned(), json!(rows)))
        .collect();
    let mut done = cx.audit_row(Change::of("user", user).after(json!({
        "pseudonym": pseudonym,
        "requested_by": requested_by.as_str(),
        "tenants": tenants,
        "identity_links_deleted": counts.identity_links,
        "invitations_revoked": counts.invitations_revoked,
        "rows_rewritten": rewritten,
    })));
    done.tenant_id = None;
    if requested_by == RequestedBy::User {
        // The person's own request: their address goes like every other of theirs.
        (done.ip_address, done.user_agent) = (None, None);
    }
    audit::record(cx.db, done, cx.now).await?;
    Ok(Erased {
        user_id: user,
        pseudonym,
        left: started.memberships.clone(),
        counts,
        erased_at: cx.now,
    })
}

impl Spine {
    /// Executes [`EraseMe`] for the signed-in person (`identity_not_linked` when their
    /// identity leads to no user: never linked, or erased already).
    pub async fn erase_me(
        &self,
        signed_in: &SignedIn,
        request: RequestMeta,
    ) -> Result<Erased, SpineError> {
        let user = self
            .linked_user(signed_in)
            .await?
            .ok_or(IdentityError::NotLinked)?;
        self.execute_as_person(user, None, &request, EraseMe).await
    }

    /// Executes [`EraseUser`] for a platform operator.
    pub async fn erase_user(
        &self,
        operator: &OperatorPrincipal,
        user_id: UserId,
    ) -> Result<Erased, SpineError> {
        self.execute_as_operator(operator, EraseUser { user_id })
            .await
    }
}
