//! Platform operations: only an [`OperatorPrincipal`] may call them (lifecycle, forced
//! onboarding, plans, billing records, tenant creation). Each is one audited transaction.

use crate::api_keys::key_audit;
use crate::operations::Operation;
use crate::principal::OperatorPrincipal;
use crate::use_case::Subject;
use crate::{DomainEvent, Spine, SpineError};
use account_engines::Db;
use account_engines::api_keys;
use account_engines::audit::{self, AuditEntry};
use account_engines::billing::{self, Invoice, InvoiceUpsert, Subscription, SubscriptionUpsert};
use account_engines::lifecycle::{self, LifecycleActor};
use account_engines::onboarding::{self, ForcedCompletion, OnboardingOutcome};
use account_engines::tenants::{self, CreateTenant, CreatedTenant};
use account_engines::types::{
    ActorType, MembershipRole, OnboardingState, Plan, TenantId, TenantStatus,
};
use account_engines::users;
use account_engines::{OffsetPage, Page};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

pub use account_engines::lifecycle::LifecycleEventSnapshot as LifecycleEvent;
pub use account_engines::lifecycle::{LifecycleAction, TransitionOutcome};

impl Spine {
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
        let request = operator.request.bounded();
        // The rows have no operator column: who acted goes into the recorded change, as in
        // an operator's refusal rows.
        let mut after = after.unwrap_or_else(|| json!({}));
        if let Some(fields) = after.as_object_mut() {
            fields.insert("operator".to_owned(), json!(operator.operator_id));
        }
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
                new_value: Some(after),
                ip_address: request.ip_address,
                user_agent: request.user_agent,
                request_id: request.request_id,
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
        self.observe(
            operation,
            Subject::Operator(operator, Some(tenant)),
            async {
                let now = self.clock.now();
                let actor = LifecycleActor {
                    actor_type: ActorType::Founder,
                    actor_id: operator.operator_id.clone(),
                };
                let outcome = operator_use_case!(self, operator, operation, Some(tenant), |db| {
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
                })?;
                if !outcome.was_no_op {
                    // Verification decides on the tenant's status: cached rows carry the old one.
                    self.verify_cache.invalidate_tenant(tenant);
                    self.events.publish(&DomainEvent::TenantStatusChanged {
                        tenant_id: tenant,
                        from: outcome.from,
                        to: outcome.to,
                    });
                    if outcome.to == TenantStatus::Suspended {
                        self.events.publish(&DomainEvent::TenantSuspended {
                            tenant_id: tenant,
                            reason: reason.to_owned(),
                        });
                    }
                }
                Ok(outcome)
            },
        )
        .await
    }

    /// The tenant's lifecycle history (operators only, like every platform operation).
    pub async fn lifecycle_history(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<LifecycleEvent>, SpineError> {
        let operation = Operation::LifecycleHistory;
        self.observe(
            operation,
            Subject::Operator(operator, Some(tenant)),
            async {
                operator_read_use_case!(self, operator, operation, Some(tenant), |db| {
                    Ok(lifecycle::history(db, tenant, page).await?)
                })
            },
        )
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
        self.observe(
            operation,
            Subject::Operator(operator, Some(tenant)),
            async {
                let now = self.clock.now();
                let force = ForcedCompletion {
                    actor_type: ActorType::Founder,
                    reason: reason.to_owned(),
                };
                operator_use_case!(self, operator, operation, Some(tenant), |db| {
                    let outcome = onboarding::advance(
                        db,
                        tenant,
                        OnboardingState::Complete,
                        Some(&force),
                        now,
                    )
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
            },
        )
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
        self.observe(
            operation,
            Subject::Operator(operator, Some(tenant)),
            async {
                let now = self.clock.now();
                operator_use_case!(self, operator, operation, Some(tenant), |db| {
                    let (before, after) = tenants::change_plan(db, tenant, plan, now).await?;
                    let (before, after) =
                        (json!({"plan": before.plan}), json!({"plan": after.plan}));
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
            },
        )
        .await
    }

    /// Records a subscription as the billing system reports it (idempotent).
    pub async fn record_subscription(
        &self,
        operator: &OperatorPrincipal,
        change: SubscriptionUpsert,
    ) -> Result<Subscription, SpineError> {
        let operation = Operation::BillingRecordSubscription;
        let tenant = Some(change.tenant_id);
        self.observe(operation, Subject::Operator(operator, tenant), async {
            let now = self.clock.now();
            operator_use_case!(self, operator, operation, tenant, |db| {
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
        let tenant = Some(invoice.tenant_id);
        self.observe(operation, Subject::Operator(operator, tenant), async {
            let now = self.clock.now();
            operator_use_case!(self, operator, operation, tenant, |db| {
                let tenant = invoice.tenant_id;
                let saved = billing::record_invoice(db, invoice.clone(), now).await?;
                let after =
                    json!({"status": saved.status, "amount_due_cents": saved.amount_due_cents});
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
        })
        .await
    }

    /// First run: creates the owner's account, their tenant and an owner API key, in one
    /// transaction. The key's plaintext is in the result, once.
    pub async fn bootstrap(
        &self,
        operator: &OperatorPrincipal,
        owner_email: &str,
        tenant_name: &str,
    ) -> Result<(CreatedTenant, api_keys::IssuedKey), SpineError> {
        let operation = Operation::TenantCreate;
        self.observe(operation, Subject::Operator(operator, None), async {
        let pepper = self.pepper()?;
        let now = self.clock.now();
        operator_use_case!(self, operator, operation, None, |db| {
            let owner = users::create_user(db, owner_email, None, now).await?;
            let created = tenants::create_tenant(
                db,
                CreateTenant {
                    name: tenant_name.to_owned(),
                    slug: None,
                    plan: Plan::Free,
                    owner: owner.id,
                    billing_email: None,
                },
                now,
            )
            .await?;
            let request = api_keys::IssueKeyRequest {
                tenant_id: created.tenant.id,
                issuer: api_keys::KeyActor {
                    user_id: Some(owner.id),
                    role: MembershipRole::Owner,
                    issuing_key: None,
                    audit: key_audit(None, &operator.request),
                },
                name: "bootstrap".to_owned(),
                permissions: api_keys::permissions::OWNER_KEY_PERMISSIONS
                    .iter().map(|p| (*p).to_owned()).collect(),
                allowed_workers: None,
                rate_limit_rpm: None,
                max_concurrent_runs: None,
                expires_at: None,
            };
            let key = api_keys::issue_api_key(db, pepper, request, now).await?;
            let after = json!({"slug": created.tenant.slug, "owner": owner.id, "key_prefix": key.key.key_prefix});
            self.operator_audit(
                db,
                operator,
                operation,
                Some(created.tenant.id),
                &created.tenant.id.to_string(),
                None,
                None,
                Some(after),
                now,
            )
            .await?;
            Ok((created, key))
        })
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
        self.observe(operation, Subject::Operator(operator, None), async {
        let now = self.clock.now();
        operator_use_case!(self, operator, operation, None, |db| {
            let created = tenants::create_tenant(db, request.clone(), now).await?;
            let after = json!({"slug": created.tenant.slug, "plan": created.tenant.plan, "owner": created.owner.user_id});
            self.operator_audit(
                db,
                operator,
                operation,
                Some(created.tenant.id),
                &created.tenant.id.to_string(),
                None,
                None,
                Some(after),
                now,
            )
            .await?;
            Ok(created)
        })
        })
        .await
    }
}
