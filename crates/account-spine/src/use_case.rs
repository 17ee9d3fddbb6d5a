//! The frame every use case runs in: authority, tenant capability, transaction, audit.

use crate::authorize::check_capability;
use crate::operations::Operation;
use crate::principal::{Actor, Principal};
use crate::{Spine, SpineError};
use account_engines::audit::{self, AuditEntry};
use account_engines::types::{ActorType, TenantId};
use account_engines::{Db, tenants};
use chrono::{DateTime, Utc};
use serde_json::Value as Json;

impl Spine {
    /// Writes the audit row of `operation` inside the caller's transaction.
    #[allow(clippy::too_many_arguments)] // one row, many columns
    pub(crate) async fn audit(
        &self,
        db: Db<'_>,
        principal: &Principal,
        operation: Operation,
        resource_type: &str,
        resource_id: &str,
        old_value: Option<Json>,
        new_value: Option<Json>,
        now: DateTime<Utc>,
    ) -> Result<(), SpineError> {
        let action = operation.audit_action().unwrap_or(operation.name());
        audit::record(
            db,
            entry(
                principal,
                action,
                resource_type,
                resource_id,
                old_value,
                new_value,
            ),
            now,
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn audit_refusal(
        &self,
        principal: &Principal,
        operation: Operation,
        refusal: &SpineError,
    ) {
        let now = self.clock.now();
        let detail =
            serde_json::json!({"operation": operation.name(), "reason": refusal.to_string()});
        let written = transaction!(self, |db| {
            audit::record(
                db,
                entry(
                    principal,
                    "authorization.refused",
                    "operation",
                    operation.name(),
                    None,
                    Some(detail.clone()),
                ),
                now,
            )
            .await
            .map_err(SpineError::from)
        });
        if let Err(error) = written {
            tracing::warn!(%error, operation = operation.name(), "could not audit a refusal");
        }
    }
}

fn entry(
    principal: &Principal,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    old_value: Option<Json>,
    new_value: Option<Json>,
) -> AuditEntry {
    let (actor_type, user_id, api_key_id) = match &principal.actor {
        Actor::User { user_id, .. } => (ActorType::User, Some(*user_id), None),
        Actor::ApiKey { key_id, .. } => (ActorType::ApiKey, None, Some(*key_id)),
    };
    AuditEntry {
        tenant_id: Some(principal.tenant_id),
        actor_type,
        user_id,
        api_key_id,
        action: action.to_owned(),
        resource_type: resource_type.to_owned(),
        resource_id: Some(resource_id.to_owned()),
        reason: None,
        old_value,
        new_value,
        ip_address: principal.request.ip_address.clone(),
        user_agent: principal.request.user_agent.clone(),
        request_id: principal.request.request_id.clone(),
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
    check_capability(status, operation)
}
