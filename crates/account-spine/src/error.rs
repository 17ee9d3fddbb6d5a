//! The spine's error type: what a host (the HTTP API) maps to a status code.

use sea_orm::DbErr;

/// Why a spine call failed.
#[derive(Debug, thiserror::Error)]
pub enum SpineError {
    /// The database could not be reached or refused the connection.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Applying the migrations failed; the schema is left as the failing migration found it.
    #[error("applying the database migrations failed")]
    Migration(#[source] DbErr),
}
