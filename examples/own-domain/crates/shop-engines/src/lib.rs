//! Layer: L5 — engines. The shop's business rules: what an order may be.
//!
//! Engines see the drivers' rows and an opaque [`ShopDb`] handle they can only pass on to
//! drivers: no SQL, no transaction control, no ORM (the layer table's `raw-sql`,
//! `transaction-control` and `forbidden_external` rules).

pub mod orders;

/// The handle the app layer builds over its transaction; engines only pass it on.
pub use shop_drivers::ShopDb;
