//! Issuing, revoking and rotating a tenant's API keys.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_spine::api_keys::{IssueKey, RevokeApiKey, RotateApiKey, UpdateApiKeyMetadata};
use chrono::TimeDelta;
use serde_json::json;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::tenant(
            Arrange::Nothing,
            |_| IssueKey {
                name: "deploy".into(),
                ..IssueKey::default()
            },
            |g, issued| {
                leaves(vec![rows(
                    "api_keys",
                    1,
                    vec![
                        ("id", uuid(issued.key.id.as_uuid())),
                        ("tenant_id", g.tenant.clone()),
                        ("status", "active".into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::ApiKey,
            |g| RevokeApiKey {
                key_id: g.key(),
                reason: "leaked".into(),
            },
            |g, _| {
                leaves(vec![rows(
                    "api_keys",
                    1,
                    vec![
                        ("id", uuid(g.key().as_uuid())),
                        ("status", "revoked".into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::ApiKey,
            |g| RotateApiKey {
                key_id: g.key(),
                grace: TimeDelta::hours(1),
            },
            |g, rotated| {
                leaves(vec![rows(
                    "api_keys",
                    1,
                    vec![
                        ("id", uuid(rotated.issued.key.id.as_uuid())),
                        ("rotated_from_id", uuid(g.key().as_uuid())),
                        ("status", "active".into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::ApiKey,
            |g| UpdateApiKeyMetadata {
                key_id: g.key(),
                metadata: Some(json!({"team": "billing"})),
            },
            |g, _| {
                leaves(vec![rows(
                    "api_keys",
                    1,
                    vec![("id", uuid(g.key().as_uuid())), ("status", "active".into())],
                )])
            },
        ),
    ]
}
