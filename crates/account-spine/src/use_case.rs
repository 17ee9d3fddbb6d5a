//! Use cases as values: each one is a type that declares its [`Operation`] and implements one
//! async [`UseCase::run`] against a [`Context`] (the transaction's handle, the clock's `now`,
//! the caller). The executor ([`crate::execute`]) does everything around it once: span and
//! counters, authority, the tenant's capability, the transaction and its retries, the audit
//! row of a refusal, and what must happen only after commit (events, cache invalidation).
//!
//! Every audit row is built here ([`audit_entry`]), from the caller and the [`Change`] a use
//! case reports.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::{Actor, OperatorPrincipal, Principal, RequestMeta};
use account_engines::api_keys::ApiKeyPepper;
use account_engines::audit::{self, AuditEntry};
use account_engines::memberships::Acting;
use account_engines::types::{ActorType, ApiKeyId, OperatorKeyId, TenantId, UserId};
use account_engines::{Db, ErrorCode, tenants};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use std::future::Future;

mod sealed {
    /// Only this crate defines use cases; hosts execute them.
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// One operation of the spine as a value: the request's data, with what it does in
/// [`UseCase::run`]. Hosts build these and hand them to [`Spine::execute`] (tenant use cases)
/// or [`Spine::execute_as_operator`] (platform ones); the `Spine` methods of the same names
/// are shorthands for that. Sealed: the set of use cases is this crate's.
pub trait UseCase: Sealed + Send + Sync {
    /// What a successful call returns.
    type Output: Send;
    /// The operation: its name, audit action, authority and required capability.
    const OPERATION: Operation;
    /// Whether the caller must act as a member (a person): a principal's user, or a personal
    /// key's user with their current role; machine keys are refused.
    const ACTS_AS_MEMBER: bool = false;
    /// Whether the body checks the tenant's capability itself, in the statement that acts
    /// (run admission: one round trip), so the executor does not read the status first.
    const CHECKS_OWN_CAPABILITY: bool = false;

    /// The use case's work, in the transaction the executor opened (or on the pool for a
    /// read). Errors roll everything back; it may run more than once under contention, so it
    /// must not act outside the database except through `cx` (which holds effects for commit).
    fn run(
        &self,
        cx: &mut Context<'_>,
    ) -> impl Future<Output = Result<Self::Output, SpineError>> + Send;

    /// Events to publish when the use case fails with `error` (after rollback).
    fn refusal_events(&self, _tenant: Option<TenantId>, _error: &SpineError) -> Vec<DomainEvent> {
        Vec::new()
    }
}

/// A platform use case's extra declaration: the tenant it concerns, if any (for its span and
/// its refusal's audit row).
pub trait OperatorUseCase: UseCase {
    /// The tenant this call concerns.
    fn tenant(&self) -> Option<TenantId>;
}

/// Who calls a use case, for which tenant: what its span, its counters and its audit rows say
/// about the caller.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Caller<'a> {
    /// A tenant principal.
    Principal(&'a Principal),
    /// A platform operator, acting on this tenant (when the operation concerns one).
    Operator(&'a OperatorPrincipal, Option<TenantId>),
    /// Whoever holds a one-time token of this tenant (invitation acceptance).
    TokenHolder {
        /// The tenant the token is for.
        tenant: TenantId,
        /// The request.
        request: &'a RequestMeta,
    },
    /// Someone presenting a key, before it is verified (no tenant yet, never audited).
    KeyPresenter(&'a RequestMeta),
    /// The spine itself, in a platform job (the lease reaper), acting on this tenant.
    System(TenantId),
    /// A signed-in person acting for themselves ([`crate::Authority::Person`]), about this
    /// tenant when there is one yet (a project they create has none until it exists).
    Person {
        /// Their user.
        user: UserId,
        /// The tenant the call is about.
        tenant: Option<TenantId>,
        /// The request.
        request: &'a RequestMeta,
    },
}

/// The request metadata of the spine's own jobs: there is no request.
static NO_REQUEST: RequestMeta = RequestMeta {
    request_id: None,
    ip_address: None,
    user_agent: None,
    read_after: None,
};

impl Caller<'_> {
    pub(crate) fn tenant(self) -> Option<TenantId> {
        match self {
            Caller::Principal(principal) => Some(principal.tenant_id),
            Caller::Operator(_, tenant) => tenant,
            Caller::TokenHolder { tenant, .. } => Some(tenant),
            Caller::KeyPresenter(_) => None,
            Caller::System(tenant) => Some(tenant),
            Caller::Person { tenant, .. } => tenant,
        }
    }

    pub(crate) fn request(&self) -> &RequestMeta {
        match self {
            Caller::Principal(principal) => &principal.request,
            Caller::Operator(operator, _) => &operator.request,
            Caller::TokenHolder { request, .. }
            | Caller::KeyPresenter(request)
            | Caller::Person { request, .. } => request,
            Caller::System(_) => &NO_REQUEST,
        }
    }

    pub(crate) fn actor_kind(self) -> &'static str {
        match self {
            Caller::Principal(Principal {
                actor: Actor::User { .. },
                ..
            }) => "user",
            Caller::Principal(Principal {
                actor: Actor::ApiKey { .. },
                ..
            }) => "api_key",
            Caller::Operator(..) => "operator",
            Caller::TokenHolder { .. } => "token_holder",
            Caller::KeyPresenter(_) => "key_presenter",
            Caller::System(_) => "system",
            Caller::Person { .. } => "person",
        }
    }
}

/// What a use case changed, for its audit row: the resource, and its state before and after.
#[derive(Clone, Debug, Default)]
pub(crate) struct Change {
    pub(crate) resource_type: &'static str,
    pub(crate) resource_id: String,
    pub(crate) reason: Option<String>,
    pub(crate) before: Option<Json>,
    pub(crate) after: Option<Json>,
    /// The tenant the row belongs to when the caller's own does not say (an operator
    /// creating a tenant).
    pub(crate) tenant: Option<TenantId>,
    /// A platform-wide row of a system job, in no tenant (the record that a tenant was
    /// purged outlives the tenant's own rows).
    pub(crate) platform_wide: bool,
}

impl Change {
    /// A change of `resource_type` `resource_id`.
    pub(crate) fn of(resource_type: &'static str, resource_id: impl ToString) -> Self {
        Self {
            resource_type,
            resource_id: resource_id.to_string(),
            ..Self::default()
        }
    }

    pub(crate) fn before(mut self, before: Json) -> Self {
        self.before = Some(before);
        self
    }

    pub(crate) fn after(mut self, after: Json) -> Self {
        self.after = Some(after);
        self
    }

    pub(crate) fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub(crate) fn in_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// A row in no tenant ([`Change::platform_wide`]; system jobs only).
    pub(crate) fn platform_wide(mut self) -> Self {
        self.platform_wide = true;
        self
    }
}

/// What may happen only after commit.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Events were written to the outbox: wake the dispatcher.
    Dispatch,
    ForgetKey(TenantId, ApiKeyId),
    ForgetTenant(TenantId),
    ForgetMember(TenantId, UserId),
}

impl Caller<'_> {
    /// The reader behind this caller, whose later reads must see its writes (read
    /// replicas); `None` for callers that never read afterwards as themselves (token holders,
    /// key presenters, the spine's own jobs).
    pub(crate) fn reader(self) -> Option<crate::replicas::Reader> {
        use crate::replicas::Reader;
        match self {
            Caller::Principal(principal) => Reader::of_principal(principal),
            Caller::Operator(operator, _) => Some(Reader::Operator(operator.operator_id.clone())),
            Caller::TokenHolder { .. }
            | Caller::KeyPresenter(_)
            | Caller::System(_)
            | Caller::Person { .. } => None,
        }
    }
}

impl Effect {
    /// The cached entry this effect makes stale, if any (other instances hear of it).
    pub(crate) fn stale(&self) -> Option<crate::cache_sync::Stale> {
        use crate::cache_sync::Stale;
        match *self {
            Self::ForgetKey(tenant, key) => Some(Stale::Key(tenant, key)),
            Self::ForgetTenant(tenant) => Some(Stale::Tenant(tenant)),
            Self::ForgetMember(tenant, user) => Some(Stale::Member(tenant, user)),
            Self::Dispatch => None,
        }
    }
}

/// What [`UseCase::run`] has at hand: the database handle of this attempt, the clock's `now`
/// (one instant for the whole call, retries included), the caller, and the effects to apply
/// after commit.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) spine: &'a Spine,
    pub(crate) db: Db<'a>,
    pub(crate) now: DateTime<Utc>,
    pub(crate) operation: Operation,
    pub(crate) caller: Caller<'a>,
    /// The member acting, for use cases that act as one ([`UseCase::ACTS_AS_MEMBER`]).
    pub(crate) member: Option<Acting>,
    pub(crate) effects: Vec<Effect>,
    /// Events the attempt published, written to the outbox at its end.
    pub(crate) events: Vec<DomainEvent>,
}

impl<'a> Context<'a> {
    /// The tenant principal calling (every tenant use case has one).
    pub(crate) fn principal(&self) -> Result<&'a Principal, SpineError> {
        match self.caller {
            Caller::Principal(principal) => Ok(principal),
            _ => Err(SpineError::forbidden(self.operation, "a tenant principal")),
        }
    }

    /// The principal's tenant.
    pub(crate) fn tenant(&self) -> Result<TenantId, SpineError> {
        Ok(self.principal()?.tenant_id)
    }

    /// The member acting ([`UseCase::ACTS_AS_MEMBER`] use cases).
    pub(crate) fn member(&self) -> Result<Acting, SpineError> {
        self.member.ok_or(SpineError::MachineKey {
            operation: self.operation.name(),
        })
    }

    /// The signed-in person calling ([`crate::Authority::Person`] use cases).
    pub(crate) fn person(&self) -> Result<UserId, SpineError> {
        match self.caller {
            Caller::Person { user, .. } => Ok(user),
            _ => Err(SpineError::forbidden(self.operation, "a signed-in person")),
        }
    }

    /// The platform operator calling.
    pub(crate) fn operator(&self) -> Result<&'a OperatorPrincipal, SpineError> {
        match self.caller {
            Caller::Operator(operator, _) => Ok(operator),
            _ => Err(SpineError::forbidden(self.operation, "a platform operator")),
        }
    }

    pub(crate) fn pepper(&self) -> Result<&'a ApiKeyPepper, SpineError> {
        self.spine.pepper()
    }

    /// Writes the audit row of this call's change, in its transaction.
    pub(crate) async fn audit(&self, change: Change) -> Result<(), SpineError> {
        audit::record(self.db, self.audit_row(change), self.now).await?;
        Ok(())
    }

    /// The audit row of this call's change, for an engine that writes it with the change
    /// itself (in the same statement).
    pub(crate) fn audit_row(&self, change: Change) -> AuditEntry {
        audit_entry(self.caller, self.operation, change, None)
    }

    /// Writes the audit row of a change made by `user`, who acts through a one-time token
    /// (the invitation's accepting user).
    pub(crate) async fn audit_by(&self, user: Acting, change: Change) -> Result<(), SpineError> {
        let entry = audit_entry(self.caller, self.operation, change, Some(user));
        audit::record(self.db, entry, self.now).await?;
        Ok(())
    }

    /// Checks that `tenant`'s status allows this operation.
    pub(crate) async fn require_capability(&self, tenant: TenantId) -> Result<(), SpineError> {
        require_capability(self.db, tenant, self.operation).await
    }

    /// Publishes `event`: written to the outbox in this transaction, so it is dispatched
    /// once the transaction committed and never for a rolled-back attempt.
    pub(crate) fn publish(&mut self, event: DomainEvent) {
        self.events.push(event);
    }

    /// Wakes the dispatcher after commit (work for it that is not an event: a replay).
    pub(crate) fn wake_dispatcher(&mut self) {
        self.effects.push(Effect::Dispatch);
    }

    /// Drops `key` from the verify cache once committed.
    pub(crate) fn forget_key(&mut self, tenant: TenantId, key: ApiKeyId) {
        self.effects.push(Effect::ForgetKey(tenant, key));
    }

    /// Drops every cached key and member role of `tenant` once committed.
    pub(crate) fn forget_tenant(&mut self, tenant: TenantId) {
        self.effects.push(Effect::ForgetTenant(tenant));
    }

    /// Drops `user`'s cached role in `tenant` once committed.
    pub(crate) fn forget_member(&mut self, tenant: TenantId, user: UserId) {
        self.effects.push(Effect::ForgetMember(tenant, user));
    }
}

pub(crate) async fn require_capability(
    db: Db<'_>,
    tenant: TenantId,
    operation: Operation,
) -> Result<(), SpineError> {
    let status = tenants::status(db, tenant)
        .await?
        .ok_or(SpineError::TenantNotFound)?;
    crate::authorize::check_capability(status, operation)
}

/// The action of every refusal's audit row.
pub(crate) const REFUSAL_ACTION: &str = "authorization.refused";

/// The one place audit rows of the spine's changes are built. Tenant principals are named by
/// user or key; platform operators are named inside the recorded change (the rows have no
/// operator column), and platform-wide rows (no tenant: operator keys) record
/// `actor_type = operator` with the operator key acted with.
pub(crate) fn audit_entry(
    caller: Caller<'_>,
    operation: Operation,
    change: Change,
    acting_user: Option<Acting>,
) -> AuditEntry {
    let action = operation
        .audit_action()
        .unwrap_or(operation.name())
        .to_owned();
    let request = caller.request().bounded();
    let (tenant_id, actor_type, user_id, api_key_id, reason, after) = match caller {
        Caller::Principal(principal) => {
            let (actor_type, user, key) = match &principal.actor {
                Actor::User { user_id, .. } => (ActorType::User, Some(*user_id), None),
                Actor::ApiKey { key_id, .. } => (ActorType::ApiKey, None, Some(*key_id)),
            };
            let tenant = Some(principal.tenant_id);
            (tenant, actor_type, user, key, change.reason, change.after)
        }
        Caller::Operator(operator, tenant) => match change.tenant.or(tenant) {
            Some(tenant) => {
                let mut after = change.after.unwrap_or_else(|| json!({}));
                if let Some(fields) = after.as_object_mut() {
                    fields.insert("operator".to_owned(), json!(operator.operator_id));
                }
                let (founder, reason) = (ActorType::Founder, change.reason);
                (Some(tenant), founder, None, None, reason, Some(after))
            }
            None => {
                let key = acting_operator_key(operator).map(|id| ApiKeyId::from_uuid(id.as_uuid()));
                let reason = Some(format!("by {}", operator.operator_id));
                (None, ActorType::Operator, None, key, reason, change.after)
            }
        },
        Caller::TokenHolder { tenant, .. } => {
            let user = acting_user.map(|acting| acting.user_id);
            (
                Some(tenant),
                ActorType::User,
                user,
                None,
                change.reason,
                change.after,
            )
        }
        Caller::KeyPresenter(_) => (None, ActorType::User, None, None, None, change.after),
        Caller::Person { user, tenant, .. } => (
            change.tenant.or(tenant),
            ActorType::User,
            Some(user),
            None,
            change.reason,
            change.after,
        ),
        Caller::System(tenant) => {
            let tenant = change.tenant.unwrap_or(tenant);
            let tenant = (!change.platform_wide).then_some(tenant);
            let system = ActorType::System;
            (tenant, system, None, None, change.reason, change.after)
        }
    };
    AuditEntry {
        tenant_id,
        actor_type,
        user_id,
        api_key_id,
        action,
        resource_type: change.resource_type.to_owned(),
        resource_id: Some(change.resource_id),
        reason,
        old_value: change.before,
        new_value: after,
        ip_address: request.ip_address,
        user_agent: request.user_agent,
        request_id: request.request_id,
    }
}

/// The audit row of a refusal: the operation as resource, the error code as reason. `None`
/// for callers who are not known yet (an unverified key).
pub(crate) fn refusal_entry(
    caller: Caller<'_>,
    operation: Operation,
    refusal: &SpineError,
) -> Option<AuditEntry> {
    let mut detail = json!({
        "operation": operation.name(),
        "code": refusal.code(),
        "message": refusal.to_string(),
    });
    let change = Change::of("operation", operation.name());
    let mut entry = match caller {
        Caller::Principal(_) => audit_entry(caller, operation, change, None),
        Caller::Operator(operator, tenant) => {
            detail["operator"] = Json::String(operator.operator_id.clone());
            let mut entry = audit_entry(caller, operation, change, None);
            // A refusal names the operator in its detail, with the founder as actor, tenant
            // or not: nothing was done with any key.
            (entry.tenant_id, entry.actor_type) = (tenant, ActorType::Founder);
            (entry.api_key_id, entry.reason) = (None, None);
            entry
        }
        Caller::TokenHolder { .. } | Caller::Person { .. } => {
            audit_entry(caller, operation, change, None)
        }
        // The platform's own jobs are never refused (no authority is checked for them).
        Caller::KeyPresenter(_) | Caller::System(_) => return None,
    };
    entry.action = REFUSAL_ACTION.to_owned();
    entry.reason = Some(refusal.code().to_owned());
    entry.new_value = Some(detail);
    Some(entry)
}

/// The `operator_id` of a key's operator: `operator_key:<id>`.
pub(crate) const KEY_OPERATOR_PREFIX: &str = "operator_key:";

/// The operator key an operator acts with, when it was verified from one (platform tooling
/// such as the CLI acts under a name of its own and has none).
fn acting_operator_key(operator: &OperatorPrincipal) -> Option<OperatorKeyId> {
    operator
        .operator_id
        .strip_prefix(KEY_OPERATOR_PREFIX)
        .and_then(|id| id.parse().ok())
}
