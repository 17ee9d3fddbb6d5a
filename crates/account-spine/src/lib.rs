//! Layer: L4 — spine. Typed use cases; the only crate that begins, commits and rolls back.
//!
//! API crates embed a [`Spine`]: built from a database URL (SQLite file or memory, PostgreSQL)
//! or an existing connection, it owns the pool, the clock and the event subscriber. Every use
//! case takes a [`Principal`] (tenant and actor come only from it), checks the authority its
//! [`Operation`] declares and the tenant's capability, runs in one transaction with its audit
//! row, and publishes its [`DomainEvent`]s only after commit. A refusal is a typed
//! [`SpineError`] and is audited in a transaction of its own. Every use case runs in a
//! tracing span named by its [`Operation::name`] and is counted in [`Spine::metrics`].

pub mod api_keys;
mod authorize;
pub mod billing;
mod clock;
mod database;
mod error;
mod events;
mod execute;
mod host;
pub mod invitations;
pub mod lifecycle;
pub mod memberships;
pub mod memory_pins;
mod metrics;
pub mod onboarding;
mod operations;
pub mod operators;
mod principal;
mod retry;
pub mod runs;
mod settings;
pub mod support;
pub mod tenants;
pub mod usage;
mod use_case;
pub mod users;
mod verify_cache;

/// Test hook (feature `testing`): makes a chosen statement of a write transaction fail
/// (`Spine::with_fault_injector`).
#[cfg(feature = "testing")]
pub use account_engines::FaultInjector;
/// Counts statements ([`Spine::with_statement_counter`]).
pub use account_engines::StatementCounter;
pub use clock::{Clock, FixedClock, SystemClock};
pub use database::{DatabaseConfig, Spine};
pub use error::SpineError;
pub use events::{DomainEvent, EventSink, NoEvents, OneTimeToken, RecordedEvents};
pub use host::HostTransaction;
pub use metrics::{MetricsSnapshot, OperationMetrics};
pub use operations::{Authority, Capability, Operation};
pub use principal::{Actor, OperatorPrincipal, Principal, RequestMeta};
pub use retry::RetryPolicy;
pub use use_case::{Context, OperatorUseCase, UseCase};
pub use verify_cache::{VerifyCacheMetrics, VerifyCacheSettings};

/// Error codes and HTTP statuses of every error, for hosts.
pub use account_engines::ErrorCode;
/// Typed ids and enums, for hosts.
pub use account_engines::types;
/// Pages, and the largest page any list answers.
pub use account_engines::{KeysetPage, MAX_PAGE_LIMIT, OffsetPage, Page};
