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

mod db;
mod error;
mod like;
mod page;

pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod invitations;
pub mod lifecycle;
pub mod memberships;
pub mod memory_pins;
pub mod onboarding;
pub mod operators;
pub mod runs;
pub mod support;
pub mod tenants;
pub mod usage;
pub mod users;

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

/// Typed ids, enums, value objects and the plan quota table, re-exported so the engines use
/// them without depending on the models crate.
pub mod types {
    // The enums by name, not `enums::*`: the glob also exported what sea-orm's derives generate
    // beside each enum (`PlanEnum`, `PlanIter`, `PlanVariant`, ...), public API of the spine
    // by accident (`PlanVariant` gains a variant with `Plan`, so it could not be left open).
    pub use account_models::enums::{
        ActorType, ApiKeyStatus, BillingPeriod, EnumError, InvitationStatus, InvoiceStatus,
        MembershipRole, OnboardingState, Plan, RunStatus, SubscriptionStatus, TenantStatus,
        TicketCategory, TicketPriority, TicketStatus, UsageUnit, UserStatus,
    };
    pub use account_models::ids::*;
    pub use account_models::quotas::PlanQuotas;
    pub use account_models::values::*;
}
