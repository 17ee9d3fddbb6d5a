//! `lifecycle` driver tests.
