//! The spine's error type: every refusal and failure a host maps to a status code.

use crate::operations::Operation;
use account_engines::lifecycle::LifecycleError;
use account_engines::runs::RunError;
use account_engines::types::TenantStatus;
use account_engines::{DriverError, ErrorCode, StorageError};
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
    /// The principal may not call this operation.
    #[error("{operation} requires {needed}")]
    Forbidden {
        /// The operation's stable name.
        operation: &'static str,
        /// What would have been needed, for the message.
        needed: String,
    },
    /// The tenant's lifecycle status does not allow the operation.
    #[error("the tenant is {status}; {operation} is not allowed in that state")]
    TenantStatusForbids {
        /// The operation's stable name.
        operation: &'static str,
        /// The tenant's status.
        status: TenantStatus,
    },
    /// The principal's tenant does not exist.
    #[error("tenant not found")]
    TenantNotFound,
    /// Runs.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Lifecycle.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for SpineError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl SpineError {
    pub(crate) fn forbidden(operation: Operation, needed: impl Into<String>) -> Self {
        Self::Forbidden {
            operation: operation.name(),
            needed: needed.into(),
        }
    }
}

impl ErrorCode for SpineError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "storage_unavailable",
            Self::Migration(_) => "migration_failed",
            Self::Forbidden { .. } => "forbidden",
            Self::TenantStatusForbids { .. } => "tenant_status_forbids",
            Self::TenantNotFound => "tenant_not_found",
            Self::Run(e) => e.code(),
            Self::Lifecycle(e) => e.code(),
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::Unavailable(_) => 503,
            Self::Migration(_) => 500,
            Self::Forbidden { .. } | Self::TenantStatusForbids { .. } => 403,
            Self::TenantNotFound => 404,
            Self::Run(e) => e.http_status(),
            Self::Lifecycle(e) => e.http_status(),
            Self::Storage(e) => e.http_status(),
        }
    }
}

impl crate::transaction::UseCaseError for SpineError {
    fn is_contention(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_contention(),
            Self::Run(RunError::Storage(e)) => e.is_contention(),
            Self::Lifecycle(LifecycleError::Storage(e)) => e.is_contention(),
            _ => false,
        }
    }
}
