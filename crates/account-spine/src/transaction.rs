//! Transaction ownership: every write use case runs inside [`transaction!`], and nothing else
//! in the workspace can begin, commit or roll back.
//!
//! A write transaction commits only when the whole use case succeeded, and rolls back
//! explicitly otherwise, so a failed operation leaves nothing half-written. Contention
//! (PostgreSQL serialization failures and deadlocks, SQLite's busy writer) retries the whole
//! use case a bounded number of times: each attempt starts from a fresh snapshot, so a retry
//! never mixes state from two attempts.
//!
//! The runner is a macro rather than a function taking an async closure: a closure over a
//! borrowed `Db<'_>` needs a higher-ranked lifetime, and rustc cannot yet prove such futures
//! `Send`, which every multi-threaded host (axum, `tokio::spawn`) requires. Expanded inline,
//! the body is ordinary async code of the use case.

use crate::{Spine, SpineError};
use account_engines::DriverError;
use sea_orm::{DatabaseTransaction, SqliteTransactionMode, TransactionOptions, TransactionTrait};
use std::time::Duration;

/// Attempts per write use case before contention is reported to the caller.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Errors of a use case, as far as the transaction runner needs to know them.
pub(crate) trait UseCaseError: From<DriverError> {
    /// Whether retrying the whole transaction may succeed.
    fn is_contention(&self) -> bool;
}

impl Spine {
    /// Begins a write transaction. On SQLite it starts `IMMEDIATE`: it takes the write lock up
    /// front, so concurrent writers queue on the busy timeout instead of failing an upgrade.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, SpineError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        self.connection()
            .begin_with_options(options)
            .await
            .map_err(|e| SpineError::from(DriverError::from(e)))
    }

    /// Commits when `outcome` is `Ok`, rolls back otherwise; returns the outcome (or the
    /// commit's failure).
    pub(crate) async fn finish<T>(
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
}

/// 5, 10, 20, 40 ms: short, because contended statements here are single-row and brief.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(5 << attempt.saturating_sub(1).min(4))
}

/// `transaction!(spine, |db| body)`: runs `body` (an expression of type
/// `Result<T, SpineError>` that may use `?`) in one write transaction on `db`, retrying the
/// whole body on contention. Each attempt runs in a `transaction` span.
macro_rules! transaction {
    ($spine:expr, |$db:ident| $body:expr) => {{
        let spine: &$crate::Spine = $spine;
        let mut attempt: u32 = 1;
        loop {
            let finished = tracing::Instrument::instrument(
                async {
                    let txn = spine.begin_write().await?;
                    let outcome: Result<_, $crate::SpineError> = {
                        let $db = spine.transaction_db(&txn);
                        async { $body }.await
                    };
                    spine.finish(txn, outcome).await
                },
                tracing::debug_span!("transaction", attempt),
            )
            .await;
            match finished {
                Err(error)
                    if $crate::transaction::UseCaseError::is_contention(&error)
                        && attempt < $crate::transaction::MAX_ATTEMPTS =>
                {
                    tracing::debug!(attempt, "transaction contention; retrying");
                    tokio::time::sleep($crate::transaction::backoff(attempt)).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}

/// `read!(spine, |db| body)`: runs a read-only `body` on the pool (no transaction).
macro_rules! read {
    ($spine:expr, |$db:ident| $body:expr) => {{
        let spine: &$crate::Spine = $spine;
        let $db = spine.pool_db();
        let outcome: Result<_, $crate::SpineError> = async { $body }.await;
        outcome
    }};
}

/// `write_use_case!(spine, principal, operation, |db| body)`: authority, then one
/// transaction that checks the tenant's capability and runs `body`. A refusal (from the
/// authority check, the capability check or the body) is audited in a transaction of its own,
/// after the use case's transaction rolled back.
macro_rules! write_use_case {
    ($spine:expr, $principal:expr, $operation:expr, |$db:ident| $body:expr) => {{
        let spine: &$crate::Spine = $spine;
        let principal: &$crate::Principal = $principal;
        let operation: $crate::Operation = $operation;
        let subject = $crate::use_case::Subject::Principal(principal);
        match $crate::authorize::authorize(principal, operation) {
            Err(refusal) => spine.audited(subject, operation, Err(refusal)).await,
            Ok(()) => {
                let outcome = transaction!(spine, |$db| {
                    $crate::use_case::require_capability($db, principal.tenant_id, operation)
                        .await?;
                    $body
                });
                spine.audited(subject, operation, outcome).await
            }
        }
    }};
}

/// `read_use_case!(spine, principal, operation, |db| body)`: authority and capability, then
/// `body` on the pool; a refusal is audited (in a short write transaction of its own).
macro_rules! read_use_case {
    ($spine:expr, $principal:expr, $operation:expr, |$db:ident| $body:expr) => {{
        let spine: &$crate::Spine = $spine;
        let principal: &$crate::Principal = $principal;
        let operation: $crate::Operation = $operation;
        let subject = $crate::use_case::Subject::Principal(principal);
        match $crate::authorize::authorize(principal, operation) {
            Err(refusal) => spine.audited(subject, operation, Err(refusal)).await,
            Ok(()) => {
                let outcome = read!(spine, |$db| {
                    $crate::use_case::require_capability($db, principal.tenant_id, operation)
                        .await?;
                    $body
                });
                spine.audited(subject, operation, outcome).await
            }
        }
    }};
}

/// `operator_use_case!(spine, operator, operation, tenant, |db| body)`: a platform operation
/// (`tenant`, an `Option<TenantId>`, is the tenant it concerns) in one transaction; the
/// operation must be one only operators may call, and the operator must be identified.
/// Refusals are audited like tenant refusals.
macro_rules! operator_use_case {
    ($spine:expr, $operator:expr, $operation:expr, $tenant:expr, |$db:ident| $body:expr) => {{
        let spine: &$crate::Spine = $spine;
        let operator: &$crate::OperatorPrincipal = $operator;
        let operation: $crate::Operation = $operation;
        let subject = $crate::use_case::Subject::Operator(operator, $tenant);
        match $crate::authorize::authorize_operator(operator, operation) {
            Err(refusal) => spine.audited(subject, operation, Err(refusal)).await,
            Ok(()) => {
                let outcome = transaction!(spine, |$db| $body);
                spine.audited(subject, operation, outcome).await
            }
        }
    }};
}

/// `operator_read_use_case!(spine, operator, operation, tenant, |db| body)`: a platform read,
/// authorized like `operator_use_case!`, on the pool.
macro_rules! operator_read_use_case {
    ($spine:expr, $operator:expr, $operation:expr, $tenant:expr, |$db:ident| $body:expr) => {{
        let spine: &$crate::Spine = $spine;
        let operator: &$crate::OperatorPrincipal = $operator;
        let operation: $crate::Operation = $operation;
        let subject = $crate::use_case::Subject::Operator(operator, $tenant);
        match $crate::authorize::authorize_operator(operator, operation) {
            Err(refusal) => spine.audited(subject, operation, Err(refusal)).await,
            Ok(()) => {
                let outcome = read!(spine, |$db| $body);
                spine.audited(subject, operation, outcome).await
            }
        }
    }};
}
