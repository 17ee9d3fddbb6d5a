//! Driver integration tests: every method on SQLite and on PostgreSQL (`ACCOUNT_TEST_BACKEND`).
//! One test binary with a module per table, to keep link time down.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod api_keys;
mod audit_log;
mod idempotency;
mod invitations;
mod invoices;
mod lifecycle;
mod memberships;
mod memory_pins;
mod onboarding;
mod run_leases;
mod runs;
mod sdk_attestations;
mod subscriptions;
mod support;
mod support_tickets;
mod tenants;
mod transaction_control;
mod usage_records;
mod user_pages;
mod users;
