//! `invoices`: invoices as the billing system reports them.

use crate::enums::*;
use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One invoice.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: InvoiceId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The billing system's id; unique per tenant, so recording twice is a no-op.
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

crate::schema::table!("invoices");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
