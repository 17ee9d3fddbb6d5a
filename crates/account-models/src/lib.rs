//! Layer: L7 — models. sea-orm entities, typed ids, enums and value objects of the account domain.
//!
//! Nothing here queries the database or holds business rules: types only. Drivers (L6) use
//! the entities; typed ids, enums and value objects travel up to the engines through the
//! drivers' re-exports. Plan codes and the limits a plan grants live here; the plans themselves are data.
//!
//! # Example
//!
//! Enums parse case-insensitively and store one spelling; entities name their table and build
//! typed queries, here without any database.
//!
//! ```
//! use account_models::entities::tenants;
//! use account_models::{PlanCode, PlanQuotas, TenantStatus};
//! use sea_orm::{ColumnTrait, DbBackend, EntityName, EntityTrait, QueryFilter, QueryTrait};
//!
//! let plan: PlanCode = "pro".parse()?;
//! assert_eq!(PlanQuotas::built_in(&plan).map(|q| q.max_api_keys), Some(20));
//! assert_eq!("Active".parse::<TenantStatus>()?, TenantStatus::Active);
//!
//! assert_eq!(tenants::Entity.table_name(), "tenants");
//! let sql = tenants::Entity::find()
//!     .filter(tenants::Column::Status.eq(TenantStatus::Suspended))
//!     .build(DbBackend::Postgres)
//!     .to_string();
//! assert!(sql.ends_with(r#"WHERE "tenants"."status" = 'suspended'"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

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
pub use quotas::{PlanCode, PlanCodeError, PlanQuotas};
