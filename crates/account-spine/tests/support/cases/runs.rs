//! Admitting, heartbeating, completing and expiring runs.

use crate::support::case::{Arrange, Case, admit, leaves, rows, uuid};
use account_spine::runs::leases::{ExpireRunLease, HeartbeatRun};
use account_spine::runs::{CompleteRun, RunCompletion};
use serde_json::json;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::tenant(
            Arrange::Nothing,
            |_| admit(),
            |g, run| {
                leaves(vec![
                    rows(
                        "worker_runs",
                        1,
                        vec![
                            ("id", uuid(run.id.as_uuid())),
                            ("tenant_id", g.tenant.clone()),
                        ],
                    ),
                    rows(
                        "tenants",
                        1,
                        vec![("id", g.tenant.clone()), ("runs_today", 1.into())],
                    ),
                ])
            },
        ),
        // The first heartbeat starts the run (the one that is audited).
        Case::tenant(
            Arrange::Run,
            |g| HeartbeatRun { run_id: g.run() },
            |g, _| {
                leaves(vec![rows(
                    "worker_runs",
                    1,
                    vec![
                        ("id", uuid(g.run().as_uuid())),
                        ("status", "running".into()),
                        ("started_at", g.now.into()),
                    ],
                )])
            },
        ),
        Case::reaper(
            |g| ExpireRunLease {
                tenant_id: g.world.tenant,
                run_id: g.run(),
            },
            |g, _| {
                leaves(vec![rows(
                    "worker_runs",
                    1,
                    vec![
                        ("id", uuid(g.run().as_uuid())),
                        ("status", "crashed".into()),
                        ("error", "lease expired".into()),
                        ("completed_at", g.now.into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::Run,
            |g| CompleteRun {
                run_id: g.run(),
                completion: RunCompletion {
                    success: true,
                    output: Some(json!({"ok": true})),
                    replay_token: None,
                    error: None,
                    total_tokens: 120,
                    total_latency_ms: 900,
                    stages_completed: 3,
                    recoveries: 0,
                    policy_violations: 0,
                    cost_cents: 2,
                },
            },
            |g, _| {
                leaves(vec![rows(
                    "worker_runs",
                    1,
                    vec![
                        ("id", uuid(g.run().as_uuid())),
                        ("status", "completed".into()),
                        ("total_tokens", 120i64.into()),
                    ],
                )])
            },
        ),
    ]
}
