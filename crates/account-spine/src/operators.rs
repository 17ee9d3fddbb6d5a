//! Platform operator keys: created, listed and revoked by the platform's own tooling (the
//! `account-api operator-key` subcommand, which acts as an [`OperatorPrincipal`] of its own),
//! never by a tenant; verified into the [`OperatorPrincipal`] that platform operations take.
//! A tenant key never verifies here and an operator key never as a tenant key: the prefixes
//! differ (`acc_op_` and `acc_live_`) and the digests live in different tables.
//!
//! The tenant's own quota read lives here too: it is what an operator changes with a plan.

use crate::operations::Operation;
use crate::principal::{OperatorPrincipal, Principal, RequestMeta};
use crate::use_case::Subject;
use crate::{Spine, SpineError};
use account_engines::audit::{self, AuditEntry};
use account_engines::operators;
use account_engines::tenants;
use account_engines::types::{ActorType, ApiKeyId, OperatorKeyId, Plan, TenantStatus};
use chrono::{DateTime, Datelike, Utc};
use serde_json::json;

pub use account_engines::operators::{
    CreatedOperatorKey, OPERATOR_KEY_PREFIX, OperatorKeySnapshot, PlaintextOperatorKey,
    is_operator_key,
};

/// An operator key as listed: never the digest.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// A tenant's plan quotas and its counters in the current periods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantQuotas {
    /// The plan.
    pub plan: Plan,
    /// The lifecycle status.
    pub status: TenantStatus,
    /// Runs allowed per UTC day.
    pub max_runs_per_day: i32,
    /// Runs at once.
    pub max_concurrent_runs: i32,
    /// Tokens per UTC month.
    pub max_tokens_per_month: i64,
    /// Active API keys.
    pub max_api_keys: i32,
    /// Workers.
    pub max_workers: i32,
    /// Runs admitted today (UTC).
    pub runs_today: i32,
    /// Runs admitted this month (UTC).
    pub runs_this_month: i32,
    /// Tokens recorded this month (UTC).
    pub tokens_this_month: i64,
}

/// The `operator_id` of a key's operator: `operator_key:<id>`.
const KEY_OPERATOR_PREFIX: &str = "operator_key:";

/// The operator principal of a key.
fn principal_of(key: &OperatorKeySnapshot, request: RequestMeta) -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: format!("{KEY_OPERATOR_PREFIX}{}", key.id),
        request,
    }
}

/// The operator key an operator acts with, when it was verified from one (platform tooling
/// such as the CLI acts under a name of its own and has none).
fn acting_operator_key(operator: &OperatorPrincipal) -> Option<OperatorKeyId> {
    operator
        .operator_id
        .strip_prefix(KEY_OPERATOR_PREFIX)
        .and_then(|id| id.parse().ok())
}

impl Spine {
    /// Writes a platform audit row (no tenant) for an operator-key change. The actor is the
    /// operator: `actor_type = operator`, and `api_key_id` holds the operator key it acted
    /// with, if any (the log has no foreign keys; the actor type says which kind of key the
    /// id names). The operator's own name is the reason, so tooling identities are kept too.
    async fn operator_key_audit(
        &self,
        db: account_engines::Db<'_>,
        operator: &OperatorPrincipal,
        operation: Operation,
        key: &OperatorKeyInfo,
        now: DateTime<Utc>,
    ) -> Result<(), SpineError> {
        let request = operator.request.bounded();
        audit::record(
            db,
            AuditEntry {
                tenant_id: None,
                actor_type: ActorType::Operator,
                user_id: None,
                api_key_id: acting_operator_key(operator)
                    .map(|id| ApiKeyId::from_uuid(id.as_uuid())),
                action: operation
                    .audit_action()
                    .unwrap_or(operation.name())
                    .to_owned(),
                resource_type: "operator_key".to_owned(),
                resource_id: Some(key.id.to_string()),
                reason: Some(format!("by {}", operator.operator_id)),
                old_value: None,
                new_value: Some(json!({"name": key.name, "key_prefix": key.key_prefix})),
                ip_address: request.ip_address,
                user_agent: request.user_agent,
                request_id: request.request_id,
            },
            now,
        )
        .await?;
        Ok(())
    }

    /// Creates an operator key (platform tooling only: `operator` is the tool's own identity,
    /// e.g. `cli:operator-key`, or an operator key). The plaintext is in the result, once;
    /// the row is audited.
    pub async fn create_operator_key(
        &self,
        operator: &OperatorPrincipal,
        name: &str,
    ) -> Result<CreatedOperatorKey, SpineError> {
        let operation = Operation::OperatorKeysCreate;
        self.observe(operation, Subject::Operator(operator, None), async {
            let pepper = self.pepper()?;
            let now = self.clock.now();
            operator_use_case!(self, operator, operation, None, |db| {
                let created = operators::create_operator_key(db, pepper, name, now).await?;
                let info = OperatorKeyInfo::from(&created.key);
                self.operator_key_audit(db, operator, operation, &info, now)
                    .await?;
                Ok(created)
            })
        })
        .await
    }

    /// Every operator key, oldest first (never a digest).
    pub async fn list_operator_keys(
        &self,
        operator: &OperatorPrincipal,
    ) -> Result<Vec<OperatorKeyInfo>, SpineError> {
        let operation = Operation::OperatorKeysList;
        self.observe(operation, Subject::Operator(operator, None), async {
            operator_read_use_case!(self, operator, operation, None, |db| {
                Ok(operators::list_operator_keys(db)
                    .await?
                    .iter()
                    .map(OperatorKeyInfo::from)
                    .collect())
            })
        })
        .await
    }

    /// Revokes an operator key; it stops verifying at once.
    pub async fn revoke_operator_key(
        &self,
        operator: &OperatorPrincipal,
        id: OperatorKeyId,
    ) -> Result<(), SpineError> {
        let operation = Operation::OperatorKeysRevoke;
        self.observe(operation, Subject::Operator(operator, None), async {
            let now = self.clock.now();
            operator_use_case!(self, operator, operation, None, |db| {
                operators::revoke_operator_key(db, id, now).await?;
                let info = OperatorKeyInfo {
                    id,
                    name: String::new(),
                    key_prefix: String::new(),
                    created_at: now,
                    revoked_at: Some(now),
                };
                self.operator_key_audit(db, operator, operation, &info, now)
                    .await
            })
        })
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
            .observe(operation, Subject::KeyPresenter(&request), async {
                let pepper = self.pepper()?;
                read!(self, |db| {
                    Ok(operators::verify_operator_key(db, pepper, presented).await?)
                })
            })
            .await?;
        Ok(principal_of(&key, request))
    }

    /// The principal's tenant's plan quotas and current-period counters (a counter from an
    /// earlier period reads as zero: counters reset lazily).
    pub async fn tenant_quotas(&self, principal: &Principal) -> Result<TenantQuotas, SpineError> {
        let operation = Operation::TenantGetQuotas;
        self.observe(operation, Subject::Principal(principal), async {
            let today = self.clock.now().date_naive();
            read_use_case!(self, principal, operation, |db| {
                let t = tenants::snapshot(db, principal.tenant_id).await?;
                let this_day = t.usage_day == Some(today);
                let this_month = t
                    .usage_month
                    .is_some_and(|m| m.year() == today.year() && m.month() == today.month());
                Ok(TenantQuotas {
                    plan: t.plan,
                    status: t.status,
                    max_runs_per_day: t.quotas.max_runs_per_day,
                    max_concurrent_runs: t.quotas.max_concurrent_runs,
                    max_tokens_per_month: t.quotas.max_tokens_per_month,
                    max_api_keys: t.quotas.max_api_keys,
                    max_workers: t.quotas.max_workers,
                    runs_today: if this_day { t.runs_today } else { 0 },
                    runs_this_month: if this_month { t.runs_this_month } else { 0 },
                    tokens_this_month: if this_month { t.tokens_this_month } else { 0 },
                })
            })
        })
        .await
    }
}
