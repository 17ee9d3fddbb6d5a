//! Platform operations: only an [`OperatorPrincipal`] may call them (lifecycle, forced
//! onboarding, plans, billing records, tenant creation). Each is one audited transaction.

use crate::operations::{Authority, Operation};
use crate::principal::OperatorPrincipal;
use crate::{DomainEvent, Spine, SpineError};
use account_engines::Db;
use account_engines::audit::{self, AuditEntry};
use account_engines::billing::{self, Invoice, InvoiceUpsert, Subscription, SubscriptionUpsert};
use account_engines::lifecycle::{self, LifecycleAction, LifecycleActor, TransitionOutcome};
use account_engines::onboarding::{self, ForcedCompletion, OnboardingOutcome};
use account_engines::tenants::{self, CreateTenant, CreatedTenant};
use account_engines::types::{ActorType, OnboardingState, Plan, TenantId};
use account_engines::{OffsetPage, Page};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

pub use account_engines::lifecycle::LifecycleEventSnapshot as LifecycleEvent;

impl Spine {
    async fn write_as_operator<T>(
        &self,
        operator: &OperatorPrincipal,
        operation: Operation,
        work: impl AsyncFn(Db<'_>) -> Result<T, SpineError>,
    ) -> Result<T, SpineError> {
        if operation.authority() != Authority::Operator {
            return Err(SpineError::forbidden(operation, "a tenant principal"));
        }
        let _span = tracing::info_span!("operator_use_case", operation = operation.name(), operator = %operator.operator_id).entered();
        self.write(work).await
    }

    #[allow(clippy::too_many_arguments)] // one row, many columns
    async fn operator_audit(
        &self,
        db: Db<'_>,
        operator: &OperatorPrincipal,
        operation: Operation,
        tenant: Option<TenantId>,
        resource_id: &str,
        reason: Option<&str>,
        before: Option<Json>,
        after: Option<Json>,
        now: DateTime<Utc>,
    ) -> Result<(), SpineError> {
        let (resource_type, _) = operation
            .name()
            .split_once('.')
            .unwrap_or((operation.name(), ""));
        audit::record(
            db,
            AuditEntry {
                tenant_id: tenant,
                actor_type: ActorType::Founder,
                user_id: None,
                api_key_id: None,
                action: operation
                    .audit_action()
                    .unwrap_or(operation.name())
                    .to_owned(),
                resource_type: resource_type.to_owned(),
                resource_id: Some(resource_id.to_owned()),
                reason: reason.map(str::to_owned),
                old_value: before,
                new_value: after,
                ip_address: operator.request.ip_address.clone(),
                user_agent: operator.request.user_agent.clone(),
                request_id: operator.request.request_id.clone(),
            },
            now,
        )
        .await?;
        Ok(())
    }

    /// Suspends, resumes, terminates or archives a tenant, recording actor and reason.
    pub async fn transition_tenant(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        action: LifecycleAction,
        reason: &str,
    ) -> Result<TransitionOutcome, SpineError> {
        let operation = Operation::LifecycleTransition;
        let now = self.clock.now();
        let actor = LifecycleActor {
            actor_type: ActorType::Founder,
            actor_id: operator.operator_id.clone(),
        };
        let outcome = self
            .write_as_operator(operator, operation, async |db| {
                let outcome =
                    lifecycle::transition(db, tenant, action, &actor, reason, now).await?;
                if !outcome.was_no_op {
                    let (before, after) = (
                        json!({"status": outcome.from}),
                        json!({"status": outcome.to}),
                    );
                    self.operator_audit(
                        db,
                        operator,
                        operation,
                        Some(tenant),
                        &tenant.to_string(),
                        Some(reason),
                        Some(before),
                        Some(after),
                        now,
                    )
                    .await?;
                }
                Ok(outcome)
            })
            .await?;
        if !outcome.was_no_op {
            self.events.publish(&DomainEvent::TenantStatusChanged {
                tenant_id: tenant,
                from: outcome.from,
                to: outcome.to,
            });
        }
        Ok(outcome)
    }

    /// The tenant's lifecycle history.
    pub async fn lifecycle_history(
        &self,
        _operator: &OperatorPrincipal,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<LifecycleEvent>, SpineError> {
        self.read(async |db| Ok(lifecycle::history(db, tenant, page).await?))
            .await
    }

    /// Completes onboarding without the activation evidence; the reason is audited.
    pub async fn force_complete_onboarding(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        reason: &str,
    ) -> Result<OnboardingOutcome, SpineError> {
        let operation = Operation::OnboardingForceComplete;
        let now = self.clock.now();
        let force = ForcedCompletion {
            actor_type: ActorType::Founder,
            reason: reason.to_owned(),
        };
        self.write_as_operator(operator, operation, async |db| {
            let outcome =
                onboarding::advance(db, tenant, OnboardingState::Complete, Some(&force), now)
                    .await?;
            if !outcome.was_no_op {
                let after = json!({"state": outcome.to, "forced": outcome.forced});
                self.operator_audit(
                    db,
                    operator,
                    operation,
                    Some(tenant),
                    &tenant.to_string(),
                    Some(reason),
                    None,
                    Some(after),
                    now,
                )
                .await?;
            }
            Ok(outcome)
        })
        .await
    }

    /// Moves the tenant to `plan` and re-applies its quotas.
    pub async fn change_plan(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        plan: Plan,
    ) -> Result<(), SpineError> {
        let operation = Operation::TenantChangePlan;
        let now = self.clock.now();
        self.write_as_operator(operator, operation, async |db| {
            let (before, after) = tenants::change_plan(db, tenant, plan, now).await?;
            let (before, after) = (json!({"plan": before.plan}), json!({"plan": after.plan}));
            self.operator_audit(
                db,
                operator,
                operation,
                Some(tenant),
                &tenant.to_string(),
                None,
                Some(before),
                Some(after),
                now,
            )
            .await
        })
        .await
    }

    /// Records a subscription as the billing system reports it (idempotent).
    pub async fn record_subscription(
        &self,
        operator: &OperatorPrincipal,
        change: SubscriptionUpsert,
    ) -> Result<Subscription, SpineError> {
        let operation = Operation::BillingRecordSubscription;
        let now = self.clock.now();
        self.write_as_operator(operator, operation, async |db| {
            let tenant = change.tenant_id;
            let saved = billing::record_subscription(db, change.clone(), now).await?;
            let after = json!({"plan": saved.plan, "status": saved.status});
            self.operator_audit(
                db,
                operator,
                operation,
                Some(tenant),
                &saved.external_id,
                None,
                None,
                Some(after),
                now,
            )
            .await?;
            Ok(saved)
        })
        .await
    }

    /// Records an invoice as the billing system reports it (idempotent).
    pub async fn record_invoice(
        &self,
        operator: &OperatorPrincipal,
        invoice: InvoiceUpsert,
    ) -> Result<Invoice, SpineError> {
        let operation = Operation::BillingRecordInvoice;
        let now = self.clock.now();
        self.write_as_operator(operator, operation, async |db| {
            let tenant = invoice.tenant_id;
            let saved = billing::record_invoice(db, invoice.clone(), now).await?;
            let after = json!({"status": saved.status, "amount_due_cents": saved.amount_due_cents});
            self.operator_audit(
                db,
                operator,
                operation,
                Some(tenant),
                &saved.external_id,
                None,
                None,
                Some(after),
                now,
            )
            .await?;
            Ok(saved)
        })
        .await
    }

    /// Creates a tenant whose owner is an existing user (bootstrap, platform onboarding).
    pub async fn create_tenant(
        &self,
        operator: &OperatorPrincipal,
        request: CreateTenant,
    ) -> Result<CreatedTenant, SpineError> {
        let operation = Operation::TenantCreate;
        let now = self.clock.now();
        self.write_as_operator(operator, operation, async |db| {
            let created = tenants::create_tenant(db, request.clone(), now).await?;
            let after = json!({"slug": created.tenant.slug, "plan": created.tenant.plan, "owner": created.owner.user_id});
            self.operator_audit(db, operator, operation, Some(created.tenant.id), &created.tenant.id.to_string(), None, None, Some(after), now).await?;
            Ok(created)
        })
        .await
    }
}
