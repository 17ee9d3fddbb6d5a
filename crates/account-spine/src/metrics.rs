//! Per-operation counters kept in process: calls, errors by code, and time spent. A host
//! reads them with [`Spine::metrics`](crate::Spine::metrics) and renders them (e.g. as
//! Prometheus text: `calls` and `errors` are counters, the duration a summary's sum and count).

use crate::operations::Operation;
use crate::replicas::ReadRoutingMetrics;
use crate::verify_cache::VerifyCacheMetrics;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// One operation's counters since the spine was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationMetrics {
    /// The operation's stable name ([`Operation::name`]).
    pub operation: &'static str,
    /// Calls started.
    pub calls: u64,
    /// Calls that failed, by error code ([`ErrorCode::code`](crate::ErrorCode::code)).
    pub errors: BTreeMap<&'static str, u64>,
    /// Total time of the calls that finished (successful or not).
    pub duration_sum: Duration,
    /// Calls that finished (a call whose future was dropped is counted in `calls` only).
    pub duration_count: u64,
}

impl OperationMetrics {
    /// Calls that failed, whatever the code.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A copy of every operation's counters, in [`Operation::ALL`] order (operations never called
/// have zeros, so a scrape always sees every series).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// One entry per operation.
    pub operations: Vec<OperationMetrics>,
    /// The API-key verify cache's hits and misses.
    pub verify_cache: VerifyCacheMetrics,
    /// Requests counted against keys' rate limits, refusals, and leases taken.
    pub rate_limits: crate::rate_limits::RateLimitMetrics,
    /// Where read use cases went: replicas, the primary, fallbacks (all zero without
    /// replicas; see [`crate::Spine::replica_status`] for each replica).
    pub reads: ReadRoutingMetrics,
}

impl MetricsSnapshot {
    /// The counters of `operation`.
    pub fn operation(&self, operation: Operation) -> Option<&OperationMetrics> {
        self.operations
            .iter()
            .find(|m| m.operation == operation.name())
    }
}

#[derive(Clone, Debug, Default)]
struct Counters {
    calls: u64,
    errors: BTreeMap<&'static str, u64>,
    duration_sum: Duration,
    duration_count: u64,
}

/// The registry a spine and its clones share.
#[derive(Debug, Default)]
pub(crate) struct MetricsRegistry(Mutex<HashMap<Operation, Counters>>);

impl MetricsRegistry {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Operation, Counters>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn started(&self, operation: Operation) {
        self.with(|map| map.entry(operation).or_default().calls += 1);
    }

    pub(crate) fn finished(
        &self,
        operation: Operation,
        took: Duration,
        error: Option<&'static str>,
    ) {
        self.with(|map| {
            let counters = map.entry(operation).or_default();
            counters.duration_sum = counters.duration_sum.saturating_add(took);
            counters.duration_count += 1;
            if let Some(code) = error {
                *counters.errors.entry(code).or_default() += 1;
            }
        });
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        self.with(|map| MetricsSnapshot {
            operations: Operation::ALL
                .iter()
                .map(|&operation| {
                    let counters = map.get(&operation).cloned().unwrap_or_default();
                    OperationMetrics {
                        operation: operation.name(),
                        calls: counters.calls,
                        errors: counters.errors,
                        duration_sum: counters.duration_sum,
                        duration_count: counters.duration_count,
                    }
                })
                .collect(),
            verify_cache: VerifyCacheMetrics::default(),
            rate_limits: crate::rate_limits::RateLimitMetrics::default(),
            reads: ReadRoutingMetrics::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_per_operation_and_code() {
        let registry = MetricsRegistry::default();
        registry.started(Operation::RunsAdmit);
        registry.started(Operation::RunsAdmit);
        registry.started(Operation::RunsAdmit);
        registry.finished(Operation::RunsAdmit, Duration::from_millis(3), None);
        registry.finished(
            Operation::RunsAdmit,
            Duration::from_millis(2),
            Some("quota_runs_per_day"),
        );
        let snapshot = registry.snapshot();
        assert_eq!(snapshot.operations.len(), Operation::ALL.len());
        let admit = snapshot
            .operation(Operation::RunsAdmit)
            .cloned()
            .unwrap_or_default();
        assert_eq!(admit.calls, 3);
        assert_eq!(admit.duration_count, 2);
        assert_eq!(admit.duration_sum, Duration::from_millis(5));
        assert_eq!(admit.errors.get("quota_runs_per_day"), Some(&1));
        assert_eq!(admit.error_total(), 1);
        let list = snapshot
            .operation(Operation::RunsList)
            .cloned()
            .unwrap_or_default();
        assert_eq!((list.calls, list.duration_count), (0, 0));
    }
}
