//! Layer: L5 — engines. Business rules of the account domain, called by the spine.
//!
//! Engines see driver snapshots, typed ids and enums only, and receive an opaque [`Db`] handle
//! they can pass to drivers but cannot query, begin, commit or roll back with.

pub use account_drivers::Db;
