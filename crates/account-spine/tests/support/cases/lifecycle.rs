//! Tenant status transitions.

use crate::support::case::{Arrange, Case, leaves, rows};
use account_spine::lifecycle::{LifecycleAction, TransitionTenant};

pub(super) fn cases() -> Vec<Case> {
    vec![Case::operator(
        Arrange::Nothing,
        |g| TransitionTenant {
            tenant: g.world.tenant,
            action: LifecycleAction::Suspend,
            reason: "unpaid".into(),
        },
        |g, _| {
            leaves(vec![
                rows(
                    "tenants",
                    1,
                    vec![("id", g.tenant.clone()), ("status", "suspended".into())],
                ),
                rows(
                    "lifecycle_events",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("to_status", "suspended".into()),
                    ],
                ),
            ])
        },
    )]
}
