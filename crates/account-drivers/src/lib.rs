//! Layer: L6 — drivers. Tenant-scoped data access that returns snapshots, never ORM models.
//!
//! Drivers run on the caller's [`Db`] handle, so one driver call works on a pool or inside the
//! spine's transaction. They never begin, commit or roll back: the handle cannot do it. Every
//! lookup of tenant data takes the tenant id, including lookups by id. Counters and state
//! changes are single conditional statements, never read-modify-write.

mod db;
mod error;
// mod like; (registered with the first driver module that searches by prefix)
mod page;

pub use db::{Db, StatementCounter};
pub use error::{DriverError, SQLITE_UNIQUE_COLUMNS};
pub use page::{KeysetPage, OffsetPage, Page};
