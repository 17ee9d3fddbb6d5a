//! Transaction ownership: every write use case runs through [`Spine::write`], and nothing else in
//! the workspace can begin, commit or roll back.
//!
//! A write transaction commits only when the whole use case succeeded, and rolls back
//! explicitly otherwise, so a failed operation leaves nothing half-written. Contention
//! (PostgreSQL serialization failures and deadlocks, SQLite's busy writer) retries the whole
//! use case a bounded number of times: each attempt starts from a fresh snapshot, so a retry
//! never mixes state from two attempts.

use crate::Spine;
use account_engines::{Db, DriverError};
use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
use std::time::Duration;

/// Attempts per write use case before contention is reported to the caller.
const MAX_ATTEMPTS: u32 = 5;

/// Errors of a use case, as far as the transaction runner needs to know them.
pub(crate) trait UseCaseError: From<DriverError> {
    /// Whether retrying the whole transaction may succeed.
    fn is_contention(&self) -> bool;
}

impl Spine {
    /// Runs `work` in one transaction: commit when it returns `Ok`, roll back otherwise.
    ///
    /// On SQLite the transaction starts `IMMEDIATE`: it takes the write lock up front, so
    /// concurrent writers queue on the busy timeout instead of failing a lock upgrade midway.
    pub(crate) async fn write<T, E>(
        &self,
        work: impl AsyncFn(Db<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: UseCaseError,
    {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let mut attempt = 1;
        loop {
            let txn = self
                .connection()
                .begin_with_options(options)
                .await
                .map_err(DriverError::from)?;
            let outcome = match work(Db::for_transaction(&txn)).await {
                Ok(value) => txn
                    .commit()
                    .await
                    .map(|()| value)
                    .map_err(|e| E::from(DriverError::from(e))),
                Err(error) => {
                    if let Err(rollback) = txn.rollback().await {
                        // The connection is discarded by the pool; the use case's own error
                        // is what the caller needs to see.
                        tracing::warn!(error = %rollback, "rollback failed");
                    }
                    Err(error)
                }
            };
            match outcome {
                Err(error) if error.is_contention() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "transaction contention; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Runs a read-only use case on the pool: no transaction, each statement sees committed
    /// data (reads that must be consistent with each other use [`Spine::write`] instead).
    pub(crate) async fn read<T, E>(
        &self,
        work: impl AsyncFnOnce(Db<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        work(Db::for_pool(self.connection())).await
    }
}

/// 5, 10, 20, 40 ms: short, because contended statements here are single-row and brief.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(5 << attempt.saturating_sub(1).min(4))
}
