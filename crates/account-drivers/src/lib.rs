//! Layer: L6 — drivers. Tenant-scoped data access that returns snapshots, never ORM models.
//!
//! Drivers run on the caller's [`Db`] handle, so one driver call works on a pool or inside the
//! spine's transaction. They never begin, commit or roll back: the handle cannot do it. Every
//! lookup of tenant data takes the tenant id, including lookups by id. Counters and state
//! changes are single conditional statements, never read-modify-write.
//!
//! The seeds' drivers are structs bound to a handle (`get_tenant_driver(db)`); their methods
//! live in the module of the table they touch, so `api_keys.rs` holds every `api_keys`
//! query whichever driver exposes it.
//!
//! # Example
//!
//! A [`Db`] borrows a connection its caller owns: a pool, or a transaction that only the
//! caller can commit. In the account stack that caller is the spine (L4) and the schema comes
//! from the migrations; here the table is created from its entity so the example stands alone.
//!
//! ```
//! use account_drivers::{Db, StatementCounter, get_tenant_driver};
//! use account_models::entities::tenants;
//! use sea_orm::{ConnectOptions, ConnectionTrait, Database, Schema, TransactionTrait};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let runtime = tokio::runtime::Builder::new_current_thread()
//!         .enable_all()
//!         .build()?;
//!     runtime.block_on(async {
//!         // Entities name their tables in our schema, `account`: on SQLite an attached
//!         // database (the spine attaches the account database to every connection).
//!         let mut options = ConnectOptions::new("sqlite::memory:");
//!         options.max_connections(1);
//!         let pool = Database::connect(options).await?;
//!         pool.execute_unprepared("ATTACH DATABASE ':memory:' AS account").await?;
//!         let schema = Schema::new(pool.get_database_backend());
//!         pool.execute(&schema.create_table_from_entity(tenants::Entity))
//!             .await?;
//!
//!         let txn = pool.begin().await?;
//!         let counter = StatementCounter::new();
//!         let db = Db::for_transaction(&txn).counting(&counter);
//!         let tenant = get_tenant_driver(db).fetch_tenant_by_slug("acme").await?;
//!         assert!(tenant.is_none());
//!         assert_eq!(counter.count(), 1); // one driver call, one statement
//!         txn.commit().await?; // the owner of the transaction commits; drivers cannot
//!         Ok(())
//!     })
//! }
//! ```

#![deny(missing_docs)]

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("account-drivers needs a backend: enable the `postgres` or `sqlite` feature");

mod db;
mod error;
mod like;
mod page;

pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod cache_sync;
pub mod idempotency;
pub mod identities;
pub mod invitations;
pub mod lifecycle;
pub mod limits;
pub mod memberships;
pub mod memory_pins;
pub mod onboarding;
pub mod operators;
pub mod outbox;
pub mod plans;
pub mod projects;
pub mod rate_limits;
pub mod replicas;
pub mod runs;
pub mod support;
pub mod tenants;
pub mod usage;
pub mod users;
pub mod webhooks;

#[cfg(feature = "testing")]
mod samples;

#[cfg(any(test, feature = "testing"))]
pub use db::FaultInjector;
pub use db::{AccountsFacadeDriver, Db, StatementCounter, get_accounts_facade_driver};
pub use error::{DriverError, SQLITE_UNIQUE_COLUMNS};
pub use lifecycle::{TenantLifecycleDriver, get_tenant_lifecycle_driver};
pub use memory_pins::{MemoryPinsDriver, get_memory_pins_driver};
pub use onboarding::{OnboardingDriver, get_onboarding_driver};
pub use onboarding::{SdkAttestationDriver, get_sdk_attestation_driver};
pub use page::{InvalidPage, KeysetPage, MAX_PAGE_LIMIT, OffsetPage, Page, PageRequest};
pub use tenants::{TenantDriver, get_tenant_driver};
pub use users::{UserWriteDriver, get_user_write_driver};

/// Which schema our tables live in (process-wide; see [`account_models::schema`]).
pub use account_models::schema;

/// Typed ids, enums, value objects and the plan quota table, re-exported so the engines use
/// them without depending on the models crate.
pub mod types {
    // The enums by name, not `enums::*`: the glob also exported what sea-orm's derives generate
    // beside each enum (`PlanEnum`, `PlanIter`, `PlanVariant`, ...), public API of the spine
    // by accident (`PlanVariant` gains a variant with `Plan`, so it could not be left open).
    pub use account_models::enums::{
        ActorType, ApiKeyStatus, BillingPeriod, EnumError, InvitationStatus, InvoiceStatus,
        MembershipRole, OnboardingState, RunStatus, SubscriptionStatus, TenantStatus,
        TicketCategory, TicketPriority, TicketStatus, UsageUnit, UserStatus,
    };
    pub use account_models::ids::*;
    pub use account_models::quotas::{PlanCode, PlanCodeError, PlanQuotas};
    pub use account_models::values::*;
}
