//! Billing use cases: a member's summary and invoices, and the billing integration's records
//! (operators only).

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::{OperatorPrincipal, Principal};
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::billing;
use account_engines::types::{SubscriptionStatus, TenantId};
use account_engines::{OffsetPage, Page};
use serde_json::json;

pub use account_engines::billing::{
    BillingSummary, Invoice, InvoiceUpsert, Subscription, SubscriptionUpsert,
};

pub mod trials;

/// The billing summary from stored data.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetBillingSummary;

impl Sealed for GetBillingSummary {}
impl UseCase for GetBillingSummary {
    type Output = BillingSummary;
    const OPERATION: Operation = Operation::BillingSummary;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<BillingSummary, SpineError> {
        Ok(billing::get_billing_summary(cx.db, cx.tenant()?, cx.now).await?)
    }
}

/// The tenant's invoices.
#[derive(Clone, Copy, Debug)]
pub struct ListInvoices {
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListInvoices {}
impl UseCase for ListInvoices {
    type Output = Page<Invoice>;
    const OPERATION: Operation = Operation::BillingInvoices;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<Invoice>, SpineError> {
        Ok(billing::get_billing_invoices(cx.db, cx.tenant()?, self.page).await?)
    }
}

/// Records a subscription as the billing system reports it (idempotent).
#[derive(Clone, Debug)]
pub struct RecordSubscription {
    /// The subscription as reported.
    pub change: SubscriptionUpsert,
}

impl Sealed for RecordSubscription {}
impl UseCase for RecordSubscription {
    type Output = Subscription;
    const OPERATION: Operation = Operation::BillingRecordSubscription;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Subscription, SpineError> {
        let change = &self.change;
        let before =
            billing::trials::status_before_report(cx.db, change.tenant_id, &change.external_id)
                .await?;
        let saved = billing::record_subscription(cx.db, change.clone(), cx.now).await?;
        let after = json!({"plan": saved.plan, "status": saved.status});
        let mut entry = Change::of("billing", &saved.external_id).after(after);
        if let Some(status) = before {
            entry = entry.before(json!({"status": status}));
        }
        cx.audit(entry).await?;
        // A payment reported during a grace ends it: the subscription is paid again.
        if before == Some(SubscriptionStatus::Grace) && saved.status == SubscriptionStatus::Active {
            cx.publish(DomainEvent::SubscriptionConverted {
                tenant_id: saved.tenant_id,
                external_id: saved.external_id.clone(),
                plan: saved.plan.clone(),
            });
        }
        Ok(saved)
    }
}

impl OperatorUseCase for RecordSubscription {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.change.tenant_id)
    }
}

/// Records an invoice as the billing system reports it (idempotent).
#[derive(Clone, Debug)]
pub struct RecordInvoice {
    /// The invoice as reported.
    pub invoice: InvoiceUpsert,
}

impl Sealed for RecordInvoice {}
impl UseCase for RecordInvoice {
    type Output = Invoice;
    const OPERATION: Operation = Operation::BillingRecordInvoice;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Invoice, SpineError> {
        let saved = billing::record_invoice(cx.db, self.invoice.clone(), cx.now).await?;
        let after = json!({"status": saved.status, "amount_due_cents": saved.amount_due_cents});
        cx.audit(Change::of("billing", &saved.external_id).after(after))
            .await?;
        Ok(saved)
    }
}

impl OperatorUseCase for RecordInvoice {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.invoice.tenant_id)
    }
}

impl Spine {
    /// Executes [`GetBillingSummary`].
    pub async fn billing_summary(
        &self,
        principal: &Principal,
    ) -> Result<BillingSummary, SpineError> {
        self.execute(principal, GetBillingSummary).await
    }

    /// Executes [`ListInvoices`].
    pub async fn list_invoices(
        &self,
        principal: &Principal,
        page: OffsetPage,
    ) -> Result<Page<Invoice>, SpineError> {
        self.execute(principal, ListInvoices { page }).await
    }

    /// Executes [`RecordSubscription`].
    pub async fn record_subscription(
        &self,
        operator: &OperatorPrincipal,
        change: SubscriptionUpsert,
    ) -> Result<Subscription, SpineError> {
        self.execute_as_operator(operator, RecordSubscription { change })
            .await
    }

    /// Executes [`RecordInvoice`].
    pub async fn record_invoice(
        &self,
        operator: &OperatorPrincipal,
        invoice: InvoiceUpsert,
    ) -> Result<Invoice, SpineError> {
        self.execute_as_operator(operator, RecordInvoice { invoice })
            .await
    }
}
