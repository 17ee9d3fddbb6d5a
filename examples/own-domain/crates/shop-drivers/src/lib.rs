//! Layer: L6 — drivers. The shop's data access: its `orders` table.
//!
//! Statements run on a [`ShopDb`], a handle on a transaction the app layer owns: drivers
//! borrow it and cannot begin, commit or roll back (checked by the layer table's
//! `transaction-control` rule).

pub mod orders;

use sea_orm::{DatabaseTransaction, DbErr};

/// A borrowed handle on the app layer's transaction; engines pass it on to drivers.
#[derive(Clone, Copy, Debug)]
pub struct ShopDb<'a> {
    txn: &'a DatabaseTransaction,
}

impl<'a> ShopDb<'a> {
    /// A handle inside `txn`, which the caller alone commits.
    pub fn for_transaction(txn: &'a DatabaseTransaction) -> Self {
        Self { txn }
    }
}

/// A statement failed.
#[derive(Debug, thiserror::Error)]
#[error("the shop's storage failed")]
pub struct StorageError(#[from] DbErr);
