//! Layer: L4 — spine. Typed use cases; the only crate that begins, commits and rolls back.
//!
//! API crates embed a [`Spine`]: built from a database URL (SQLite file or memory, PostgreSQL)
//! or an existing connection, it owns the pool, the clock and the event subscriber. Every use
//! case takes a [`Principal`] (tenant and actor come only from it), checks the authority its
//! [`Operation`] declares and the tenant's capability, runs in one transaction with its audit
//! row, and publishes its [`DomainEvent`]s only after commit. A refusal is a typed
//! [`SpineError`] and is audited in a transaction of its own. Every use case runs in a
//! tracing span named by its [`Operation::name`] and is counted in [`Spine::metrics`].
//!
//! Our tables live in a schema of their own ([`DatabaseConfig::schema`], default `account`)
//! beside the host's, recorded by [`migrate`] in a migration table of their own. A host can
//! run use cases inside its own transaction with [`HostTransaction`].
//!
//! [`Principal`] and [`OperatorPrincipal`] have public fields so hosts can carry them, but
//! they are authority: build a `Principal` only from a verified credential
//! ([`Spine::authenticate_api_key`], or a membership your own verified sign-in maps to), and
//! an `OperatorPrincipal` only for your own operators, never from request input.
//!
//! Connecting, migrating, bootstrapping a tenant and admitting its first run:
//!
//! ```
//! use account_spine::api_keys::ApiKeyPepper;
//! use account_spine::runs::AdmitRun;
//! use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! // A private in-memory SQLite database; `postgres://user@host/db` in production.
//! let config = DatabaseConfig::new("sqlite::memory:");
//! // The pepper keys API-key digests: load it from your secret store (32 bytes or more).
//! let pepper = ApiKeyPepper::from_bytes(&[7u8; 32])?;
//! let spine = Spine::connect(&config).await?.with_pepper(pepper);
//! account_spine::migrate(&config).await?;
//!
//! // Your operator (never request input) creates a tenant with its owner and a first key.
//! let operator = OperatorPrincipal {
//!     operator_id: "ops@example.com".into(),
//!     request: RequestMeta::default(),
//! };
//! let (tenant, key) = spine.bootstrap(&operator, "owner@example.com", "Acme").await?;
//!
//! // A caller presents the key; the spine verifies it and answers who they are.
//! let principal = spine
//!     .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
//!     .await?;
//! assert_eq!(principal.tenant_id, tenant.tenant.id);
//! let run = spine
//!     .admit_run(
//!         &principal,
//!         AdmitRun {
//!             worker_id: "business-builder".into(),
//!             task: "plan".into(),
//!             input: None,
//!             token_estimate: 0,
//!         },
//!     )
//!     .await?;
//! assert_eq!(run.tenant_id, tenant.tenant.id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```

#![deny(missing_docs)]

mod acting;
pub mod api_keys;
pub mod audit;
mod authorize;
pub mod billing;
mod cache_sync;
mod clock;
mod consistency;
mod database;
mod error;
mod events;
mod execute;
mod host;
pub mod idempotency;
pub mod identities;
pub mod invitations;
pub mod lifecycle;
pub mod limits;
mod member_roles;
pub mod memberships;
pub mod memory_pins;
mod metrics;
pub mod onboarding;
mod operations;
pub mod operators;
mod outbox;
pub mod plans;
mod principal;
pub mod projects;
pub mod rate_limits;
mod replicas;
mod retry;
pub mod runs;
mod settings;
pub mod support;
pub mod tenants;
pub mod usage;
mod use_case;
pub mod users;
mod verify_cache;
pub mod webhooks;

/// Test hook (feature `testing`): makes a chosen statement of a write transaction fail
/// (`Spine::with_fault_injector`).
#[cfg(feature = "testing")]
pub use account_engines::FaultInjector;
/// Counts statements ([`Spine::with_statement_counter`]).
pub use account_engines::StatementCounter;
pub use account_migrations::{Applied, MigrationError};
pub use clock::{Clock, FixedClock, SystemClock};
pub use database::{DatabaseConfig, Spine, install_schema, migrate};
pub use error::SpineError;
pub use events::{DomainEvent, EventSink, NoEvents, OneTimeToken, RecordedEvents};
pub use host::HostTransaction;
pub use metrics::{MetricsSnapshot, OperationMetrics};
pub use operations::{Authority, Capability, Operation};
pub use outbox::{DispatchReport, DispatchSettings};
pub use principal::{
    Actor, ConsistencyToken, InvalidConsistencyToken, OperatorPrincipal, Principal, RequestMeta,
};
pub use replicas::{ReadRoutingMetrics, ReplicaStatus};
pub use retry::RetryPolicy;
pub use use_case::{Context, OperatorUseCase, UseCase};
pub use verify_cache::{VerifyCacheMetrics, VerifyCacheSettings};

/// Error codes and HTTP statuses of every error, for hosts.
pub use account_engines::ErrorCode;
/// Typed ids and enums, for hosts.
pub use account_engines::types;
/// Pages, and the largest page any list answers.
pub use account_engines::{KeysetPage, MAX_PAGE_LIMIT, OffsetPage, Page};
