//! What every engine error says about itself: a stable machine code and the HTTP status it
//! maps to, so the API layer never guesses.

use account_drivers::DriverError;

/// An engine error's contract with callers.
pub trait ErrorCode {
    /// Stable, snake_case, documented: clients branch on it.
    fn code(&self) -> &'static str;
    /// The HTTP status the API layer answers with. Anything a caller can cause is a 4xx.
    fn http_status(&self) -> u16;
    /// The input field the refusal concerns, when it concerns one: a request field's name
    /// (`name`, `limit`, `permissions`) or a dotted path into it (`value.notes[2]`). The API
    /// answers it under `fields`; `None` for refusals about no single field.
    fn field(&self) -> Option<&str> {
        None
    }
}

/// A storage failure, as engines pass it on: no business meaning, and never the caller's
/// fault, except text the database cannot store (a NUL character an engine did not catch).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.message())]
pub struct StorageError(#[source] pub DriverError);

impl StorageError {
    /// Whether retrying the whole use case may succeed.
    pub fn is_contention(&self) -> bool {
        self.0.is_contention()
    }

    fn message(&self) -> &'static str {
        match self.0 {
            DriverError::UnstorableText(_) => {
                "a text field must not contain the NUL character (U+0000) or other characters the database cannot store"
            }
            _ => "storage failed",
        }
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
            DriverError::UnstorableText(_) => "invalid_text",
            _ => "internal_error",
        }
    }

    fn http_status(&self) -> u16 {
        match self.0 {
            DriverError::Contention(_) | DriverError::Unavailable(_) => 503,
            DriverError::UnstorableText(_) => 422,
            _ => 500,
        }
    }
}

/// The contract every error enum's blanket test checks for the variants a caller can cause:
/// a 4xx status, a stable snake_case code unique within the enum, and a message of its own
/// (the messages are written to say what to change; review keeps them so).
#[cfg(test)]
pub(crate) fn assert_caller_errors<E: ErrorCode + std::fmt::Display + std::fmt::Debug>(
    errors: &[E],
) {
    let mut codes = std::collections::HashSet::new();
    for error in errors {
        let status = error.http_status();
        assert!((400..500).contains(&status), "{error:?}: {status}");
        let code = error.code();
        assert!(
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        assert!(codes.insert(code), "duplicate code {code}");
        let message = error.to_string();
        assert!(
            message.len() > code.len() && message != code,
            "{error:?}: the message must explain, not repeat the code"
        );
    }
}
