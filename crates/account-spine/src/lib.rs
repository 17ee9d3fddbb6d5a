//! Layer: L4 — spine. Typed use cases; the only crate that begins, commits and rolls back.
//!
//! API crates embed a [`Spine`]: built from a database URL (SQLite file or memory, PostgreSQL)
//! or an existing connection, it owns the pool, runs the migrations on request and, as the
//! use cases land, is the single entry point to the account domain.

mod database;
mod error;

pub use database::{DatabaseConfig, Spine};
pub use error::SpineError;
