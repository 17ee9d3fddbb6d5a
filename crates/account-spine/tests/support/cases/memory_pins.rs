//! Memory pins; reading one writes the pin trail.

use crate::support::case::{Arrange, Case, leaves, pin, rows};
use account_spine::memory_pins::{CleanupPins, DeletePin, GetPin, UpsertPin};

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::tenant(
            Arrange::Nothing,
            |_| UpsertPin { pin: pin(None) },
            |g, _| {
                leaves(vec![
                    rows(
                        "memory_pins",
                        1,
                        vec![("tenant_id", g.tenant.clone()), ("key", "agent:cfg".into())],
                    ),
                    rows(
                        "memory_pin_audit",
                        1,
                        vec![
                            ("tenant_id", g.tenant.clone()),
                            ("operation", "upsert".into()),
                        ],
                    ),
                ])
            },
        ),
        // A read by its operation (no audit row), but it writes the pin trail, on the pool.
        Case::tenant(
            Arrange::Pin,
            |_| GetPin {
                key: "agent:cfg".into(),
            },
            |g, _| {
                leaves(vec![rows(
                    "memory_pin_audit",
                    1,
                    vec![("tenant_id", g.tenant.clone()), ("operation", "get".into())],
                )])
            },
        ),
        // A `false` (nothing deleted) shows as a missing audit row.
        Case::tenant(
            Arrange::Pin,
            |_| DeletePin {
                key: "agent:cfg".into(),
            },
            |g, _| {
                leaves(vec![rows(
                    "memory_pins",
                    0,
                    vec![("tenant_id", g.tenant.clone()), ("key", "agent:cfg".into())],
                )])
            },
        ),
        Case::tenant(
            Arrange::ExpiredPin,
            |_| CleanupPins,
            |g, _| {
                leaves(vec![rows(
                    "memory_pins",
                    0,
                    vec![("tenant_id", g.tenant.clone())],
                )])
            },
        ),
    ]
}
