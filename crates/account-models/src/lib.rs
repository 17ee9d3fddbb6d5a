//! Layer: L7 — models. sea-orm entities, typed ids, enums and value objects of the account domain.
//!
//! Nothing here queries the database or holds business rules: types only.
