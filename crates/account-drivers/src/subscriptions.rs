//! `subscriptions`.
