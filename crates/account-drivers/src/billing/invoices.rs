//! `invoices`: invoices as the billing system reports them.
//!
//! Written only by the billing integration, idempotently by (tenant, external id): recording
//! the same invoice twice updates one row.

use crate::{AccountsFacadeDriver, DriverError, OffsetPage, Page};
use account_models::entities::invoices;
use account_models::{InvoiceId, InvoiceStatus, TenantId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// An invoice as the engines see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvoiceSnapshot {
    /// Id.
    pub id: InvoiceId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The billing system's id.
    pub external_id: String,
    /// Human invoice number.
    pub number: Option<String>,
    /// Status.
    pub status: InvoiceStatus,
    /// ISO 4217 code, lower case.
    pub currency: String,
    /// Amount due, in cents.
    pub amount_due_cents: i64,
    /// Amount paid, in cents.
    pub amount_paid_cents: i64,
    /// Billed period start.
    pub period_start: DateTimeUtc,
    /// Billed period end.
    pub period_end: DateTimeUtc,
    /// Issue time.
    pub issued_at: DateTimeUtc,
    /// Due time.
    pub due_at: Option<DateTimeUtc>,
    /// Payment time.
    pub paid_at: Option<DateTimeUtc>,
    /// Where the customer can view it.
    pub hosted_url: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// An invoice as the billing system reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceUpsert {
    /// Id for the row if it is new (ignored when the external id is known).
    pub id: InvoiceId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The billing system's id.
    pub external_id: String,
    /// Human invoice number.
    pub number: Option<String>,
    /// Status.
    pub status: InvoiceStatus,
    /// ISO 4217 code, lower case.
    pub currency: String,
    /// Amount due, in cents.
    pub amount_due_cents: i64,
    /// Amount paid, in cents.
    pub amount_paid_cents: i64,
    /// Billed period start.
    pub period_start: DateTimeUtc,
    /// Billed period end.
    pub period_end: DateTimeUtc,
    /// Issue time.
    pub issued_at: DateTimeUtc,
    /// Due time.
    pub due_at: Option<DateTimeUtc>,
    /// Payment time.
    pub paid_at: Option<DateTimeUtc>,
    /// Where the customer can view it.
    pub hosted_url: Option<String>,
}

fn snapshot(m: invoices::Model) -> InvoiceSnapshot {
    InvoiceSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        external_id: m.external_id,
        number: m.number,
        status: m.status,
        currency: m.currency,
        amount_due_cents: m.amount_due_cents,
        amount_paid_cents: m.amount_paid_cents,
        period_start: m.period_start,
        period_end: m.period_end,
        issued_at: m.issued_at,
        due_at: m.due_at,
        paid_at: m.paid_at,
        hosted_url: m.hosted_url,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

impl AccountsFacadeDriver<'_> {
    /// Inserts the invoice, or rewrites the tenant's row with the same external id, in one
    /// statement (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`). The id and `created_at`
    /// of an existing row are kept.
    pub async fn upsert_invoice(
        &self,
        invoice: InvoiceUpsert,
        now: DateTimeUtc,
    ) -> Result<InvoiceSnapshot, DriverError> {
        use invoices::Column as C;
        let model = invoices::ActiveModel {
            id: Set(invoice.id),
            tenant_id: Set(invoice.tenant_id),
            external_id: Set(invoice.external_id),
            number: Set(invoice.number),
            status: Set(invoice.status),
            currency: Set(invoice.currency),
            amount_due_cents: Set(invoice.amount_due_cents),
            amount_paid_cents: Set(invoice.amount_paid_cents),
            period_start: Set(invoice.period_start),
            period_end: Set(invoice.period_end),
            issued_at: Set(invoice.issued_at),
            due_at: Set(invoice.due_at),
            paid_at: Set(invoice.paid_at),
            hosted_url: Set(invoice.hosted_url),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let row = invoices::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([C::TenantId, C::ExternalId])
                    .update_columns([
                        C::Number,
                        C::Status,
                        C::Currency,
                        C::AmountDueCents,
                        C::AmountPaidCents,
                        C::PeriodStart,
                        C::PeriodEnd,
                        C::IssuedAt,
                        C::DueAt,
                        C::PaidAt,
                        C::HostedUrl,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(snapshot(row))
    }

    /// The tenant's invoices, newest issue first (ties by id). Two statements: the count and
    /// the page.
    pub async fn fetch_invoices(
        &self,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<InvoiceSnapshot>, DriverError> {
        let query = || invoices::Entity::find().filter(invoices::Column::TenantId.eq(tenant));
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_desc(invoices::Column::IssuedAt)
            .order_by_desc(invoices::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(snapshot).collect(),
            total,
            page,
        ))
    }
}
