//! sea-orm entities, one module per table. Drivers use them; nothing above drivers sees them.

pub mod api_keys;
pub mod audit_log;
pub mod idempotency_keys;
pub mod identity_links;
pub mod invitations;
pub mod invoices;
pub mod lifecycle_events;
pub mod memberships;
pub mod memory_pin_audit;
pub mod memory_pins;
pub mod operator_keys;
pub mod sdk_attestations;
pub mod subscriptions;
pub mod support_tickets;
pub mod tenant_workers;
pub mod tenants;
pub mod usage_hourly;
pub mod usage_records;
pub mod users;
pub mod worker_runs;
