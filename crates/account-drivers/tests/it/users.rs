//! `users` driver tests.
