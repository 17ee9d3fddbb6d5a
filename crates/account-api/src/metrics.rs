//! `/metrics`: the spine's per-operation counters and the HTTP layer's per-route counters in
//! the Prometheus text exposition format (version 0.0.4).

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters of one (method, route, status).
#[derive(Clone, Copy, Debug, Default)]
struct RouteCounters {
    count: u64,
    duration: Duration,
}

/// HTTP request counters, per method, matched route template and status.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics(Mutex<BTreeMap<(String, String, u16), RouteCounters>>);

impl HttpMetrics {
    fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let counters = map
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        counters.count += 1;
        counters.duration = counters.duration.saturating_add(took);
    }

    fn snapshot(&self) -> BTreeMap<(String, String, u16), RouteCounters> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Middleware: counts every request under its route template (`/v1/runs/{id}`, never the raw
/// path, so ids do not explode the series); unmatched requests count as `unmatched`.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.http_metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Escapes a label value (`\`, `"` and newlines).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text.
pub(crate) fn render(state: &AppState) -> String {
    let mut out = String::new();
    let spine = state.spine.metrics();
    let _ = writeln!(
        out,
        "# HELP account_operation_calls_total Use case calls started, per operation."
    );
    let _ = writeln!(out, "# TYPE account_operation_calls_total counter");
    for m in &spine.operations {
        let _ = writeln!(
            out,
            "account_operation_calls_total{{operation=\"{}\"}} {}",
            m.operation, m.calls
        );
    }
    let _ = writeln!(
        out,
        "# HELP account_operation_errors_total Use case calls that failed, per operation and error code."
    );
    let _ = writeln!(out, "# TYPE account_operation_errors_total counter");
    for m in &spine.operations {
        for (code, count) in &m.errors {
            let _ = writeln!(
                out,
                "account_operation_errors_total{{operation=\"{}\",code=\"{}\"}} {count}",
                m.operation,
                label(code)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP account_operation_duration_seconds Time spent in finished use case calls."
    );
    let _ = writeln!(out, "# TYPE account_operation_duration_seconds summary");
    for m in &spine.operations {
        let _ = writeln!(
            out,
            "account_operation_duration_seconds_sum{{operation=\"{}\"}} {}",
            m.operation,
            m.duration_sum.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "account_operation_duration_seconds_count{{operation=\"{}\"}} {}",
            m.operation, m.duration_count
        );
    }
    let quota_refusals: u64 = spine
        .operations
        .iter()
        .flat_map(|m| m.errors.iter())
        .filter(|(code, _)| code.starts_with("quota_"))
        .map(|(_, count)| count)
        .sum();
    let _ = writeln!(
        out,
        "# HELP account_quota_refusals_total Use case calls refused by a tenant quota (error codes quota_*)."
    );
    let _ = writeln!(out, "# TYPE account_quota_refusals_total counter");
    let _ = writeln!(out, "account_quota_refusals_total {quota_refusals}");
    let reads = spine.reads;
    let _ = writeln!(
        out,
        "# HELP account_reads_total Read use cases by the node that served them (zero without read replicas; fallback: failed on a replica, then served by the primary).\n# TYPE account_reads_total counter\naccount_reads_total{{node=\"replica\"}} {}\naccount_reads_total{{node=\"primary\"}} {}\naccount_reads_total{{node=\"fallback\"}} {}",
        reads.replica, reads.primary, reads.fallbacks
    );
    let cache = spine.verify_cache;
    let _ = writeln!(
        out,
        "# HELP account_verify_cache_total API-key verifications by cache outcome (a miss reads the database).\n# TYPE account_verify_cache_total counter\naccount_verify_cache_total{{outcome=\"hit\"}} {}\naccount_verify_cache_total{{outcome=\"miss\"}} {}",
        cache.hits, cache.misses
    );
    let limits = spine.rate_limits;
    let _ = writeln!(
        out,
        "# HELP account_rate_limit_requests_total Requests counted against API keys' rate limits, by outcome.\n# TYPE account_rate_limit_requests_total counter\naccount_rate_limit_requests_total{{outcome=\"admitted\"}} {}\naccount_rate_limit_requests_total{{outcome=\"refused\"}} {}",
        limits.requests.saturating_sub(limits.refused),
        limits.refused
    );
    let _ = writeln!(
        out,
        "# HELP account_rate_limit_leases_total Batches of allowance leased from the shared state (one statement each).\n# TYPE account_rate_limit_leases_total counter\naccount_rate_limit_leases_total {}",
        limits.leases
    );
    let http = state.http_metrics.snapshot();
    let _ = writeln!(
        out,
        "# HELP account_http_requests_total HTTP requests answered, per method, route and status."
    );
    let _ = writeln!(out, "# TYPE account_http_requests_total counter");
    for ((method, route, status), c) in &http {
        let _ = writeln!(
            out,
            "account_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
            label(route),
            c.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP account_http_request_duration_seconds Time to answer HTTP requests, per method, route and status."
    );
    let _ = writeln!(out, "# TYPE account_http_request_duration_seconds summary");
    for ((method, route, status), c) in &http {
        let labels = format!(
            "method=\"{method}\",route=\"{}\",status=\"{status}\"",
            label(route)
        );
        let _ = writeln!(
            out,
            "account_http_request_duration_seconds_sum{{{labels}}} {}",
            c.duration.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "account_http_request_duration_seconds_count{{{labels}}} {}",
            c.count
        );
    }
    out
}

/// Prometheus metrics: per-operation calls, errors by code and durations; quota refusals;
/// HTTP requests and latency per route and status.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4.", body = String, content_type = "text/plain"))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        render(&state),
    )
}
