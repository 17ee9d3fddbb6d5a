//! `runs`.
