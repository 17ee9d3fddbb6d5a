//! `support_tickets` driver tests.
