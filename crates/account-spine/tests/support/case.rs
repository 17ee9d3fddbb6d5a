//! One write use case as a table entry ([`Case`]): how to arrange it ([`Arrange`]), the
//! use-case value to run (built from what was arranged, [`Given`]), who runs it (the
//! constructor: [`Case::tenant`], [`Case::operator`], [`Case::operator_key`],
//! [`Case::token`], [`Case::reaper`], [`Case::purge`]) and the rows it must leave
//! ([`Leaves`]). The operation, the name and the audit row follow from the value's type and
//! its caller, so an entry states each fact once.
//!
//! Over 600 lines: one constructor per kind of caller and one arrangement per kind of state,
//! all over the same private `Case::new`; split by caller, each file would need it opened.
//!
//! [`Case::act`] can be called again on the same arrangement after a failed call, which is
//! what the fault-injection test does.

use super::sql::{audit_actions, count, null};
use super::{Env, World, operator, owner, world};
use account_spine::api_keys::IssueKey;
use account_spine::audit::purge::{AuditPurged, PurgeAuditLog};
use account_spine::billing::Subscription;
use account_spine::billing::trials::TrialStart;
use account_spine::identities::SignedIn;
use account_spine::invitations::{AcceptInvitation, Membership};
use account_spine::limits::{ExpireLimitOverrides, LimitName, SetOverride};
use account_spine::memory_pins::SavePin;
use account_spine::projects::{
    CreateProject, ProjectDeletion, PurgeProject, RESTORE_WINDOW_DAYS, RestoreProject,
};
use account_spine::runs::leases::ExpireRunLease;
use account_spine::runs::{AdmitRun, RunSnapshot};
use account_spine::tenants::CreatedTenant;
use account_spine::types::*;
use account_spine::users::erasure::{EraseMe, Erased};
use account_spine::webhooks::{CreateEndpoint, DisableWebhookEndpoint};
use account_spine::{
    Actor, Clock, Operation, OperatorPrincipal, OperatorUseCase, Principal, RequestMeta, Spine,
    SpineError, UseCase,
};
use account_testkit::Backend;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, Value};
use serde_json::json;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// The identity provider's issuer and subject of [`Arrange::SignedInMember`].
pub(crate) const SIGNED_IN_MEMBER: (&str, &str) = ("https://idp.example", "member");

/// The identity provider's issuer and subject of [`Arrange::SignedInOwner`].
pub(crate) const SIGNED_IN_OWNER: (&str, &str) = ("https://idp.example", "owner");

/// Operations without an audit action whose use case still writes (the pin trail), on the
/// pool rather than in a write transaction.
pub(crate) const WRITING_READS: &[Operation] = &[Operation::PinsGet];

/// Writes that commit in steps, each step its own short transaction (a purge that must not
/// hold long locks): a failure keeps the steps before it, and running the write again
/// resumes where it stopped.
pub(crate) const COMMITS_IN_STEPS: &[Operation] = &[Operation::TenantPurge];

/// What a case needs in the [`World`] before it runs; arrangements are shared by cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrange {
    /// The world as seeded.
    Nothing,
    /// A running run ([`Arranged::run`]).
    Run,
    /// A run whose lease lapsed: admitted, then the clock moved past its lease
    /// ([`Arranged::run`]).
    LapsedRun,
    /// An active key ([`Arranged::key`]).
    ApiKey,
    /// A pending invitation and its token, an hour old ([`Arranged::invitation`]).
    Invitation,
    /// A pin `agent:cfg`.
    Pin,
    /// A pin `agent:cfg` that expired.
    ExpiredPin,
    /// An operator key to act with and another to act on.
    OperatorKeys,
    /// Audit rows past the tenant's retention: a run admitted (audited `run.admitted`), a
    /// retention of 30 days set on the tenant, then the clock moved 31 days on.
    ExpiredAuditRows,
    /// An enabled webhook endpoint for every event type ([`Arranged::webhook_endpoint`]).
    WebhookEndpoint,
    /// An override of the tenant's API key limit (40), set by an operator.
    LimitOverride,
    /// An override of the tenant's API key limit that expired: set until a minute on, then
    /// the clock moved two minutes on.
    ExpiredLimitOverride,
    /// The world's owner signed in: linked to the identity [`SIGNED_IN_OWNER`] (plain SQL).
    SignedInOwner,
    /// The world's owner signed in ([`Arrange::SignedInOwner`]) and the world's tenant
    /// deleted by them (restorable).
    DeletedProject,
    /// The world's tenant deleted by its owner, then the clock moved past the restore
    /// window (due for the purge).
    PurgeableProject,
    /// The world's member signed in: linked to the identity [`SIGNED_IN_MEMBER`] (plain SQL,
    /// as an acceptance signed in would have linked it).
    SignedInMember,
    /// A trial of pro that does not convert, started by an operator to end in a day, then the
    /// clock moved past its end ([`Arranged::subscription`]).
    EndedTrial,
    /// [`Arrange::EndedTrial`], ended into its grace of 7 days, then the clock moved past
    /// the grace's end.
    EndedGrace,
}

/// The world and what [`Arrange`] added to it.
#[derive(Clone, Debug)]
pub(crate) struct Arranged {
    /// The tenant, its owner and member.
    pub(crate) world: World,
    /// A running run.
    pub(crate) run: Option<RunId>,
    /// An active key.
    pub(crate) key: Option<ApiKeyId>,
    /// A pending invitation and its token.
    pub(crate) invitation: Option<(InvitationId, String)>,
    /// An operator key the case's operator acts with: its id and plaintext.
    pub(crate) operator_key: Option<(OperatorKeyId, String)>,
    /// Another operator key, to act on.
    pub(crate) target_operator_key: Option<OperatorKeyId>,
    /// A webhook endpoint.
    pub(crate) webhook_endpoint: Option<WebhookEndpointId>,
    /// A subscription (a trial).
    pub(crate) subscription: Option<SubscriptionId>,
}

/// What a case's value and expectations are built from.
#[derive(Clone, Debug)]
pub(crate) struct Given {
    /// The arrangement.
    pub(crate) arranged: Arranged,
    /// The world (also in `arranged`).
    pub(crate) world: World,
    /// The clock's time when the case runs.
    pub(crate) now: DateTime<Utc>,
    /// The world's tenant id as a column value.
    pub(crate) tenant: Value,
}

impl Given {
    /// The arranged run.
    pub(crate) fn run(&self) -> RunId {
        self.arranged.run.unwrap()
    }

    /// The arranged key.
    pub(crate) fn key(&self) -> ApiKeyId {
        self.arranged.key.unwrap()
    }

    /// The arranged invitation and its token.
    pub(crate) fn invitation(&self) -> (InvitationId, String) {
        self.arranged.invitation.clone().unwrap()
    }

    /// The arranged webhook endpoint.
    pub(crate) fn webhook_endpoint(&self) -> WebhookEndpointId {
        self.arranged.webhook_endpoint.unwrap()
    }

    /// The arranged subscription.
    pub(crate) fn subscription(&self) -> SubscriptionId {
        self.arranged.subscription.unwrap()
    }
}

/// `rows` rows of `table` match every condition.
#[derive(Clone, Debug)]
pub(crate) struct Effect {
    /// Table.
    pub(crate) table: &'static str,
    /// `column = value` conditions.
    pub(crate) conds: Vec<(&'static str, Value)>,
    /// How many rows must match.
    pub(crate) rows: i64,
}

/// `n` rows of `table` match every condition.
pub(crate) fn rows(table: &'static str, n: i64, conds: Vec<(&'static str, Value)>) -> Effect {
    Effect {
        table,
        conds,
        rows: n,
    }
}

/// An id as a column value.
pub(crate) fn uuid(id: uuid::Uuid) -> Value {
    id.into()
}

/// What a successful call leaves besides its audit row, and where the audit row goes when it
/// is not the caller's tenant.
#[derive(Clone, Debug)]
pub(crate) struct Leaves {
    /// Rows that must be visible.
    pub(crate) rows: Vec<Effect>,
    /// The audit row's tenant, when not the caller's (a tenant the call created).
    pub(crate) audit_tenant: Option<TenantId>,
}

/// The call leaves these rows.
pub(crate) fn leaves(rows: Vec<Effect>) -> Leaves {
    Leaves {
        rows,
        audit_tenant: None,
    }
}

impl Leaves {
    /// The audit row is in `tenant`.
    pub(crate) fn audited_in(mut self, tenant: TenantId) -> Self {
        self.audit_tenant = Some(tenant);
        self
    }
}

/// Who the audit row must name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ActorExpect {
    /// `actor_type = 'user'` and this `user_id`.
    User(UserId),
    /// `actor_type = 'founder'`, no user, no key (the operator's id has no column).
    Operator,
    /// `actor_type = 'operator'`, no user, and this operator key in `api_key_id`.
    OperatorKey(OperatorKeyId),
    /// `actor_type = 'system'`, no user, no key, and no request id (the spine's own jobs).
    System,
}

/// The audit row a successful call must have written.
#[derive(Clone, Debug)]
pub(crate) struct AuditExpect {
    /// `audit_log.action`.
    pub(crate) action: &'static str,
    /// `audit_log.tenant_id` (`None`: a platform-wide row).
    pub(crate) tenant: Option<TenantId>,
    /// Who.
    pub(crate) actor: ActorExpect,
}

impl AuditExpect {
    /// The conditions that find the row; `request_id` as given (`None`: `IS NULL`).
    pub(crate) fn conds(&self, request_id: Option<String>) -> Vec<(&'static str, Value)> {
        let request_id = request_id.filter(|_| self.actor != ActorExpect::System);
        let mut conds: Vec<(&'static str, Value)> = vec![
            ("action", self.action.into()),
            (
                "tenant_id",
                self.tenant.map_or_else(null, |t| t.as_uuid().into()),
            ),
            ("request_id", request_id.map_or_else(null, Value::from)),
        ];
        let (actor_type, user, key) = match self.actor {
            ActorExpect::User(user) => ("user", user.as_uuid().into(), null()),
            // In a tenant the operator acts as its founder; a platform-wide row names the
            // operator itself (tooling acts with no key).
            ActorExpect::Operator if self.tenant.is_some() => ("founder", null(), null()),
            ActorExpect::Operator => ("operator", null(), null()),
            ActorExpect::OperatorKey(key) => ("operator", null(), key.as_uuid().into()),
            ActorExpect::System => ("system", null(), null()),
        };
        conds.push(("actor_type", actor_type.into()));
        conds.push(("user_id", user));
        conds.push(("api_key_id", key));
        conds
    }
}

/// What a successful call must have left behind.
#[derive(Clone, Debug)]
pub(crate) struct Done {
    /// Rows that must be visible.
    pub(crate) effects: Vec<Effect>,
    /// The audit row (none for [`WRITING_READS`]).
    pub(crate) audit: Option<AuditExpect>,
}

type Call = Pin<Box<dyn Future<Output = Result<Done, SpineError>>>>;

/// One write use case of the spine: one entry of [`super::cases::all`].
pub(crate) struct Case {
    /// The use case's type name (`AdmitRun`).
    pub(crate) name: &'static str,
    /// Its operation, `UseCase::OPERATION`.
    pub(crate) operation: Operation,
    /// What it needs before it runs.
    pub(crate) arrange: Arrange,
    call: Box<dyn Fn(Spine, Given, String) -> Call>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

fn type_name<U>() -> &'static str {
    let path = std::any::type_name::<U>();
    path.rsplit("::").next().unwrap_or(path)
}

/// Its audit row, when the operation has an audit action.
fn audit<U: UseCase>(tenant: Option<TenantId>, actor: ActorExpect) -> Option<AuditExpect> {
    U::OPERATION.audit_action().map(|action| AuditExpect {
        action,
        tenant,
        actor,
    })
}

impl Case {
    fn new<U: UseCase>(arrange: Arrange, call: Box<dyn Fn(Spine, Given, String) -> Call>) -> Self {
        Self {
            name: type_name::<U>(),
            operation: U::OPERATION,
            arrange,
            call,
        }
    }

    /// A tenant use case, executed for the world's owner and audited as them.
    pub(crate) fn tenant<U>(
        arrange: Arrange,
        value: fn(&Given) -> U,
        expect: fn(&Given, &U::Output) -> Leaves,
    ) -> Self
    where
        U: UseCase + 'static,
        U::Output: 'static,
    {
        Self::new::<U>(
            arrange,
            Box::new(move |spine, given, request_id| {
                Box::pin(async move {
                    let principal = owner(&given.world, &request_id);
                    let output = spine.execute(&principal, value(&given)).await?;
                    let leaves = expect(&given, &output);
                    let tenant = leaves.audit_tenant.unwrap_or(given.world.tenant);
                    let actor = ActorExpect::User(given.world.owner);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<U>(Some(tenant), actor),
                    })
                })
            }),
        )
    }

    /// A platform use case, executed for an operator and audited in the tenant it concerns
    /// (`OperatorUseCase::tenant`, or the one [`Leaves::audited_in`] names).
    pub(crate) fn operator<U>(
        arrange: Arrange,
        value: fn(&Given) -> U,
        expect: fn(&Given, &U::Output) -> Leaves,
    ) -> Self
    where
        U: OperatorUseCase + 'static,
        U::Output: 'static,
    {
        Self::platform(arrange, false, value, expect)
    }

    /// A platform use case, executed by an operator who authenticated with the arranged
    /// operator key ([`Arrange::OperatorKeys`]); audited with that key.
    pub(crate) fn operator_key<U>(
        value: fn(&Given) -> U,
        expect: fn(&Given, &U::Output) -> Leaves,
    ) -> Self
    where
        U: OperatorUseCase + 'static,
        U::Output: 'static,
    {
        Self::platform(Arrange::OperatorKeys, true, value, expect)
    }

    fn platform<U>(
        arrange: Arrange,
        with_key: bool,
        value: fn(&Given) -> U,
        expect: fn(&Given, &U::Output) -> Leaves,
    ) -> Self
    where
        U: OperatorUseCase + 'static,
        U::Output: 'static,
    {
        Self::new::<U>(
            arrange,
            Box::new(move |spine, given, request_id| {
                Box::pin(async move {
                    let mut operator = operator(&request_id);
                    let mut actor = ActorExpect::Operator;
                    if with_key {
                        let (id, plaintext) = given.arranged.operator_key.clone().unwrap();
                        operator = spine
                            .authenticate_operator_key(&plaintext, operator.request.clone())
                            .await?;
                        actor = ActorExpect::OperatorKey(id);
                    }
                    let value = value(&given);
                    let concerns = value.tenant();
                    let output = spine.execute_as_operator(&operator, value).await?;
                    let leaves = expect(&given, &output);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<U>(leaves.audit_tenant.or(concerns), actor),
                    })
                })
            }),
        )
    }

    /// Invitation acceptance: no principal, the token is the authority; audited in the
    /// invitation's tenant as the user who joined.
    pub(crate) fn token(
        value: fn(&Given) -> AcceptInvitation,
        expect: fn(&Given, &Membership) -> Leaves,
    ) -> Self {
        Self::new::<AcceptInvitation>(
            Arrange::Invitation,
            Box::new(move |spine, given, request_id| {
                Box::pin(async move {
                    let request = owner(&given.world, &request_id).request;
                    let accept = value(&given);
                    let tenant = accept.tenant;
                    let membership = spine
                        .accept_invitation(
                            accept.tenant,
                            accept.id,
                            &accept.token,
                            accept.invitee,
                            request,
                        )
                        .await?;
                    let leaves = expect(&given, &membership);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<AcceptInvitation>(
                            Some(tenant),
                            ActorExpect::User(membership.user_id),
                        ),
                    })
                })
            }),
        )
    }

    /// The lease reaper's expiry of one run: the system acts, in the run's tenant, with no
    /// request (so no request id).
    pub(crate) fn reaper(
        value: fn(&Given) -> ExpireRunLease,
        expect: fn(&Given, &Option<RunSnapshot>) -> Leaves,
    ) -> Self {
        Self::new::<ExpireRunLease>(
            Arrange::LapsedRun,
            Box::new(move |spine, given, _request_id| {
                Box::pin(async move {
                    let expire = value(&given);
                    let output = spine
                        .expire_run_lease(expire.tenant_id, expire.run_id)
                        .await?;
                    let leaves = expect(&given, &output);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<ExpireRunLease>(Some(expire.tenant_id), ActorExpect::System),
                    })
                })
            }),
        )
    }

    /// The world's member erasing themselves, signed in ([`Arrange::SignedInMember`]):
    /// audited platform-wide (no tenant) as that user.
    pub(crate) fn erase_me(expect: fn(&Given, &Erased) -> Leaves) -> Self {
        Self::new::<EraseMe>(
            Arrange::SignedInMember,
            Box::new(move |spine, given, request_id| {
                Box::pin(async move {
                    let (issuer, subject) = SIGNED_IN_MEMBER;
                    let request = owner(&given.world, &request_id).request;
                    let signed_in = SignedIn::new(issuer, subject);
                    let erased = spine.erase_me(&signed_in, request).await?;
                    let leaves = expect(&given, &erased);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<EraseMe>(None, ActorExpect::User(given.world.member)),
                    })
                })
            }),
        )
    }

    /// A tenant use case, executed for the world's member (role `member`) and audited as
    /// them: what an owner may not do (leave as the last owner).
    pub(crate) fn member<U>(
        arrange: Arrange,
        value: fn(&Given) -> U,
        expect: fn(&Given, &U::Output) -> Leaves,
    ) -> Self
    where
        U: UseCase + 'static,
        U::Output: 'static,
    {
        Self::new::<U>(
            arrange,
            Box::new(move |spine, given, request_id| {
                Box::pin(async move {
                    let principal = Principal {
                        actor: Actor::User {
                            user_id: given.world.member,
                            role: MembershipRole::Member,
                        },
                        ..owner(&given.world, &request_id)
                    };
                    let output = spine.execute(&principal, value(&given)).await?;
                    let leaves = expect(&given, &output);
                    let tenant = leaves.audit_tenant.unwrap_or(given.world.tenant);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<U>(Some(tenant), ActorExpect::User(given.world.member)),
                    })
                })
            }),
        )
    }

    /// The world's owner, signed in ([`Arrange::SignedInOwner`]), creating a project of
    /// their own: audited in the new tenant as that user.
    pub(crate) fn create_project(
        name: &'static str,
        expect: fn(&Given, &CreatedTenant) -> Leaves,
    ) -> Self {
        Self::new::<CreateProject>(
            Arrange::SignedInOwner,
            Box::new(move |spine, given, request_id| {
                Box::pin(async move {
                    let (issuer, subject) = SIGNED_IN_OWNER;
                    let request = owner(&given.world, &request_id).request;
                    let signed_in = SignedIn::new(issuer, subject);
                    let created = spine.create_project(&signed_in, name, request).await?;
                    let leaves = expect(&given, &created);
                    let actor = ActorExpect::User(given.world.owner);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<CreateProject>(Some(created.tenant.id), actor),
                    })
                })
            }),
        )
    }

    /// The world's owner, signed in, restoring the world's deleted tenant
    /// ([`Arrange::DeletedProject`]): audited in it as that user.
    pub(crate) fn restore_project(expect: fn(&Given, &ProjectDeletion) -> Leaves) -> Self {
        Self::new::<RestoreProject>(
            Arrange::DeletedProject,
            Box::new(move |spine, given, request_id| {
                Box::pin(async move {
                    let (issuer, subject) = SIGNED_IN_OWNER;
                    let request = owner(&given.world, &request_id).request;
                    let signed_in = SignedIn::new(issuer, subject);
                    let tenant = given.world.tenant;
                    let restored = spine.restore_project(&signed_in, tenant, request).await?;
                    let leaves = expect(&given, &restored);
                    let actor = ActorExpect::User(given.world.owner);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<RestoreProject>(Some(tenant), actor),
                    })
                })
            }),
        )
    }

    /// The purge of the world's deleted tenant past its window
    /// ([`Arrange::PurgeableProject`]): the system acts with no request; the one audit row is
    /// platform-wide.
    pub(crate) fn project_purge(expect: fn(&Given, u64) -> Leaves) -> Self {
        Self::new::<PurgeProject>(
            Arrange::PurgeableProject,
            Box::new(move |spine, given, _request_id| {
                Box::pin(async move {
                    let removed = spine.purge_project(given.world.tenant, 1_000).await?;
                    let leaves = expect(&given, removed);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<PurgeProject>(None, ActorExpect::System),
                    })
                })
            }),
        )
    }

    /// The audit purge of the world's tenant: the system acts, in that tenant, with no
    /// request (so no request id).
    pub(crate) fn purge(expect: fn(&Given, &AuditPurged) -> Leaves) -> Self {
        Self::new::<PurgeAuditLog>(
            Arrange::ExpiredAuditRows,
            Box::new(move |spine, given, _request_id| {
                Box::pin(async move {
                    let tenant = given.world.tenant;
                    let purged = spine.purge_audit_log(tenant, 1_000).await?;
                    let leaves = expect(&given, &purged);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<PurgeAuditLog>(Some(tenant), ActorExpect::System),
                    })
                })
            }),
        )
    }

    /// Delivery disabling the world's arranged webhook endpoint: the system acts, in that
    /// tenant, with no request (so no request id).
    pub(crate) fn webhook_disable(expect: fn(&Given, &bool) -> Leaves) -> Self {
        Self::new::<DisableWebhookEndpoint>(
            Arrange::WebhookEndpoint,
            Box::new(move |spine, given, _request_id| {
                Box::pin(async move {
                    let tenant = given.world.tenant;
                    let endpoint = given.webhook_endpoint();
                    let disabled = spine
                        .disable_webhook_endpoint_as_delivery(tenant, endpoint, false)
                        .await?;
                    let leaves = expect(&given, &disabled);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<DisableWebhookEndpoint>(Some(tenant), ActorExpect::System),
                    })
                })
            }),
        )
    }

    /// The reaper's pass reverting the world's tenant's expired overrides: the system acts,
    /// in that tenant, with no request (so no request id).
    pub(crate) fn limits_expiry(expect: fn(&Given, u64) -> Leaves) -> Self {
        Self::new::<ExpireLimitOverrides>(
            Arrange::ExpiredLimitOverride,
            Box::new(move |spine, given, _request_id| {
                Box::pin(async move {
                    let tenant = given.world.tenant;
                    let reverted = spine.expire_limit_overrides(100).await?;
                    let leaves = expect(&given, reverted);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<ExpireLimitOverrides>(Some(tenant), ActorExpect::System),
                    })
                })
            }),
        )
    }

    /// The reaper's pass ending the arranged trial ([`Arrange::EndedTrial`]) or grace
    /// ([`Arrange::EndedGrace`]) of the world's tenant: the system acts, in that tenant, with
    /// no request (so no request id). Each move is its own use case, so the case calls it
    /// rather than the whole pass (which logs a failed move and goes on).
    pub(crate) fn trial_pass<U>(
        arrange: Arrange,
        expect: fn(&Given, &Option<Subscription>) -> Leaves,
    ) -> Self
    where
        U: UseCase<Output = Option<Subscription>> + 'static,
    {
        Self::new::<U>(
            arrange,
            Box::new(move |spine, given, _request_id| {
                Box::pin(async move {
                    let tenant = given.world.tenant;
                    let id = given.subscription();
                    let output = if arrange == Arrange::EndedGrace {
                        spine.end_grace(tenant, id).await?
                    } else {
                        spine.end_trial(tenant, id).await?
                    };
                    let leaves = expect(&given, &output);
                    Ok(Done {
                        effects: leaves.rows,
                        audit: audit::<U>(Some(tenant), ActorExpect::System),
                    })
                })
            }),
        )
    }

    /// The request id the case's caller carries.
    pub(crate) fn request_id(&self) -> String {
        format!("req-{}", self.name)
    }

    /// Whether the case runs in a write transaction (every audited write does).
    pub(crate) fn transactional(&self) -> bool {
        !WRITING_READS.contains(&self.operation)
    }

    /// Whether the case commits in steps ([`COMMITS_IN_STEPS`]).
    pub(crate) fn commits_in_steps(&self) -> bool {
        COMMITS_IN_STEPS.contains(&self.operation)
    }

    /// Seeds the world and what the case acts on, through the spine where the state needs the
    /// engines' rules (runs, keys, invitations, pins).
    pub(crate) async fn arrange(&self, env: &Env) -> Arranged {
        let world = world(&env.second().await).await;
        let mut arranged = Arranged {
            world,
            run: None,
            key: None,
            invitation: None,
            operator_key: None,
            target_operator_key: None,
            webhook_endpoint: None,
            subscription: None,
        };
        // Arrangement steps run with the request id `arrange`, never a case's.
        let by = Principal {
            request: RequestMeta::default().with_request_id("arrange"),
            ..owner(&world, "arrange")
        };
        let spine = &env.spine;
        match self.arrange {
            Arrange::Nothing => {}
            Arrange::Run => {
                arranged.run = Some(spine.execute(&by, admit()).await.unwrap().id);
            }
            Arrange::LapsedRun => {
                arranged.run = Some(spine.execute(&by, admit()).await.unwrap().id);
                let lease = TimeDelta::from_std(spine.run_lease().get()).unwrap();
                env.clock.advance(lease + TimeDelta::seconds(1));
            }
            Arrange::ApiKey => {
                let key = IssueKey {
                    name: "ci".into(),
                    ..IssueKey::default()
                };
                arranged.key = Some(spine.execute(&by, key).await.unwrap().key.id);
            }
            Arrange::Invitation => {
                let issued = spine
                    .invite_user(&by, "invitee@example.com", MembershipRole::Admin)
                    .await
                    .unwrap();
                arranged.invitation =
                    Some((issued.invitation.id, issued.token.expose().to_owned()));
                // A resend an hour later has a new expiry to show.
                env.clock.advance(TimeDelta::hours(1));
            }
            Arrange::Pin => {
                spine.upsert_pin(&by, pin(None)).await.unwrap();
            }
            Arrange::ExpiredPin => {
                spine.upsert_pin(&by, pin(Some(30))).await.unwrap();
                env.clock.advance(TimeDelta::seconds(60));
            }
            Arrange::OperatorKeys => {
                let tooling = OperatorPrincipal {
                    operator_id: "cli:arrange".into(),
                    request: RequestMeta::default().with_request_id("arrange"),
                };
                let acting = spine.create_operator_key(&tooling, "ops").await.unwrap();
                arranged.operator_key = Some((acting.key.id, acting.plaintext.expose().to_owned()));
                let target = spine.create_operator_key(&tooling, "old").await.unwrap();
                arranged.target_operator_key = Some(target.key.id);
            }
            Arrange::ExpiredAuditRows => {
                spine.execute(&by, admit()).await.unwrap();
                let conn = env.second().await;
                let mut retention = Query::update();
                retention
                    .table(Alias::new("tenants"))
                    .value(Alias::new("audit_retention_days"), 30)
                    .and_where(Expr::col(Alias::new("id")).eq(world.tenant.as_uuid()));
                conn.execute(&retention).await.unwrap();
                env.clock.advance(TimeDelta::days(31));
            }
            Arrange::LimitOverride | Arrange::ExpiredLimitOverride => {
                let tooling = OperatorPrincipal {
                    operator_id: "cli:arrange".into(),
                    request: RequestMeta::default().with_request_id("arrange"),
                };
                let mut request = SetOverride::new(LimitName::MaxApiKeys, 40, "arranged");
                if self.arrange == Arrange::ExpiredLimitOverride {
                    request = request.until(env.clock.now() + TimeDelta::minutes(1));
                }
                spine
                    .set_limit_override(&tooling, world.tenant, request)
                    .await
                    .unwrap();
                if self.arrange == Arrange::ExpiredLimitOverride {
                    env.clock.advance(TimeDelta::minutes(2));
                }
            }
            Arrange::SignedInMember => {
                let (issuer, subject) = SIGNED_IN_MEMBER;
                let mut link = Query::insert();
                link.into_table(Alias::new("identity_links"))
                    .columns(["id", "issuer", "subject", "user_id", "created_at"].map(Alias::new))
                    .values_panic([
                        uuid::Uuid::now_v7().into(),
                        issuer.into(),
                        subject.into(),
                        world.member.as_uuid().into(),
                        env.clock.now().into(),
                    ]);
                env.second().await.execute(&link).await.unwrap();
            }
            Arrange::SignedInOwner | Arrange::DeletedProject | Arrange::PurgeableProject => {
                let (issuer, subject) = SIGNED_IN_OWNER;
                let mut link = Query::insert();
                link.into_table(Alias::new("identity_links"))
                    .columns(["id", "issuer", "subject", "user_id", "created_at"].map(Alias::new))
                    .values_panic([
                        uuid::Uuid::now_v7().into(),
                        issuer.into(),
                        subject.into(),
                        world.owner.as_uuid().into(),
                        env.clock.now().into(),
                    ]);
                env.second().await.execute(&link).await.unwrap();
                if self.arrange != Arrange::SignedInOwner {
                    spine.delete_project(&by).await.unwrap();
                }
                if self.arrange == Arrange::PurgeableProject {
                    let window = TimeDelta::days(RESTORE_WINDOW_DAYS);
                    env.clock.advance(window + TimeDelta::seconds(1));
                }
            }
            Arrange::EndedTrial | Arrange::EndedGrace => {
                let tooling = OperatorPrincipal {
                    operator_id: "cli:arrange".into(),
                    request: RequestMeta::default().with_request_id("arrange"),
                };
                let end = env.clock.now() + TimeDelta::days(1);
                let trial = TrialStart::new(world.tenant, "sub_trial", PlanCode::pro(), end);
                let started = spine.start_trial(&tooling, trial).await.unwrap();
                arranged.subscription = Some(started.id);
                env.clock
                    .advance(TimeDelta::days(1) + TimeDelta::seconds(1));
                if self.arrange == Arrange::EndedGrace {
                    spine
                        .end_trial(world.tenant, started.id)
                        .await
                        .unwrap()
                        .unwrap();
                    env.clock.advance(TimeDelta::days(7));
                }
            }
            Arrange::WebhookEndpoint => {
                let new = CreateEndpoint::new("https://hooks.example.com/in");
                let created = spine.create_webhook_endpoint(&by, new).await.unwrap();
                arranged.webhook_endpoint = Some(created.endpoint.id);
            }
        }
        arranged
    }

    /// Runs the case's value once and says what must now be visible. Callable again on the
    /// same arrangement after a failure.
    pub(crate) async fn act(&self, env: &Env, arranged: &Arranged) -> Result<Done, SpineError> {
        let given = Given {
            world: arranged.world,
            tenant: uuid(arranged.world.tenant.as_uuid()),
            arranged: arranged.clone(),
            now: env.clock.now(),
        };
        (self.call)(env.spine.clone(), given, self.request_id()).await
    }
}

/// A run every plan may admit.
pub(crate) fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
        token_estimate: 0,
    }
}

/// The pin `agent:cfg`.
pub(crate) fn pin(ttl_seconds: Option<i32>) -> SavePin {
    SavePin {
        key: "agent:cfg".into(),
        value: json!({"v": 1}),
        source: None,
        ttl_seconds,
    }
}

// ---------------------------------------------------------------------------------------
// The commit check (test 1), shared with the operations table's audit check (test 3).

/// What one committed case wrote to the audit log.
#[derive(Clone, Debug)]
pub(crate) struct Committed {
    /// The case's operation.
    pub(crate) operation: Operation,
    /// Audit actions whose row count the call raised.
    pub(crate) new_audit_actions: Vec<String>,
}

/// Runs every case on `backend`, each in its own database, and checks from a second
/// connection that its rows and its audit row (action, tenant, actor, request id) are there.
/// Returns what each call added to the audit log; panics listing every failed check.
pub(crate) async fn commit_every_case(backend: &Backend) -> Vec<Committed> {
    let mut problems = Vec::new();
    let mut committed = Vec::new();
    for case in super::cases::all() {
        let env = super::env(backend).await;
        let arranged = case.arrange(&env).await;
        let before = audit_actions(&env.second().await).await;
        let done = match case.act(&env, &arranged).await {
            Ok(done) => done,
            Err(error) => {
                problems.push(format!("{}: {case:?} failed: {error:?}", env.backend));
                continue;
            }
        };
        // A new pool, opened after the call returned: only committed data is visible.
        let other = env.second().await;
        for effect in &done.effects {
            let found = count(&other, effect.table, &effect.conds).await;
            if found != effect.rows {
                problems.push(format!(
                    "{}: {case:?}: {} has {found} rows matching {:?}, expected {}",
                    env.backend, effect.table, effect.conds, effect.rows
                ));
            }
        }
        match &done.audit {
            Some(audit) => {
                let found = count(&other, "audit_log", &audit.conds(Some(case.request_id()))).await;
                if found != 1 {
                    let without = count(&other, "audit_log", &audit.conds(None)).await;
                    problems.push(format!(
                        "{}: {case:?}: {found} audit rows {audit:?} with the request id \
                         ({without} without it)",
                        env.backend
                    ));
                }
            }
            None => {
                let rows = count(
                    &other,
                    "audit_log",
                    &[("request_id", case.request_id().into())],
                )
                .await;
                if rows != 0 {
                    problems.push(format!(
                        "{}: {case:?} has no audit action but wrote {rows} audit rows",
                        env.backend
                    ));
                }
            }
        }
        let after = audit_actions(&other).await;
        let new_audit_actions = after
            .iter()
            .filter(|(action, n)| before.get(*action).copied().unwrap_or(0) < **n)
            .map(|(action, _)| action.clone())
            .collect();
        committed.push(Committed {
            operation: case.operation,
            new_audit_actions,
        });
    }
    assert!(
        problems.is_empty(),
        "{} failed checks:\n{}",
        problems.len(),
        problems.join("\n")
    );
    committed
}
