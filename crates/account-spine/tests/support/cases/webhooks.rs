//! Webhook endpoints: registering, changing, deleting, rotating, replaying, and delivery
//! disabling one (a platform job, with its event in the outbox).

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_spine::webhooks::{
    CreateEndpoint, CreateWebhookEndpoint, DeleteWebhookEndpoint, Replay, ReplayWebhookEvents,
    RotateWebhookSecret, UpdateEndpoint, UpdateWebhookEndpoint,
};
use chrono::TimeDelta;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::tenant(
            Arrange::Nothing,
            |_| CreateWebhookEndpoint {
                endpoint: CreateEndpoint::new("https://hooks.example.com/in")
                    .with_event_types(["run.*"]),
            },
            |g, created| {
                leaves(vec![rows(
                    "webhook_endpoints",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("id", uuid(created.endpoint.id.as_uuid())),
                        ("event_types", "[\"run.*\"]".into()),
                        ("enabled", true.into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::WebhookEndpoint,
            |g| UpdateWebhookEndpoint {
                id: g.webhook_endpoint(),
                changes: UpdateEndpoint::default().with_enabled(false),
            },
            |g, _| {
                leaves(vec![rows(
                    "webhook_endpoints",
                    1,
                    vec![
                        ("id", uuid(g.webhook_endpoint().as_uuid())),
                        ("enabled", false.into()),
                        ("disabled_reason", "by_request".into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::WebhookEndpoint,
            |g| DeleteWebhookEndpoint {
                id: g.webhook_endpoint(),
            },
            |g, ()| {
                leaves(vec![rows(
                    "webhook_endpoints",
                    0,
                    vec![("tenant_id", g.tenant.clone())],
                )])
            },
        ),
        Case::tenant(
            Arrange::WebhookEndpoint,
            |g| RotateWebhookSecret {
                id: g.webhook_endpoint(),
                grace_seconds: 3_600,
            },
            |g, rotated| {
                assert_eq!(
                    rotated.endpoint.previous_secret_until,
                    Some(g.now + TimeDelta::hours(1))
                );
                leaves(vec![rows(
                    "webhook_endpoints",
                    1,
                    vec![
                        ("id", uuid(g.webhook_endpoint().as_uuid())),
                        (
                            "previous_secret_until",
                            (g.now + TimeDelta::hours(1)).into(),
                        ),
                    ],
                )])
            },
        ),
        // Nothing delivered yet, so a range queues nothing; the request is audited anyway.
        Case::tenant(
            Arrange::WebhookEndpoint,
            |g| ReplayWebhookEvents {
                id: g.webhook_endpoint(),
                replay: Replay::Range {
                    from: g.now - TimeDelta::days(1),
                    to: g.now,
                },
            },
            |g, queued| {
                assert_eq!(*queued, 0);
                leaves(vec![rows(
                    "webhook_replays",
                    0,
                    vec![("tenant_id", g.tenant.clone())],
                )])
            },
        ),
        Case::webhook_disable(|g, disabled| {
            assert!(disabled);
            leaves(vec![
                rows(
                    "webhook_endpoints",
                    1,
                    vec![
                        ("id", uuid(g.webhook_endpoint().as_uuid())),
                        ("enabled", false.into()),
                        ("disabled_reason", "failing".into()),
                    ],
                ),
                rows(
                    "event_outbox",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("event_type", "webhook_endpoint.disabled".into()),
                    ],
                ),
            ])
        }),
    ]
}
