//! Use cases inside a host's own transaction: the host's writes and ours commit or roll back
//! together, and our events go out only if the host commits.

use crate::database::Spine;
use crate::error::SpineError;
use crate::execute::Release;
use crate::principal::{OperatorPrincipal, Principal};
use crate::replicas::Reader;
use crate::use_case::{Effect, OperatorUseCase, UseCase};
use account_engines::DriverError;
use account_engines::idempotency::KeyScope;
use sea_orm::DatabaseTransaction;

/// A transaction the host writes in and runs use cases in.
///
/// Each use case runs in a savepoint of it: a refused or failed use case rolls back to the
/// savepoint and leaves the host's earlier writes (and its refusal row, in this transaction)
/// in place. Nothing is retried here: on contention (`conflict_retry`) the host retries its
/// whole transaction. Events and cache invalidations wait for [`HostTransaction::commit`] and
/// are dropped by [`HostTransaction::rollback`] or by dropping the value (which rolls back).
///
/// ```rust,no_run
/// # async fn example(spine: account_spine::Spine, owner: account_spine::Principal) -> Result<(), account_spine::SpineError> {
/// use account_spine::runs::AdmitRun;
/// use sea_orm::ConnectionTrait;
///
/// let mut txn = spine.begin_host_transaction().await?;
/// // The host's own write, in the same transaction.
/// txn.connection()
///     .execute_unprepared("INSERT INTO orders (id) VALUES ('o-1')")
///     .await
///     .map_err(|e| account_spine::SpineError::Unavailable(e))?;
/// let run = txn
///     .execute(&owner, AdmitRun {
///         worker_id: "w".into(), task: "t".into(), input: None, token_estimate: 0,
///     })
///     .await?;
/// txn.commit().await?; // both rows, then `RunAdmitted` is published
/// # let _ = run; Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a host transaction rolls back when dropped; commit it"]
pub struct HostTransaction<'s> {
    spine: &'s Spine,
    txn: DatabaseTransaction,
    effects: Vec<Effect>,
    /// Who wrote in it: their reads after the commit must see it (read replicas).
    writers: Vec<Reader>,
    /// Idempotency keys claimed in it whose response is not stored yet.
    pub(crate) pending_claims: Vec<KeyScope>,
}

impl Spine {
    /// Begins a transaction on the spine's pool for the host to write in and run use cases
    /// in. On SQLite it starts `IMMEDIATE`, as the spine's own write transactions do.
    pub async fn begin_host_transaction(&self) -> Result<HostTransaction<'_>, SpineError> {
        let txn = self.begin_write().await?;
        Ok(HostTransaction::new(self, txn))
    }
}

impl<'s> HostTransaction<'s> {
    /// Wraps a transaction the host opened itself on the spine's database (its own pool is
    /// fine). From here on, commit and roll back through this value so events follow.
    pub fn new(spine: &'s Spine, txn: DatabaseTransaction) -> Self {
        Self {
            spine,
            txn,
            effects: Vec::new(),
            writers: Vec::new(),
            pending_claims: Vec::new(),
        }
    }

    /// The spine this transaction runs on.
    pub(crate) fn spine(&self) -> &'s Spine {
        self.spine
    }

    /// The transaction, for the host's own statements.
    pub fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Executes a tenant use case in this transaction (see [`Spine::execute`]).
    pub async fn execute<U: UseCase>(
        &mut self,
        principal: &Principal,
        use_case: U,
    ) -> Result<U::Output, SpineError> {
        let release = Release::OnHostCommit(&mut self.effects);
        let output = self
            .spine
            .execute_for(principal, use_case, Some(&self.txn), release)
            .await?;
        if U::OPERATION.writes() {
            self.writers.extend(Reader::of_principal(principal));
        }
        Ok(output)
    }

    /// Executes a platform use case in this transaction (see [`Spine::execute_as_operator`]).
    pub async fn execute_as_operator<U: OperatorUseCase>(
        &mut self,
        operator: &OperatorPrincipal,
        use_case: U,
    ) -> Result<U::Output, SpineError> {
        let release = Release::OnHostCommit(&mut self.effects);
        let output = self
            .spine
            .execute_as_operator_for(operator, use_case, Some(&self.txn), release)
            .await?;
        if U::OPERATION.writes() {
            self.writers
                .push(Reader::Operator(operator.operator_id.clone()));
        }
        Ok(output)
    }

    /// Commits the host's writes and the use cases' (their events with them), then applies
    /// their cache invalidations and wakes (or runs, see [`Spine::with_events`]) the event
    /// dispatcher. An idempotency key claimed here without a stored response (its write
    /// failed) is released first, so a retry runs again.
    pub async fn commit(mut self) -> Result<(), SpineError> {
        self.release_unanswered_claims().await?;
        self.txn
            .commit()
            .await
            .map_err(|e| SpineError::from(DriverError::from(e)))?;
        if let Some(replicas) = self.spine.replicas.as_deref() {
            replicas.remember_commit(self.writers).await;
        }
        self.spine.release(self.effects).await;
        Ok(())
    }

    /// Rolls everything back; no event is published.
    pub async fn rollback(self) -> Result<(), SpineError> {
        self.txn
            .rollback()
            .await
            .map_err(|e| SpineError::from(DriverError::from(e)))
    }
}

#[allow(dead_code)] // compile-time check only
fn host_transactions_are_send(txn: &mut HostTransaction<'_>, principal: &Principal) {
    fn send<T: Send>(_: T) {}
    let admit = crate::runs::AdmitRun {
        worker_id: String::new(),
        task: String::new(),
        input: None,
        token_estimate: 0,
    };
    send(txn.execute(principal, admit));
}
