//! Route handlers, one module per area, named as the areas are in every layer; what lists
//! share (the page asked for, the list envelope) is in [`lists`].
//!
//! The area without a module here has no HTTP route: `operators` (operator keys are managed
//! with `account-api operator-key`, never over HTTP; the `Operator` extractor in `auth`
//! admits them).
//! The router's table of every route, in the order the OpenAPI document lists them, is
//! `api_routes` in the crate root.

pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod billing;
pub(crate) mod identities;
pub(crate) mod invitations;
pub(crate) mod lifecycle;
pub(crate) mod limits;
pub(crate) mod lists;
pub(crate) mod memberships;
pub(crate) mod memory_pins;
pub(crate) mod onboarding;
pub(crate) mod plans;
pub(crate) mod projects;
pub(crate) mod runs;
pub(crate) mod support;
pub(crate) mod tenants;
pub(crate) mod usage;
pub(crate) mod users;
pub(crate) mod webhooks;
