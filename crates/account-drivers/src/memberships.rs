//! `memberships`.
