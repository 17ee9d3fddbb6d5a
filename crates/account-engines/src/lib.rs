//! Layer: L5 — engines. Business rules of the account domain, called by the spine.
//!
//! Engines see driver snapshots, typed ids and enums only, and receive an opaque [`Db`] handle
//! they can pass to drivers but cannot query, begin, commit or roll back with. They take the
//! clock's `now` as input, so every rule is deterministic under test. Each area has one error
//! enum whose variants carry a stable code and an HTTP status ([`ErrorCode`]).
//!
//! # Example
//!
//! Most rules are plain functions of their inputs, and every refusal names its code and status.
//!
//! ```
//! use account_engines::ErrorCode;
//! use account_engines::lifecycle::check_transition;
//! use account_engines::types::TenantStatus;
//! use account_engines::users::parse_locale;
//!
//! assert!(check_transition(TenantStatus::Active, TenantStatus::Suspended).is_ok());
//!
//! let refused = check_transition(TenantStatus::Archived, TenantStatus::Active).unwrap_err();
//! assert_eq!(refused.code(), "invalid_transition");
//! assert_eq!(refused.http_status(), 409);
//! assert_eq!(
//!     refused.to_string(),
//!     "cannot go from archived to active; from archived the tenant can go to: nothing (terminal)"
//! );
//!
//! assert_eq!(parse_locale("zh-hant-tw")?, "zh-Hant-TW");
//! # Ok::<(), account_engines::users::ProfileError>(())
//! ```

#![deny(missing_docs)]

pub mod api_keys;
pub mod audit;
pub mod billing;
mod error;
pub mod idempotency;
pub mod identities;
pub mod invitations;
pub mod json;
pub mod lifecycle;
pub mod limits;
pub mod memberships;
pub mod memory_pins;
pub mod onboarding;
pub mod operators;
pub mod plans;
pub mod projects;
pub mod roles;
pub mod runs;
pub mod sealing;
pub mod support;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;

/// Test hook (feature `testing`): makes a chosen statement fail.
#[cfg(feature = "testing")]
pub use account_drivers::FaultInjector;
pub use account_drivers::{
    Db, DriverError, InvalidPage, KeysetPage, MAX_PAGE_LIMIT, OffsetPage, Page, PageRequest,
    StatementCounter,
};
pub use error::{ErrorCode, StorageError};

/// Which schema our tables live in (process-wide).
pub use account_drivers::schema;

/// Telling other instances which cached keys and roles a commit made stale (PostgreSQL).
pub use account_drivers::cache_sync;

/// The transactional outbox: events stored with the change they report, dispatched in order
/// per tenant (no rules: the spine encodes events and runs the dispatchers).
pub use account_drivers::outbox;
/// Request allowances shared by every instance on one database (leased in batches).
pub use account_drivers::rate_limits;
/// Write-ahead-log positions of the primary and its replicas, for routing reads (PostgreSQL).
pub use account_drivers::replicas;

/// Typed ids, enums and the plan quota table.
pub use account_drivers::types;
