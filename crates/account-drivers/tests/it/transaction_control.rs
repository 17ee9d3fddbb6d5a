//! `transaction_control` driver tests.
