//! A write under an idempotency key, whole: the spine owns its transaction (the key's claim,
//! the use case, the stored response and the commit), the caller only renders the answer.

use super::{Claim, IdempotentRequest, StoredResponse};
use crate::database::Spine;
use crate::error::SpineError;
use crate::host::HostTransaction;
use crate::principal::{OperatorPrincipal, Principal};
use crate::use_case::{OperatorUseCase, UseCase};
use account_engines::types::TenantId;
use std::future::Future;

/// A use case with the caller it runs for: the same value runs on its own (no key) or in
/// the key's transaction ([`Spine::write_with_key`]).
pub trait KeyedWrite: Send {
    /// What the use case returns.
    type Output: Send;
    /// Runs it on its own, as without a key.
    fn run(self, spine: &Spine) -> impl Future<Output = Result<Self::Output, SpineError>> + Send;
    /// Claims the key for this caller in `txn`.
    fn claim(
        &self,
        txn: &mut HostTransaction<'_>,
        request: IdempotentRequest<'_>,
    ) -> impl Future<Output = Result<Claim, SpineError>> + Send;
    /// Runs it in `txn`.
    fn run_in(
        self,
        txn: &mut HostTransaction<'_>,
    ) -> impl Future<Output = Result<Self::Output, SpineError>> + Send;
}

/// A tenant use case for a principal.
#[derive(Debug)]
pub struct AsTenant<'a, U>(pub &'a Principal, pub U);

impl<U: UseCase> KeyedWrite for AsTenant<'_, U> {
    type Output = U::Output;

    async fn run(self, spine: &Spine) -> Result<U::Output, SpineError> {
        spine.execute(self.0, self.1).await
    }

    async fn claim(
        &self,
        txn: &mut HostTransaction<'_>,
        request: IdempotentRequest<'_>,
    ) -> Result<Claim, SpineError> {
        txn.claim_idempotency_key(self.0, request).await
    }

    async fn run_in(self, txn: &mut HostTransaction<'_>) -> Result<U::Output, SpineError> {
        txn.execute(self.0, self.1).await
    }
}

/// A platform use case of an operator on a tenant (whose keys the key joins).
#[derive(Debug)]
pub struct AsOperator<'a, U>(pub &'a OperatorPrincipal, pub TenantId, pub U);

impl<U: OperatorUseCase> KeyedWrite for AsOperator<'_, U> {
    type Output = U::Output;

    async fn run(self, spine: &Spine) -> Result<U::Output, SpineError> {
        spine.execute_as_operator(self.0, self.2).await
    }

    async fn claim(
        &self,
        txn: &mut HostTransaction<'_>,
        request: IdempotentRequest<'_>,
    ) -> Result<Claim, SpineError> {
        txn.claim_idempotency_key_as_operator(self.0, self.1, request)
            .await
    }

    async fn run_in(self, txn: &mut HostTransaction<'_>) -> Result<U::Output, SpineError> {
        txn.execute_as_operator(self.0, self.2).await
    }
}

/// What a keyed write answered.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyedAnswer<T> {
    /// It ran now: what the caller rendered.
    Fresh(T),
    /// An earlier request under the key ran: its stored response, to send again.
    Replay(StoredResponse),
}

impl Spine {
    /// Runs `write` under the idempotency key of `request`, in one transaction: the key is
    /// claimed (a held key replays its stored response, another request under it is refused),
    /// the use case runs, `render` turns its output into the answer and the response to store
    /// (`None`: store nothing, e.g. not a success), and everything commits together. A refused
    /// use case commits what it wrote of its refusal (its audit row) and releases the key, so
    /// a retry runs again.
    pub async fn write_with_key<W: KeyedWrite, T: Send>(
        &self,
        write: W,
        request: IdempotentRequest<'_>,
        render: impl FnOnce(W::Output) -> (Option<StoredResponse>, T) + Send,
    ) -> Result<KeyedAnswer<T>, SpineError> {
        let mut txn = self.begin_host_transaction().await?;
        match write.claim(&mut txn, request).await {
            Ok(Claim::Fresh) => {}
            Ok(Claim::Replay(stored)) => {
                // Nothing was written; the claim's statements are discarded.
                txn.rollback().await?;
                return Ok(KeyedAnswer::Replay(stored));
            }
            Err(error) => {
                txn.rollback().await?;
                return Err(error);
            }
        }
        let output = match write.run_in(&mut txn).await {
            Ok(output) => output,
            Err(error) => {
                if let Err(commit) = txn.commit().await {
                    tracing::warn!(error = %commit, "committing a refused keyed request failed");
                }
                return Err(error);
            }
        };
        let (stored, answer) = render(output);
        if let Some(stored) = stored {
            txn.store_idempotent_response(&stored).await?;
        }
        txn.commit().await?;
        Ok(KeyedAnswer::Fresh(answer))
    }
}
