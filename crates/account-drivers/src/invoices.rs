//! `invoices`.
