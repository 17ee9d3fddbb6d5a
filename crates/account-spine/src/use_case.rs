//! The frame every use case runs in: a span and counters ([`Spine::observe`]), authority,
//! tenant capability, transaction, audit — of the change, or of the refusal.

use crate::authorize::check_capability;
use crate::operations::Operation;
use crate::principal::{Actor, OperatorPrincipal, Principal, RequestMeta};
use crate::{Spine, SpineError};
use account_engines::audit::{self, AuditEntry};
use account_engines::types::{ActorType, TenantId};
use account_engines::{Db, ErrorCode, tenants};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

/// Who calls a use case, for which tenant: what its span, its counters and the audit row of a
/// refusal say about the caller.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject<'a> {
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
    /// Someone presenting an API key, before it is verified (no tenant yet, never audited).
    KeyPresenter(&'a RequestMeta),
}

impl Subject<'_> {
    fn tenant(self) -> Option<TenantId> {
        match self {
            Subject::Principal(principal) => Some(principal.tenant_id),
            Subject::Operator(_, tenant) => tenant,
            Subject::TokenHolder { tenant, .. } => Some(tenant),
            Subject::KeyPresenter(_) => None,
        }
    }

    fn request(&self) -> &RequestMeta {
        match self {
            Subject::Principal(principal) => &principal.request,
            Subject::Operator(operator, _) => &operator.request,
            Subject::TokenHolder { request, .. } | Subject::KeyPresenter(request) => request,
        }
    }

    fn actor_kind(self) -> &'static str {
        match self {
            Subject::Principal(Principal {
                actor: Actor::User { .. },
                ..
            }) => "user",
            Subject::Principal(Principal {
                actor: Actor::ApiKey { .. },
                ..
            }) => "api_key",
            Subject::Operator(..) => "operator",
            Subject::TokenHolder { .. } => "token_holder",
            Subject::KeyPresenter(_) => "key_presenter",
        }
    }
}

impl Spine {
    /// Runs one use case inside a span named by the operation (with request id, tenant id and
    /// actor kind, never a secret) and counts it: calls, errors by code, duration.
    pub(crate) async fn observe<T>(
        &self,
        operation: Operation,
        subject: Subject<'_>,
        use_case: impl Future<Output = Result<T, SpineError>>,
    ) -> Result<T, SpineError> {
        let span = operation.span();
        if let Some(request_id) = subject.request().request_id.as_deref() {
            span.record("request_id", request_id);
        }
        if let Some(tenant) = subject.tenant() {
            span.record("tenant_id", tracing::field::display(tenant));
        }
        span.record("actor", subject.actor_kind());
        self.metrics.started(operation);
        let started = Instant::now();
        let outcome = use_case.instrument(span.clone()).await;
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

    /// Passes `outcome` through; when it is a refusal ([`SpineError::is_refusal`]), first
    /// audits it in a transaction of its own. Call it after the use case's transaction
    /// finished, so the refused change is rolled back while the refusal row commits.
    pub(crate) async fn audited<T>(
        &self,
        subject: Subject<'_>,
        operation: Operation,
        outcome: Result<T, SpineError>,
    ) -> Result<T, SpineError> {
        if let Err(refusal) = &outcome
            && refusal.is_refusal()
        {
            self.audit_refusal(subject, operation, refusal).await;
        }
        outcome
    }

    async fn audit_refusal(
        &self,
        subject: Subject<'_>,
        operation: Operation,
        refusal: &SpineError,
    ) {
        let Some(entry) = refusal_entry(subject, operation, refusal) else {
            return;
        };
        let now = self.clock.now();
        let written = transaction!(self, |db| {
            audit::record(db, entry.clone(), now)
                .await
                .map_err(SpineError::from)
        });
        if let Err(error) = written {
            tracing::warn!(
                code = error.code(),
                operation = operation.name(),
                "could not audit a refusal"
            );
        }
    }
}

/// The action of every refusal's audit row.
pub(crate) const REFUSAL_ACTION: &str = "authorization.refused";

/// The audit row of a refusal: the operation as resource, the error code as reason. `None`
/// for callers who are not known yet (an unverified key).
fn refusal_entry(
    subject: Subject<'_>,
    operation: Operation,
    refusal: &SpineError,
) -> Option<AuditEntry> {
    let mut detail = json!({
        "operation": operation.name(),
        "code": refusal.code(),
        "message": refusal.to_string(),
    });
    let mut entry = match subject {
        Subject::Principal(principal) => entry(
            principal,
            REFUSAL_ACTION,
            "operation",
            operation.name(),
            None,
            None,
        ),
        Subject::Operator(operator, tenant) => {
            detail["operator"] = Json::String(operator.operator_id.clone());
            bare_entry(tenant, ActorType::Founder, &operator.request)
        }
        Subject::TokenHolder { tenant, request } => {
            bare_entry(Some(tenant), ActorType::User, request)
        }
        Subject::KeyPresenter(_) => return None,
    };
    entry.resource_id = Some(operation.name().to_owned());
    entry.reason = Some(refusal.code().to_owned());
    entry.new_value = Some(detail);
    Some(entry)
}

/// A refusal row for a caller with no user or key id.
fn bare_entry(
    tenant: Option<TenantId>,
    actor_type: ActorType,
    request: &RequestMeta,
) -> AuditEntry {
    let request = request.bounded();
    AuditEntry {
        tenant_id: tenant,
        actor_type,
        user_id: None,
        api_key_id: None,
        action: REFUSAL_ACTION.to_owned(),
        resource_type: "operation".to_owned(),
        resource_id: None,
        reason: None,
        old_value: None,
        new_value: None,
        ip_address: request.ip_address,
        user_agent: request.user_agent,
        request_id: request.request_id,
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
    let request = principal.request.bounded();
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
        ip_address: request.ip_address,
        user_agent: request.user_agent,
        request_id: request.request_id,
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
