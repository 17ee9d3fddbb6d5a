//! `invoices` driver tests.
