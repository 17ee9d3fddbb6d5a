//! The plan quota table: the one place that says what each plan allows.
//!
//! Quotas are copied onto the tenant row when it is created or changes plan, so a tenant's
//! limits can be overridden per tenant without touching this table. The memory-pin limits
//! ([`MemoryPinQuotas`]) have no columns on the tenant row: they follow the tenant's plan.

use crate::enums::Plan;

/// The limits a plan grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanQuotas {
    /// Distinct workers a tenant may enable.
    pub max_workers: i32,
    /// Runs admitted per UTC day.
    pub max_runs_per_day: i32,
    /// Runs queued or running at once.
    pub max_concurrent_runs: i32,
    /// Tokens per UTC calendar month.
    pub max_tokens_per_month: i64,
    /// Active API keys.
    pub max_api_keys: i32,
    /// Requests per minute of the whole tenant, every credential together, counted across
    /// instances; `None`: no tenant-wide limit (each key's own limit still applies).
    pub max_requests_per_minute: Option<i32>,
    /// Days the tenant's audit rows are kept before the retention purge removes them; `None`:
    /// kept forever.
    pub audit_retention_days: Option<i32>,
    /// Seats: members plus pending invitations; an invitation beyond them is refused.
    pub max_members: i32,
}

/// The memory-pin limits a plan grants (§3.12). Read from the tenant's current plan at every
/// write, not copied onto the tenant row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPinQuotas {
    /// Live (unexpired) pins a tenant may hold at once.
    pub max_memory_pins: u64,
    /// Most bytes one pin's serialised JSON value may take. At most 64 KiB on every plan, so a
    /// pin always fits the API's 128 KiB request body with its envelope.
    pub max_pin_value_bytes: usize,
}

impl Plan {
    /// This plan's quotas.
    ///
    /// ```rust
    /// use account_models::Plan;
    ///
    /// assert_eq!(Plan::Free.quotas().max_runs_per_day, 100);
    /// assert_eq!(Plan::Pro.quotas().max_api_keys, 20);
    /// ```
    pub fn quotas(self) -> PlanQuotas {
        match self {
            Plan::Free => PlanQuotas {
                max_workers: 3,
                max_runs_per_day: 100,
                max_concurrent_runs: 5,
                max_tokens_per_month: 1_000_000,
                max_api_keys: 5,
                max_requests_per_minute: Some(6_000),
                audit_retention_days: Some(30),
                max_members: 10,
            },
            Plan::Pro => PlanQuotas {
                max_workers: 10,
                max_runs_per_day: 1_000,
                max_concurrent_runs: 20,
                max_tokens_per_month: 10_000_000,
                max_api_keys: 20,
                max_requests_per_minute: Some(60_000),
                audit_retention_days: Some(365),
                max_members: 50,
            },
            Plan::Enterprise => PlanQuotas {
                max_workers: 100,
                max_runs_per_day: 100_000,
                max_concurrent_runs: 100,
                max_tokens_per_month: 1_000_000_000,
                max_api_keys: 100,
                max_requests_per_minute: None,
                // Seven years: what audits of regulated customers usually ask for.
                audit_retention_days: Some(2_555),
                max_members: 1_000,
            },
        }
    }

    /// This plan's memory-pin limits.
    ///
    /// ```rust
    /// use account_models::Plan;
    ///
    /// assert_eq!(Plan::Free.memory_pin_quotas().max_memory_pins, 1_000);
    /// assert_eq!(Plan::Pro.memory_pin_quotas().max_pin_value_bytes, 64 * 1024);
    /// ```
    pub fn memory_pin_quotas(self) -> MemoryPinQuotas {
        match self {
            Plan::Free => MemoryPinQuotas {
                max_memory_pins: 1_000,
                max_pin_value_bytes: 16 * 1024,
            },
            Plan::Pro => MemoryPinQuotas {
                max_memory_pins: 10_000,
                max_pin_value_bytes: 64 * 1024,
            },
            Plan::Enterprise => MemoryPinQuotas {
                max_memory_pins: 100_000,
                max_pin_value_bytes: 64 * 1024,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_specification() {
        // §4 of the specification, row by row.
        let table = [
            (Plan::Free, (3, 100, 5, 1_000_000, 5, Some(6_000), Some(30))),
            (
                Plan::Pro,
                (10, 1_000, 20, 10_000_000, 20, Some(60_000), Some(365)),
            ),
            (
                Plan::Enterprise,
                (100, 100_000, 100, 1_000_000_000, 100, None, Some(2_555)),
            ),
        ];
        assert_eq!(table.len(), Plan::ALL.len());
        // Seats (issue 23): not in the specification's table.
        let seats: Vec<i32> = Plan::ALL.iter().map(|p| p.quotas().max_members).collect();
        assert_eq!(seats, vec![10, 50, 1_000]);
        for (plan, (workers, runs, concurrent, tokens, keys, requests, retention)) in table {
            assert_eq!(
                plan.quotas(),
                PlanQuotas {
                    max_workers: workers,
                    max_runs_per_day: runs,
                    max_concurrent_runs: concurrent,
                    max_tokens_per_month: tokens,
                    max_api_keys: keys,
                    max_requests_per_minute: requests,
                    audit_retention_days: retention,
                    max_members: plan.quotas().max_members,
                },
                "{plan}"
            );
        }
    }

    #[test]
    fn higher_plans_never_grant_less() {
        for pair in Plan::ALL.windows(2) {
            let (lower, higher) = (pair[0].quotas(), pair[1].quotas());
            assert!(higher.max_workers >= lower.max_workers);
            assert!(higher.max_runs_per_day >= lower.max_runs_per_day);
            assert!(higher.max_concurrent_runs >= lower.max_concurrent_runs);
            assert!(higher.max_tokens_per_month >= lower.max_tokens_per_month);
            assert!(higher.max_api_keys >= lower.max_api_keys);
            // No limit is the most a plan can grant.
            let requests = |q: PlanQuotas| q.max_requests_per_minute.unwrap_or(i32::MAX);
            assert!(requests(higher) >= requests(lower));
            let retention = |q: PlanQuotas| q.audit_retention_days.unwrap_or(i32::MAX);
            assert!(retention(higher) >= retention(lower));
            let (lower, higher) = (pair[0].memory_pin_quotas(), pair[1].memory_pin_quotas());
            assert!(higher.max_memory_pins >= lower.max_memory_pins);
            assert!(higher.max_pin_value_bytes >= lower.max_pin_value_bytes);
        }
    }

    #[test]
    fn memory_pin_limits_per_plan() {
        let table = [
            (Plan::Free, (1_000, 16 * 1024)),
            (Plan::Pro, (10_000, 64 * 1024)),
            (Plan::Enterprise, (100_000, 64 * 1024)),
        ];
        assert_eq!(table.len(), Plan::ALL.len());
        for (plan, (pins, bytes)) in table {
            assert_eq!(
                plan.memory_pin_quotas(),
                MemoryPinQuotas {
                    max_memory_pins: pins,
                    max_pin_value_bytes: bytes,
                },
                "{plan}"
            );
            assert!(
                bytes <= 64 * 1024,
                "{plan}: a pin must fit a 128 KiB request"
            );
        }
    }
}
