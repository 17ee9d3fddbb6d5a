//! `support_tickets`.
