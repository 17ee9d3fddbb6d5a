//! `usage_records` driver tests.
