//! How a contended write transaction is retried: a named policy, and the one function that
//! says which errors are contention.

use account_engines::ErrorCode;
use std::time::Duration;

/// How a write use case is retried when the database reports contention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all (1: never retry).
    pub attempts: u32,
    /// The pause after the first failed attempt; it doubles after each further one.
    pub first_backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
}

/// The error codes that mean "the same transaction may succeed if run again": storage
/// contention (PostgreSQL serialization failures and deadlocks, SQLite's busy writer: the
/// drivers classify them) and a concurrent sign-up for the same invited email (the retry finds
/// the account and joins with it).
const CONTENTION_CODES: [&str; 2] = ["conflict_retry", "invitation_accept_conflict"];

impl RetryPolicy {
    /// 5 attempts, pauses of 5, 10, 20 and 40 ms: contended statements here are single-row
    /// and brief.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts: 5,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(80),
    };

    /// One attempt: the caller retries (a host's own transaction, for instance).
    pub const NEVER: RetryPolicy = RetryPolicy {
        attempts: 1,
        first_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// Whether `error` is contention, which a retry of the whole transaction may resolve.
    pub fn is_contention(error: &impl ErrorCode) -> bool {
        CONTENTION_CODES.contains(&error.code())
    }

    /// The pause after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        doubled.min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SpineError;
    use account_engines::DriverError;
    use account_engines::StorageError;
    use account_engines::invitations::InvitationError;
    use account_engines::memory_pins::MemoryPinError;
    use account_engines::runs::RunError;
    use sea_orm::{DbErr, RuntimeErr};

    fn driver(kind: fn(DbErr) -> DriverError) -> StorageError {
        StorageError(kind(DbErr::Conn(RuntimeErr::Internal("test".into()))))
    }

    #[test]
    fn contention_is_recognised_by_code_whatever_area_wraps_it() {
        let contended = [
            SpineError::Storage(driver(DriverError::Contention)),
            SpineError::Run(RunError::Storage(driver(DriverError::Contention))),
            SpineError::MemoryPin(MemoryPinError::Storage(driver(DriverError::Contention))),
            SpineError::Invitation(InvitationError::ConcurrentAccept("a@example.com".into())),
        ];
        for error in &contended {
            assert!(RetryPolicy::is_contention(error), "{error:?}");
        }
        let final_ = [
            SpineError::Storage(driver(DriverError::Unavailable)),
            SpineError::Storage(driver(DriverError::Other)),
            SpineError::Run(RunError::Storage(driver(DriverError::UnstorableText))),
            SpineError::Invitation(InvitationError::AlreadyAccepted),
            SpineError::TenantNotFound,
        ];
        for error in &final_ {
            assert!(!RetryPolicy::is_contention(error), "{error:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = RetryPolicy::DEFAULT;
        let pauses: Vec<u128> = (1..=6).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 80]);
        assert_eq!(RetryPolicy::NEVER.backoff(3), Duration::ZERO);
    }
}
