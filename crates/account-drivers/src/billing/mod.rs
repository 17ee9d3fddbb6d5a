//! Billing: the tenant's subscription and invoices, as the billing system reports them (one
//! submodule per table).

mod invoices;
mod subscriptions;
mod trials;

pub use invoices::*;
pub use subscriptions::*;
pub use trials::*;
