//! What every engine error says about itself: a stable machine code and the HTTP status it
//! maps to, so the API layer never guesses.

use account_drivers::DriverError;

/// An engine error's contract with callers.
pub trait ErrorCode {
    /// Stable, snake_case, documented: clients branch on it.
    fn code(&self) -> &'static str;
    /// The HTTP status the API layer answers with. Anything a caller can cause is a 4xx.
    fn http_status(&self) -> u16;
}

/// A storage failure, as engines pass it on: no business meaning, never the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("storage failed")]
pub struct StorageError(#[source] pub DriverError);

impl StorageError {
    /// Whether retrying the whole use case may succeed.
    pub fn is_contention(&self) -> bool {
        self.0.is_contention()
    }
}

impl From<DriverError> for StorageError {
    fn from(error: DriverError) -> Self {
        Self(error)
    }
}

impl ErrorCode for StorageError {
    fn code(&self) -> &'static str {
        match self.0 {
            DriverError::Contention(_) => "conflict_retry",
            DriverError::Unavailable(_) => "storage_unavailable",
            _ => "internal_error",
        }
    }

    fn http_status(&self) -> u16 {
        match self.0 {
            DriverError::Contention(_) | DriverError::Unavailable(_) => 503,
            _ => 500,
        }
    }
}
