//! Tenant onboarding state, advanced forward only.

use crate::Db;

/// Tenant onboarding state, advanced forward only.
#[derive(Clone, Copy, Debug)]
pub struct OnboardingDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The driver on `db`.
pub fn get_onboarding_driver(db: Db<'_>) -> OnboardingDriver<'_> {
    OnboardingDriver { db }
}
