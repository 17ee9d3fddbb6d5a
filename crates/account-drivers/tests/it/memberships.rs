//! `memberships` driver tests.
