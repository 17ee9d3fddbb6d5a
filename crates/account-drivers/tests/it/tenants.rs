//! `tenants` driver tests.
