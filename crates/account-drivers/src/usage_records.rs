//! `usage_records`.
