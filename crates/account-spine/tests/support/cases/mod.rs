//! The write use cases, one file per area (as in `src/`), one [`Case`] entry per use case.
//! A write operation added to `Operation::ALL` without an entry here fails
//! `every_write_operation_has_a_case`; every other count follows from [`all`].

use super::case::Case;

mod api_keys;
mod audit;
mod billing;
mod invitations;
mod lifecycle;
mod memberships;
mod memory_pins;
mod onboarding;
mod operators;
mod projects;
mod runs;
mod support;
mod tenants;
mod users;
mod webhooks;

/// Every write case, area by area.
pub(crate) fn all() -> Vec<Case> {
    [
        runs::cases(),
        api_keys::cases(),
        invitations::cases(),
        memberships::cases(),
        users::cases(),
        support::cases(),
        onboarding::cases(),
        memory_pins::cases(),
        billing::cases(),
        tenants::cases(),
        lifecycle::cases(),
        operators::cases(),
        audit::cases(),
        webhooks::cases(),
        projects::cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
