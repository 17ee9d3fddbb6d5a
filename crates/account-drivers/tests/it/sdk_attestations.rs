//! `sdk_attestations` driver tests.
