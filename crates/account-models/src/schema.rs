//! Which database schema our tables live in, for every entity of this process.
//!
//! sea-orm entities name their table statically, so the schema is process-wide: set it once,
//! before the first query, with [`install`] (the spine does when it connects). Every entity
//! then renders as `"<schema>"."<table>"`: a PostgreSQL schema, or on SQLite the name the
//! account database is attached under. Unset, it is [`SchemaName::DEFAULT`] (`account`).

use account_values::SchemaName;
use std::sync::OnceLock;

static SCHEMA: OnceLock<SchemaName> = OnceLock::new();

/// Sets the schema of every entity for the rest of the process. Installing the name already
/// in force is a no-op; any other name once one is in force (installed, or read by a query)
/// is refused with the name in force, because queries already built would disagree.
pub fn install(schema: &SchemaName) -> Result<(), SchemaName> {
    let current = SCHEMA.get_or_init(|| schema.clone());
    if current == schema {
        Ok(())
    } else {
        Err(current.clone())
    }
}

/// The schema in force (the default once anything has asked).
pub fn current() -> &'static SchemaName {
    SCHEMA.get_or_init(SchemaName::default)
}

/// Declares the entity `Entity` for `$table` in the installed schema.
macro_rules! table {
    ($table:literal) => {
        #[doc = concat!("The `", $table, "` table, in the installed schema ([`crate::schema`]).")]
        #[derive(Copy, Clone, Default, Debug, sea_orm::prelude::DeriveEntity)]
        pub struct Entity;

        impl sea_orm::prelude::EntityName for Entity {
            fn schema_name(&self) -> Option<&str> {
                Some($crate::schema::current().as_str())
            }

            fn table_name(&self) -> &'static str {
                $table
            }
        }
    };
}
pub(crate) use table;
