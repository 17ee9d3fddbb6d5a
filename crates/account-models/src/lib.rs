//! Layer: L7 — models. sea-orm entities, typed ids, enums and value objects of the account domain.
//!
//! Nothing here queries the database or holds business rules: types only. Drivers (L6) use
//! the entities; typed ids, enums and value objects travel up to the engines through the
//! drivers' re-exports. The plan quota table lives here, once.

pub mod entities;
pub mod enums;
pub mod ids;
pub mod quotas;
pub mod schema;

/// The value objects (emails, slugs, names, pin keys, the API-key shape) live in their own
/// crate without sea-orm, so the fuzz targets build in seconds; they are part of this layer's
/// vocabulary and reach the layers above through here.
pub use account_values as values;

pub use enums::*;
pub use ids::*;
pub use quotas::PlanQuotas;
