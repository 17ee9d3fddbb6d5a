//! Subscriptions and invoices, recorded by the platform.

use crate::support::case::{Arrange, Case, leaves, rows};
use account_spine::billing::trials::{EndGrace, EndTrial, StartTrial, TrialStart};
use account_spine::billing::{
    InvoiceUpsert, RecordInvoice, RecordSubscription, SubscriptionUpsert,
};
use account_spine::types::*;
use chrono::TimeDelta;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::operator(
            Arrange::Nothing,
            |g| RecordSubscription {
                change: SubscriptionUpsert {
                    id: SubscriptionId::new(),
                    tenant_id: g.world.tenant,
                    external_id: "sub_1".into(),
                    plan: PlanCode::pro(),
                    status: SubscriptionStatus::Active,
                    billing_period: BillingPeriod::Monthly,
                    current_period_start: Some(g.now),
                    current_period_end: Some(g.now + TimeDelta::days(30)),
                    trial_ends_at: None,
                    canceled_at: None,
                    cancel_at_period_end: false,
                },
            },
            |g, _| {
                leaves(vec![rows(
                    "subscriptions",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("external_id", "sub_1".into()),
                        ("status", "active".into()),
                    ],
                )])
            },
        ),
        Case::operator(
            Arrange::Nothing,
            |g| RecordInvoice {
                invoice: InvoiceUpsert {
                    id: InvoiceId::new(),
                    tenant_id: g.world.tenant,
                    external_id: "in_1".into(),
                    number: Some("A-0001".into()),
                    status: InvoiceStatus::Open,
                    currency: "usd".into(),
                    amount_due_cents: 4900,
                    amount_paid_cents: 0,
                    period_start: g.now - TimeDelta::days(30),
                    period_end: g.now,
                    issued_at: g.now,
                    due_at: Some(g.now + TimeDelta::days(14)),
                    paid_at: None,
                    hosted_url: None,
                },
            },
            |g, _| {
                leaves(vec![rows(
                    "invoices",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("external_id", "in_1".into()),
                        ("amount_due_cents", 4900i64.into()),
                    ],
                )])
            },
        ),
        Case::operator(
            Arrange::Nothing,
            |g| {
                let end = g.now + TimeDelta::days(14);
                StartTrial::new(TrialStart::new(
                    g.world.tenant,
                    "sub_trial",
                    PlanCode::pro(),
                    end,
                ))
            },
            |g, _| {
                leaves(vec![
                    rows(
                        "subscriptions",
                        1,
                        vec![
                            ("tenant_id", g.tenant.clone()),
                            ("external_id", "sub_trial".into()),
                            ("status", "trialing".into()),
                        ],
                    ),
                    // The tenant is on the plan for the trial.
                    rows(
                        "tenants",
                        1,
                        vec![("id", g.tenant.clone()), ("plan", "pro".into())],
                    ),
                ])
            },
        ),
        Case::trial_pass::<EndTrial>(Arrange::EndedTrial, |g, ended| {
            assert!(ended.is_some(), "the trial ended");
            leaves(vec![rows(
                "subscriptions",
                1,
                vec![("tenant_id", g.tenant.clone()), ("status", "grace".into())],
            )])
        }),
        Case::trial_pass::<EndGrace>(Arrange::EndedGrace, |g, ended| {
            assert!(ended.is_some(), "the grace ended");
            leaves(vec![
                rows(
                    "subscriptions",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("status", "canceled".into()),
                    ],
                ),
                rows(
                    "tenants",
                    1,
                    vec![("id", g.tenant.clone()), ("status", "suspended".into())],
                ),
            ])
        }),
    ]
}
