//! Billing: the summary and the invoices, from stored data (admins and owners). Billing
//! records are written by the platform (the spine's `record_subscription`, `record_invoice`),
//! never over HTTP; an operator starts a trial over the platform routes ([`trials`]).
//!
//! These routes act as a person, so they answer only to a key issued for a user (a personal
//! key, as bootstrap issues the owner's): it acts on that user's behalf, within both its
//! permissions and the user's current role. A machine key (issued for no user) gets a 403.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::types::InvoiceStatus;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) mod trials;

/// An invoice.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvoiceView {
    /// The billing system's id.
    external_id: String,
    /// Invoice number.
    number: Option<String>,
    /// Status.
    #[schema(value_type = String)]
    status: InvoiceStatus,
    /// ISO currency.
    currency: String,
    /// Amount due, in cents.
    amount_due_cents: i64,
    /// Amount paid, in cents.
    amount_paid_cents: i64,
    /// Period start.
    period_start: DateTime<Utc>,
    /// Period end.
    period_end: DateTime<Utc>,
    /// Issue time.
    issued_at: DateTime<Utc>,
    /// Due date.
    due_at: Option<DateTime<Utc>>,
    /// Payment time.
    paid_at: Option<DateTime<Utc>>,
    /// The billing system's page for it.
    hosted_url: Option<String>,
}

fn invoice_view(i: account_spine::billing::Invoice) -> InvoiceView {
    InvoiceView {
        external_id: i.external_id,
        number: i.number,
        status: i.status,
        currency: i.currency,
        amount_due_cents: i.amount_due_cents,
        amount_paid_cents: i.amount_paid_cents,
        period_start: i.period_start,
        period_end: i.period_end,
        issued_at: i.issued_at,
        due_at: i.due_at,
        paid_at: i.paid_at,
        hosted_url: i.hosted_url,
    }
}

/// The billing summary.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BillingView {
    /// The tenant's plan.
    plan: String,
    /// The current subscription (its trial's and grace's ends among it), if there is one.
    subscription: Option<trials::SubscriptionView>,
    /// When the next invoice is due to be issued.
    next_invoice_date: Option<DateTime<Utc>>,
    /// The five most recent invoices.
    recent_invoices: Vec<InvoiceView>,
}

/// The billing summary, from stored data (admins and owners).
#[utoipa::path(
    get,
    path = "/v1/billing",
    tag = "billing",
    operation_id = "billing_summary",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The summary.", body = BillingView))
)]
pub(crate) async fn billing_summary(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<BillingView>, ApiError> {
    let summary = state.spine.billing_summary(&principal).await?;
    Ok(Json(BillingView {
        plan: summary.tenant.plan.to_string(),
        subscription: summary.subscription.map(trials::subscription_view),
        next_invoice_date: summary.next_invoice_date,
        recent_invoices: summary
            .recent_invoices
            .into_iter()
            .map(invoice_view)
            .collect(),
    }))
}

/// The tenant's invoices (admins and owners).
#[utoipa::path(
    get,
    path = "/v1/billing/invoices",
    tag = "billing",
    operation_id = "list_invoices",
    security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of invoices.", body = ListBody<InvoiceView>))
)]
pub(crate) async fn list_invoices(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ListBody<InvoiceView>>, ApiError> {
    let page = page.offset_page();
    let found = state.spine.list_invoices(&principal, page).await?;
    Ok(Json(ListBody::from_page(found, page, invoice_view)))
}
