//! Platform operator keys: created, listed and revoked by the platform's own tooling (the
//! `account-api operator-key` subcommand, which acts as an [`OperatorPrincipal`] of its own),
//! never by a tenant; verified into the [`OperatorPrincipal`] that platform operations take.
//! A tenant key never verifies here and an operator key never as a tenant key: the prefixes
//! differ (`acc_op_` and `acc_live_`) and the digests live in different tables.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::{OperatorPrincipal, RequestMeta};
use crate::use_case::{
    Caller, Change, Context, KEY_OPERATOR_PREFIX, OperatorUseCase, Sealed, UseCase,
};
use account_engines::operators;
use account_engines::types::{OperatorKeyId, TenantId};
use chrono::{DateTime, Utc};
use serde_json::json;

pub use account_engines::operators::{
    CreatedOperatorKey, OPERATOR_KEY_PREFIX, OperatorKeySnapshot, PlaintextOperatorKey,
    is_operator_key,
};

/// An operator key as listed: never the digest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperatorKeyInfo {
    /// Id.
    pub id: OperatorKeyId,
    /// Label.
    pub name: String,
    /// Display prefix.
    pub key_prefix: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&OperatorKeySnapshot> for OperatorKeyInfo {
    fn from(key: &OperatorKeySnapshot) -> Self {
        Self {
            id: key.id,
            name: key.name.clone(),
            key_prefix: key.key_prefix.clone(),
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// The operator principal of a key.
fn principal_of(key: &OperatorKeySnapshot, request: RequestMeta) -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: format!("{KEY_OPERATOR_PREFIX}{}", key.id),
        request,
    }
}

/// The platform audit row (no tenant) of an operator-key change: the actor is the operator
/// (`actor_type = operator`, with the operator key it acted with, if any), and the
/// operator's own name is the reason, so tooling identities are kept too.
fn key_change(id: OperatorKeyId, name: &str, key_prefix: &str) -> Change {
    Change::of("operator_key", id).after(json!({"name": name, "key_prefix": key_prefix}))
}

/// Creates an operator key (platform tooling only: the operator is the tool's own identity,
/// e.g. `cli:operator-key`, or an operator key). The plaintext is in the result, once; the
/// row is audited.
#[derive(Clone, Debug)]
pub struct CreateOperatorKey {
    /// Its label.
    pub name: String,
}

impl Sealed for CreateOperatorKey {}
impl UseCase for CreateOperatorKey {
    type Output = CreatedOperatorKey;
    const OPERATION: Operation = Operation::OperatorKeysCreate;

    async fn run(&self, cx: &mut Context<'_>) -> Result<CreatedOperatorKey, SpineError> {
        let created =
            operators::create_operator_key(cx.db, cx.pepper()?, &self.name, cx.now).await?;
        let key = &created.key;
        cx.audit(key_change(key.id, &key.name, &key.key_prefix))
            .await?;
        Ok(created)
    }
}

impl OperatorUseCase for CreateOperatorKey {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// Every operator key, oldest first (never a digest).
#[derive(Clone, Copy, Debug, Default)]
pub struct ListOperatorKeys;

impl Sealed for ListOperatorKeys {}
impl UseCase for ListOperatorKeys {
    type Output = Vec<OperatorKeyInfo>;
    const OPERATION: Operation = Operation::OperatorKeysList;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Vec<OperatorKeyInfo>, SpineError> {
        let keys = operators::list_operator_keys(cx.db).await?;
        Ok(keys.iter().map(OperatorKeyInfo::from).collect())
    }
}

impl OperatorUseCase for ListOperatorKeys {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// Revokes an operator key; it stops verifying at once.
#[derive(Clone, Copy, Debug)]
pub struct RevokeOperatorKey {
    /// The key.
    pub id: OperatorKeyId,
}

impl Sealed for RevokeOperatorKey {}
impl UseCase for RevokeOperatorKey {
    type Output = ();
    const OPERATION: Operation = Operation::OperatorKeysRevoke;

    async fn run(&self, cx: &mut Context<'_>) -> Result<(), SpineError> {
        operators::revoke_operator_key(cx.db, self.id, cx.now).await?;
        cx.audit(key_change(self.id, "", "")).await
    }
}

impl OperatorUseCase for RevokeOperatorKey {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

impl Spine {
    /// Executes [`CreateOperatorKey`].
    pub async fn create_operator_key(
        &self,
        operator: &OperatorPrincipal,
        name: &str,
    ) -> Result<CreatedOperatorKey, SpineError> {
        let name = name.to_owned();
        self.execute_as_operator(operator, CreateOperatorKey { name })
            .await
    }

    /// Executes [`ListOperatorKeys`].
    pub async fn list_operator_keys(
        &self,
        operator: &OperatorPrincipal,
    ) -> Result<Vec<OperatorKeyInfo>, SpineError> {
        self.execute_as_operator(operator, ListOperatorKeys).await
    }

    /// Executes [`RevokeOperatorKey`].
    pub async fn revoke_operator_key(
        &self,
        operator: &OperatorPrincipal,
        id: OperatorKeyId,
    ) -> Result<(), SpineError> {
        self.execute_as_operator(operator, RevokeOperatorKey { id })
            .await
    }

    /// Verifies a presented operator key and returns the operator it acts as. A tenant key is
    /// refused as malformed before any database access.
    pub async fn authenticate_operator_key(
        &self,
        presented: &str,
        request: RequestMeta,
    ) -> Result<OperatorPrincipal, SpineError> {
        let operation = Operation::OperatorKeysVerify;
        let key = self
            .observe(operation, Caller::KeyPresenter(&request), async {
                let pepper = self.pepper()?;
                Ok(operators::verify_operator_key(self.pool_db(), pepper, presented).await?)
            })
            .await?;
        Ok(principal_of(&key, request))
    }
}
