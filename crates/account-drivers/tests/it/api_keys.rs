//! `api_keys` driver tests.
