//! `audit_log`.
