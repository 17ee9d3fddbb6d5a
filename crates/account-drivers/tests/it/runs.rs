//! `runs` driver tests.
