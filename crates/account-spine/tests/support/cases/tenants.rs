//! Creating tenants (for an existing user, or bootstrapping user, tenant and key at once) and
//! changing their plan.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_engines::tenants::CreateTenant as NewTenant;
use account_spine::limits::{LimitName, RemoveLimitOverride, SetLimitOverride, SetOverride};
use account_spine::plans::{CreatePlanVersion, NewPlanVersion, RetirePlan};
use account_spine::tenants::{Bootstrap, ChangePlan, CreateTenant};
use account_spine::types::{PlanCode, PlanQuotas};

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::operator(
            Arrange::Nothing,
            |g| SetLimitOverride {
                tenant: g.world.tenant,
                request: SetOverride::new(LimitName::MaxConcurrentRuns, 500, "launch"),
            },
            |g, change| {
                assert_eq!(change.after.max_concurrent_runs, 500);
                leaves(vec![
                    rows(
                        "tenant_limit_overrides",
                        1,
                        vec![
                            ("tenant_id", g.tenant.clone()),
                            ("limit_name", "max_concurrent_runs".into()),
                            ("value", 500i64.into()),
                        ],
                    ),
                    rows(
                        "tenants",
                        1,
                        vec![
                            ("id", g.tenant.clone()),
                            ("max_concurrent_runs", 500.into()),
                        ],
                    ),
                ])
            },
        ),
        Case::operator(
            Arrange::LimitOverride,
            |g| RemoveLimitOverride {
                tenant: g.world.tenant,
                limit: LimitName::MaxApiKeys,
            },
            |g, change| {
                assert_eq!(change.before.max_api_keys, 40);
                leaves(vec![rows(
                    "tenant_limit_overrides",
                    0,
                    vec![("tenant_id", g.tenant.clone())],
                )])
            },
        ),
        Case::limits_expiry(|g, reverted| {
            assert_eq!(reverted, 1);
            leaves(vec![rows(
                "tenant_limit_overrides",
                0,
                vec![("tenant_id", g.tenant.clone())],
            )])
        }),
        Case::operator(
            Arrange::Nothing,
            |g| CreateTenant {
                request: NewTenant {
                    name: "Globex".into(),
                    slug: None,
                    plan: PlanCode::free(),
                    owner: g.world.member,
                    billing_email: None,
                },
            },
            |g, created| {
                let new = uuid(created.tenant.id.as_uuid());
                leaves(vec![
                    rows(
                        "tenants",
                        1,
                        vec![("id", new.clone()), ("slug", "globex".into())],
                    ),
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", new),
                            ("user_id", uuid(g.world.member.as_uuid())),
                            ("role", "owner".into()),
                        ],
                    ),
                ])
                .audited_in(created.tenant.id)
            },
        ),
        // User, tenant and key in one transaction, audited as `tenant.create`.
        Case::operator(
            Arrange::Nothing,
            |_| Bootstrap {
                owner_email: "founder@example.com".into(),
                tenant_name: "Initech".into(),
            },
            |_, (created, key)| {
                let new = uuid(created.tenant.id.as_uuid());
                leaves(vec![
                    rows("users", 1, vec![("email", "founder@example.com".into())]),
                    rows("tenants", 1, vec![("id", new.clone())]),
                    rows(
                        "tenant_memberships",
                        1,
                        vec![("tenant_id", new.clone()), ("role", "owner".into())],
                    ),
                    rows(
                        "api_keys",
                        1,
                        vec![("id", uuid(key.key.id.as_uuid())), ("tenant_id", new)],
                    ),
                ])
                .audited_in(created.tenant.id)
            },
        ),
        Case::operator(
            Arrange::Nothing,
            |g| ChangePlan {
                tenant: g.world.tenant,
                plan: PlanCode::pro(),
            },
            |g, _| {
                leaves(vec![rows(
                    "tenants",
                    1,
                    vec![
                        ("id", g.tenant.clone()),
                        ("plan", "pro".into()),
                        ("plan_version", 1.into()),
                    ],
                )])
            },
        ),
        // A second version of a built-in plan: the tenants on it keep version 1.
        Case::operator(
            Arrange::Nothing,
            |_| CreatePlanVersion {
                request: NewPlanVersion::new(
                    "pro",
                    "Pro 2027",
                    PlanQuotas::built_in(&PlanCode::pro()).expect("built in"),
                )
                .warning_at(80),
            },
            |_, plan| {
                assert_eq!(plan.version, 2);
                leaves(vec![rows(
                    "plans",
                    1,
                    vec![
                        ("code", "pro".into()),
                        ("version", 2.into()),
                        ("warn_at_percent", 80.into()),
                    ],
                )])
            },
        ),
        Case::operator(
            Arrange::Nothing,
            |_| RetirePlan {
                code: PlanCode::enterprise(),
                version: 1,
            },
            |g, plan| {
                assert_eq!(plan.retired_at, Some(g.now));
                leaves(vec![rows(
                    "plans",
                    1,
                    vec![
                        ("code", "enterprise".into()),
                        ("version", 1.into()),
                        ("retired_at", g.now.into()),
                    ],
                )])
            },
        ),
    ]
}
