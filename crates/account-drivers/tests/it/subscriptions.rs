//! `subscriptions` driver tests.
