//! Memory pins: the per-tenant key-value store and its audit trail.

use crate::Db;

/// Memory pins: the per-tenant key-value store and its audit trail.
#[derive(Clone, Copy, Debug)]
pub struct MemoryPinsDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The driver on `db`.
pub fn get_memory_pins_driver(db: Db<'_>) -> MemoryPinsDriver<'_> {
    MemoryPinsDriver { db }
}
