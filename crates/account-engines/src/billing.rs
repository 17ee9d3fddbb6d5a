//! Billing: the summary and invoices from stored data, and the writes the billing
//! integration makes (subscription changes and invoices, idempotent by external id).

use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
use account_drivers::invoices::InvoiceSnapshot;
pub use account_drivers::invoices::{InvoiceSnapshot as Invoice, InvoiceUpsert};
use account_drivers::subscriptions::SubscriptionSnapshot;
pub use account_drivers::subscriptions::{
    SubscriptionSnapshot as Subscription, SubscriptionUpsert,
};
use account_drivers::tenants::TenantCoreSnapshot;
use account_drivers::types::{InvoiceId, SubscriptionId, TenantId};
use account_drivers::{get_accounts_facade_driver, get_tenant_driver};
use chrono::{DateTime, Utc};

/// Why a billing operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// No such tenant.
    #[error("tenant not found")]
    TenantNotFound,
    /// The external id is empty or longer than 100 characters.
    #[error("external id must be 1 to 100 characters")]
    InvalidExternalId,
    /// The currency is not a three-letter code.
    #[error("currency must be a three-letter ISO 4217 code")]
    InvalidCurrency,
    /// Amounts are negative, or a period ends before it starts.
    #[error("{0}")]
    InvalidAmounts(&'static str),
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for BillingError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for BillingError {
    fn code(&self) -> &'static str {
        match self {
            Self::TenantNotFound => "tenant_not_found",
            Self::InvalidExternalId => "invalid_external_id",
            Self::InvalidCurrency => "invalid_currency",
            Self::InvalidAmounts(_) => "invalid_amounts",
            Self::InvalidPage => "invalid_page",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::TenantNotFound => 404,
            Self::InvalidExternalId
            | Self::InvalidCurrency
            | Self::InvalidAmounts(_)
            | Self::InvalidPage => 422,
            Self::Storage(e) => e.http_status(),
        }
    }
}

/// The billing summary: plan and quotas, usage this period, subscription, latest invoices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingSummary {
    /// The tenant's plan, quotas and counters.
    pub tenant: TenantCoreSnapshot,
    /// The current subscription, if the billing system reported one.
    pub subscription: Option<SubscriptionSnapshot>,
    /// The five most recent invoices.
    pub recent_invoices: Vec<InvoiceSnapshot>,
}

/// Assembles the summary from stored data (no stand-in values).
pub async fn summary(db: Db<'_>, tenant: TenantId) -> Result<BillingSummary, BillingError> {
    let snapshot = get_tenant_driver(db)
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(BillingError::TenantNotFound)?;
    let facade = get_accounts_facade_driver(db);
    let subscription = facade.fetch_subscription(tenant).await?;
    let recent_invoices = facade
        .fetch_invoices(
            tenant,
            OffsetPage {
                limit: 5,
                offset: 0,
            },
        )
        .await?
        .items;
    Ok(BillingSummary {
        tenant: snapshot,
        subscription,
        recent_invoices,
    })
}

/// The tenant's invoices, newest first.
pub async fn invoices(
    db: Db<'_>,
    tenant: TenantId,
    page: OffsetPage,
) -> Result<Page<InvoiceSnapshot>, BillingError> {
    if page.limit == 0 || page.limit > 100 {
        return Err(BillingError::InvalidPage);
    }
    Ok(get_accounts_facade_driver(db)
        .fetch_invoices(tenant, page)
        .await?)
}

fn check_external_id(id: &str) -> Result<(), BillingError> {
    if id.trim().is_empty() || id.chars().count() > 100 {
        return Err(BillingError::InvalidExternalId);
    }
    Ok(())
}

/// Records the subscription as the billing system reports it (replays are no-ops).
pub async fn record_subscription(
    db: Db<'_>,
    mut change: SubscriptionUpsert,
    now: DateTime<Utc>,
) -> Result<SubscriptionSnapshot, BillingError> {
    check_external_id(&change.external_id)?;
    if let (Some(start), Some(end)) = (change.current_period_start, change.current_period_end)
        && end <= start
    {
        return Err(BillingError::InvalidAmounts(
            "the period must end after it starts",
        ));
    }
    change.id = SubscriptionId::new();
    Ok(get_accounts_facade_driver(db)
        .upsert_subscription(change, now)
        .await?)
}

/// Records an invoice as the billing system reports it (replays are no-ops).
pub async fn record_invoice(
    db: Db<'_>,
    mut invoice: InvoiceUpsert,
    now: DateTime<Utc>,
) -> Result<InvoiceSnapshot, BillingError> {
    check_external_id(&invoice.external_id)?;
    if invoice.currency.len() != 3 || !invoice.currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(BillingError::InvalidCurrency);
    }
    invoice.currency = invoice.currency.to_ascii_lowercase();
    if invoice.amount_due_cents < 0 || invoice.amount_paid_cents < 0 {
        return Err(BillingError::InvalidAmounts("amounts must not be negative"));
    }
    if invoice.period_end <= invoice.period_start {
        return Err(BillingError::InvalidAmounts(
            "the billed period must end after it starts",
        ));
    }
    invoice.id = InvoiceId::new();
    Ok(get_accounts_facade_driver(db)
        .upsert_invoice(invoice, now)
        .await?)
}
