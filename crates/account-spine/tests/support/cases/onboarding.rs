//! Onboarding: the SDK handshake, advancing, and an operator's forced completion.

use crate::support::case::{Arrange, Case, leaves, rows};
use account_spine::onboarding::{AdvanceOnboarding, ForceCompleteOnboarding, SdkHandshake};
use account_spine::types::OnboardingState;
use sea_orm::Value;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::tenant(
            Arrange::Nothing,
            |_| SdkHandshake {
                sdk_version: "1.2.0".into(),
                sdk_language: "python".into(),
                client_id: None,
            },
            |g, _| {
                leaves(vec![
                    rows(
                        "sdk_attestations",
                        1,
                        vec![
                            ("tenant_id", g.tenant.clone()),
                            ("sdk_version", "1.2.0".into()),
                        ],
                    ),
                    rows(
                        "tenants",
                        1,
                        vec![
                            ("id", g.tenant.clone()),
                            ("onboarding_state", Value::SmallInt(Some(3))),
                        ],
                    ),
                ])
            },
        ),
        Case::tenant(
            Arrange::Nothing,
            |_| AdvanceOnboarding {
                target: OnboardingState::IdentityVerified,
            },
            |g, _| {
                leaves(vec![rows(
                    "tenants",
                    1,
                    vec![
                        ("id", g.tenant.clone()),
                        ("onboarding_state", Value::SmallInt(Some(1))),
                    ],
                )])
            },
        ),
        Case::operator(
            Arrange::Nothing,
            |g| ForceCompleteOnboarding {
                tenant: g.world.tenant,
                reason: "pilot customer".into(),
            },
            |g, _| {
                leaves(vec![rows(
                    "tenants",
                    1,
                    vec![
                        ("id", g.tenant.clone()),
                        ("onboarding_state", Value::SmallInt(Some(4))),
                    ],
                )])
            },
        ),
    ]
}
