//! `audit_log` driver tests.
