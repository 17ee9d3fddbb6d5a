//! The executor: runs a [`UseCase`] value with everything around it done once, in one
//! readable function per kind of caller ([`Spine::execute`], [`Spine::execute_as_operator`],
//! and the token holder's [`Spine::execute_with_token`]): a span and counters, authority, the
//! tenant's capability, one write transaction per attempt (or the pool, for reads), retries on
//! contention by the [`RetryPolicy`], the audit row of a refusal, and the effects a use case
//! queued for after commit. Nothing else in the workspace begins, commits or rolls back.
//!
//! A write transaction commits only when the whole use case succeeded and rolls back
//! explicitly otherwise, so a failed operation leaves nothing half-written. Each retry starts
//! from a fresh snapshot, so an attempt never mixes state from another.

use crate::acting::acts_with_users_role;
use crate::authorize::{authorize, authorize_operator};
use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::{Authority, Operation};
use crate::principal::{Actor, OperatorPrincipal, Principal, RequestMeta};
use crate::retry::RetryPolicy;
use crate::use_case::{Caller, Context, Effect, OperatorUseCase, UseCase, refusal_entry};
use account_engines::audit::{self, AuditEntry};
use account_engines::memberships::Acting;
use account_engines::types::TenantId;
use account_engines::{DriverError, ErrorCode};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, SqliteTransactionMode, TransactionOptions, TransactionTrait};
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

/// What a use case body is to the runner: [`UseCase::run`], or the spine's own refusal row.
pub(crate) trait Body: Sync {
    type Output: Send;
    fn body(
        &self,
        cx: &mut Context<'_>,
    ) -> impl Future<Output = Result<Self::Output, SpineError>> + Send;
}

impl<U: UseCase> Body for U {
    type Output = U::Output;
    fn body(
        &self,
        cx: &mut Context<'_>,
    ) -> impl Future<Output = Result<Self::Output, SpineError>> + Send {
        self.run(cx)
    }
}

/// The audit row of a refusal and the events the refusal publishes, written in a transaction
/// of their own after the refused call's transaction rolled back.
struct RefusalRow {
    entry: Option<AuditEntry>,
    events: Vec<DomainEvent>,
}

impl Body for RefusalRow {
    type Output = ();
    async fn body(&self, cx: &mut Context<'_>) -> Result<(), SpineError> {
        if let Some(entry) = &self.entry {
            audit::record(cx.db, entry.clone(), cx.now).await?;
        }
        cx.events.extend(self.events.iter().cloned());
        Ok(())
    }
}

/// What the runner needs besides the body.
#[derive(Clone, Copy)]
struct Frame<'a> {
    operation: Operation,
    caller: Caller<'a>,
    member: Option<Acting>,
    /// The tenant whose status must allow the operation, checked first in the transaction.
    capability_of: Option<TenantId>,
    now: DateTime<Utc>,
    /// A host's transaction to run in (a savepoint of it), instead of one of our own.
    host: Option<&'a DatabaseTransaction>,
}

/// Where a call's after-commit effects go: applied now (our transaction committed), or kept
/// for the host's commit.
pub(crate) enum Release<'a> {
    Now,
    OnHostCommit(&'a mut Vec<Effect>),
}

impl<'a> Frame<'a> {
    /// A frame with no acting member and no capability check.
    fn new(operation: Operation, caller: Caller<'a>, now: DateTime<Utc>) -> Self {
        Self {
            operation,
            caller,
            member: None,
            capability_of: None,
            now,
            host: None,
        }
    }
}

type Outcome<T> = Result<(T, Vec<Effect>), SpineError>;

impl Spine {
    /// Executes a tenant use case for `principal`: its authority (a member's role or a key's
    /// permissions; for [`UseCase::ACTS_AS_MEMBER`] use cases the acting member, re-read for a
    /// personal key), then its body with the tenant's capability checked first, in one
    /// transaction for a write (retried on contention) or on the pool for a read. A refusal
    /// is audited; events are published only after commit.
    pub async fn execute<U: UseCase>(
        &self,
        principal: &Principal,
        use_case: U,
    ) -> Result<U::Output, SpineError> {
        self.execute_for(principal, use_case, None, Release::Now)
            .await
    }

    /// [`Spine::execute`], in `host`'s transaction when given.
    pub(crate) async fn execute_for<U: UseCase>(
        &self,
        principal: &Principal,
        use_case: U,
        host: Option<&DatabaseTransaction>,
        release: Release<'_>,
    ) -> Result<U::Output, SpineError> {
        let operation = U::OPERATION;
        let caller = Caller::Principal(principal);
        self.observe(operation, caller, async {
            let base = Frame {
                host,
                ..Frame::new(operation, caller, self.clock.now())
            };
            let outcome = async {
                // A host names the member who acts, never their power: the role is the
                // membership's as it stands now, and a non-member meets a tenant that is not
                // there.
                let resolved;
                let principal = match &principal.actor {
                    Actor::User { user_id, .. } => {
                        resolved = self.member_principal(principal, *user_id).await?;
                        &resolved
                    }
                    Actor::ApiKey { .. } => principal,
                };
                let member = if U::ACTS_AS_MEMBER || acts_with_users_role(principal, operation) {
                    Some(self.acting(principal, operation).await?)
                } else {
                    None
                };
                authorize(principal, operation)?;
                let frame = Frame {
                    member,
                    capability_of: (!U::CHECKS_OWN_CAPABILITY).then_some(principal.tenant_id),
                    ..base
                };
                self.run_body(&use_case, frame).await
            }
            .await;
            self.settle(&use_case, base, outcome, release).await
        })
        .await
    }

    /// Executes a platform use case for an identified operator, in any tenant status; a
    /// refusal is audited like a tenant's.
    pub async fn execute_as_operator<U: OperatorUseCase>(
        &self,
        operator: &OperatorPrincipal,
        use_case: U,
    ) -> Result<U::Output, SpineError> {
        self.execute_as_operator_for(operator, use_case, None, Release::Now)
            .await
    }

    /// [`Spine::execute_as_operator`], in `host`'s transaction when given.
    pub(crate) async fn execute_as_operator_for<U: OperatorUseCase>(
        &self,
        operator: &OperatorPrincipal,
        use_case: U,
        host: Option<&DatabaseTransaction>,
        release: Release<'_>,
    ) -> Result<U::Output, SpineError> {
        let operation = U::OPERATION;
        let caller = Caller::Operator(operator, use_case.tenant());
        self.observe(operation, caller, async {
            let base = Frame {
                host,
                ..Frame::new(operation, caller, self.clock.now())
            };
            let outcome = async {
                authorize_operator(operator, operation)?;
                self.run_body(&use_case, base).await
            }
            .await;
            self.settle(&use_case, base, outcome, release).await
        })
        .await
    }

    /// Executes one of the spine's own platform jobs on `tenant` (authority
    /// [`Authority::System`]): no principal and no capability check (a job such as the lease
    /// reaper must work whatever the tenant's status), one write transaction retried on
    /// contention, audited as the system, effects after commit.
    pub(crate) async fn execute_as_system<U: UseCase>(
        &self,
        tenant: TenantId,
        use_case: U,
    ) -> Result<U::Output, SpineError> {
        let operation = U::OPERATION;
        debug_assert_eq!(operation.authority(), Authority::System);
        let caller = Caller::System(tenant);
        self.observe(operation, caller, async {
            let frame = Frame::new(operation, caller, self.clock.now());
            let outcome = self.run_body(&use_case, frame).await;
            self.settle(&use_case, frame, outcome, Release::Now).await
        })
        .await
    }

    /// Executes a use case whose authority is a one-time token of `tenant` (the body checks
    /// the token, then the tenant's capability, so only its holder learns the status).
    pub(crate) async fn execute_with_token<U: UseCase>(
        &self,
        tenant: TenantId,
        request: &RequestMeta,
        use_case: U,
    ) -> Result<U::Output, SpineError> {
        let operation = U::OPERATION;
        debug_assert_eq!(operation.authority(), Authority::Token);
        let caller = Caller::TokenHolder { tenant, request };
        self.observe(operation, caller, async {
            let frame = Frame::new(operation, caller, self.clock.now());
            let outcome = self.run_body(&use_case, frame).await;
            self.settle(&use_case, frame, outcome, Release::Now).await
        })
        .await
    }

    /// Executes a use case whose authority is a signed-in person acting for themselves
    /// ([`Authority::Person`]), about `tenant` when there is one: no principal and no
    /// capability check (the body checks what it needs of the person), one write
    /// transaction retried on contention, a refusal audited in the tenant.
    pub(crate) async fn execute_as_person<U: UseCase>(
        &self,
        user: account_engines::types::UserId,
        tenant: Option<TenantId>,
        request: &RequestMeta,
        use_case: U,
    ) -> Result<U::Output, SpineError> {
        let operation = U::OPERATION;
        debug_assert_eq!(operation.authority(), Authority::Person);
        let caller = Caller::Person {
            user,
            tenant,
            request,
        };
        self.observe(operation, caller, async {
            let frame = Frame::new(operation, caller, self.clock.now());
            let outcome = self.run_body(&use_case, frame).await;
            self.settle(&use_case, frame, outcome, Release::Now).await
        })
        .await
    }

    /// Applies (or, in a host's transaction, keeps) the effects of a committed call; or
    /// audits a refusal and releases the use case's refusal events the same way.
    async fn settle<U: UseCase>(
        &self,
        use_case: &U,
        frame: Frame<'_>,
        outcome: Outcome<U::Output>,
        mut release: Release<'_>,
    ) -> Result<U::Output, SpineError> {
        let (operation, caller) = (frame.operation, frame.caller);
        let (result, effects) = match outcome {
            Ok((output, effects)) => (Ok(output), effects),
            Err(error) => {
                let refusal = RefusalRow {
                    entry: error
                        .is_refusal()
                        .then(|| refusal_entry(caller, operation, &error))
                        .flatten(),
                    events: use_case.refusal_events(caller.tenant(), &error),
                };
                let effects = if refusal.entry.is_some() || !refusal.events.is_empty() {
                    self.record_refusal(frame, refusal).await
                } else {
                    Vec::new()
                };
                (Err(error), effects)
            }
        };
        match &mut release {
            Release::Now => self.release(effects).await,
            Release::OnHostCommit(kept) => kept.extend(effects),
        }
        result
    }

    /// Applies a committed transaction's effects in order; dispatches its events now when
    /// the spine dispatches inline.
    pub(crate) async fn release(&self, effects: Vec<Effect>) {
        let mut dispatch = false;
        for effect in effects {
            dispatch |= matches!(effect, Effect::Dispatch);
            self.apply(effect);
        }
        if dispatch
            && self.inline_dispatch
            && let Err(error) = self.dispatch_events().await
        {
            // Still in the outbox: the next dispatch delivers them.
            tracing::warn!(code = error.code(), "inline event dispatch failed");
        }
    }

    /// Applies one effect of a committed transaction.
    fn apply(&self, effect: Effect) {
        match effect {
            Effect::ForgetKey(tenant, key) => self.verify_cache.invalidate_key(tenant, key),
            Effect::ForgetTenant(tenant) => {
                self.verify_cache.invalidate_tenant(tenant);
                self.member_roles.forget_tenant(tenant);
            }
            Effect::ForgetMember(tenant, user) => self.member_roles.forget(tenant, user),
            Effect::Dispatch => self.dispatch_wake.notify_one(),
        }
    }

    /// Writes a refusal's row and events: in a transaction of its own, or, in a host's
    /// transaction, in that one (a second writer would wait for the host's lock on SQLite).
    /// The effects to release once that commits.
    async fn record_refusal(&self, frame: Frame<'_>, refusal: RefusalRow) -> Vec<Effect> {
        let written = match frame.host {
            Some(host) => {
                self.attempt(&refusal, frame, self.transaction_db(host))
                    .await
            }
            None => self.in_transaction(&refusal, frame).await,
        };
        match written {
            Ok(((), effects)) => effects,
            Err(error) => {
                tracing::warn!(
                    code = error.code(),
                    operation = frame.operation.name(),
                    "could not record a refusal"
                );
                Vec::new()
            }
        }
    }

    /// Runs `body` in a write transaction when the operation writes, on the pool (or a
    /// replica) otherwise.
    async fn run_body<B: Body>(&self, body: &B, frame: Frame<'_>) -> Outcome<B::Output> {
        if let Some(host) = frame.host {
            self.in_savepoint(host, body, frame).await
        } else if frame.operation.writes() {
            let outcome = self.in_transaction(body, frame).await;
            if outcome.is_ok() {
                self.remember_commit(frame.caller.reader()).await; // read-your-writes (replicas)
            }
            outcome
        } else {
            self.read(body, frame).await
        }
    }

    /// Runs a read on a replica that has replayed the caller's last write, else on the
    /// primary; a read a replica fails for its own reasons runs again on the primary.
    async fn read<B: Body>(&self, body: &B, frame: Frame<'_>) -> Outcome<B::Output> {
        let reader = frame.caller.reader();
        let read_after = frame.caller.request().read_after.map(|token| token.0);
        let chosen = match self.replicas.as_deref() {
            Some(replicas) => {
                replicas
                    .choose_for(frame.operation, reader, read_after)
                    .await
            }
            None => None,
        };
        if let Some(chosen) = chosen {
            let outcome = self
                .attempt(body, frame, self.replica_db(chosen.conn()))
                .await;
            if chosen.keeps(&outcome) {
                return outcome;
            }
        }
        self.attempt(body, frame, self.pool_db()).await
    }

    /// Runs `body` in one write transaction per attempt, as the retry policy allows.
    async fn in_transaction<B: Body>(&self, body: &B, frame: Frame<'_>) -> Outcome<B::Output> {
        let mut attempt: u32 = 1;
        loop {
            let finished = async {
                let txn = self.begin_write().await?;
                let outcome = self.attempt(body, frame, self.transaction_db(&txn)).await;
                self.finish(txn, outcome).await
            }
            .instrument(tracing::debug_span!("transaction", attempt))
            .await;
            match finished {
                Err(error)
                    if RetryPolicy::is_contention(&error) && attempt < self.retry.attempts =>
                {
                    tracing::debug!(attempt, "transaction contention; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }

    /// Runs `body` once in a savepoint of the host's transaction: a failure rolls back to
    /// the savepoint (what the host wrote before stays), success keeps the changes for the
    /// host's commit. No retry: contention is the host's to handle, with its whole
    /// transaction.
    async fn in_savepoint<B: Body>(
        &self,
        host: &DatabaseTransaction,
        body: &B,
        frame: Frame<'_>,
    ) -> Outcome<B::Output> {
        let savepoint = host
            .begin()
            .await
            .map_err(|e| SpineError::from(DriverError::from(e)))?;
        let outcome = self
            .attempt(body, frame, self.transaction_db(&savepoint))
            .await;
        self.finish(savepoint, outcome).await
    }

    /// One attempt of `body` on `db`, after the capability check the frame asks for.
    async fn attempt<'a, B: Body>(
        &'a self,
        body: &B,
        frame: Frame<'a>,
        db: account_engines::Db<'a>,
    ) -> Outcome<B::Output> {
        let mut cx = Context {
            spine: self,
            db,
            now: frame.now,
            operation: frame.operation,
            caller: frame.caller,
            member: frame.member,
            effects: Vec::new(),
            events: Vec::new(),
        };
        if let Some(tenant) = frame.capability_of {
            cx.require_capability(tenant).await?;
        }
        let output = body.body(&mut cx).await?;
        // Its events join the transaction last, so the tenant's stream row stays locked for
        // as short a time as the commit allows.
        if !cx.events.is_empty() {
            self.append_to_outbox(cx.db, &cx.events, frame.now).await?;
            cx.effects.push(Effect::Dispatch);
        }
        // Other instances hear of stale caches from this transaction: at its commit, never
        // at a rollback (PostgreSQL; nothing on SQLite).
        if let Some(payload) = self
            .caches
            .payload(cx.effects.iter().filter_map(Effect::stale))
        {
            account_engines::cache_sync::publish_cache_invalidation(cx.db, &payload)
                .await
                .map_err(SpineError::from)?;
        }
        Ok((output, cx.effects))
    }

    /// Begins a write transaction. On SQLite it starts `IMMEDIATE`: it takes the write lock up
    /// front, so concurrent writers queue on the busy timeout instead of failing an upgrade.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, SpineError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        self.write_connection()
            .begin_with_options(options)
            .await
            .map_err(|e| SpineError::from(DriverError::from(e)))
    }

    /// Commits when `outcome` is `Ok`, rolls back otherwise; returns the outcome (or the
    /// commit's failure).
    async fn finish<T>(
        &self,
        txn: DatabaseTransaction,
        outcome: Result<T, SpineError>,
    ) -> Result<T, SpineError> {
        match outcome {
            Ok(value) => txn
                .commit()
                .await
                .map(|()| value)
                .map_err(|e| SpineError::from(DriverError::from(e))),
            Err(error) => {
                if let Err(rollback) = txn.rollback().await {
                    // The pool discards the connection; the use case's error is what matters.
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(error)
            }
        }
    }

    /// Runs one call inside a span named by the operation (with request id, tenant id and
    /// actor kind, never a secret) and counts it: calls, errors by code, duration.
    pub(crate) async fn observe<T>(
        &self,
        operation: Operation,
        caller: Caller<'_>,
        call: impl Future<Output = Result<T, SpineError>>,
    ) -> Result<T, SpineError> {
        let span = operation.span();
        if let Some(request_id) = caller.request().request_id.as_deref() {
            span.record("request_id", request_id);
        }
        if let Some(tenant) = caller.tenant() {
            span.record("tenant_id", tracing::field::display(tenant));
        }
        span.record("actor", caller.actor_kind());
        self.metrics.started(operation);
        let started = Instant::now();
        let outcome = call.instrument(span.clone()).await;
        let code = outcome.as_ref().err().map(ErrorCode::code);
        self.metrics.finished(operation, started.elapsed(), code);
        if let Err(error) = &outcome {
            let (code, status) = (error.code(), error.http_status());
            span.record("error_code", code);
            span.in_scope(|| {
                if status >= 500 {
                    tracing::warn!(code, status, "use case failed");
                } else {
                    tracing::debug!(code, status, "use case refused");
                }
            });
        }
        outcome
    }
}
