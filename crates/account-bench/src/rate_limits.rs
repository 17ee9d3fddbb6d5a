//! What a rate limit costs per request: the spine's limiter, shared by every instance on the
//! database (leased batches), against a per-process GCRA (governor, what the API used before
//! issue 21), in the same run, at 1 and 32 callers. Two regimes for the shared one: within
//! the allowance (a tenant-wide limit no caller reaches: leases, and spending them), and over
//! it (a key limited to 60 a minute: nearly every request refused from the remembered
//! refusal).

use crate::Harness;
use account_spine::api_keys::IssueKey;
use account_spine::{Principal, RequestMeta, Spine, SpineError};
use anyhow::{Context, Result};
use governor::{DefaultDirectRateLimiter, Quota};
use sea_orm::{ConnectionTrait, Statement};
use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A limit no caller of the run reaches (a tenant's: a key's is at most 1,000 a minute).
const UNREACHED: i32 = 1_000_000_000;
/// A limit every caller of the run overruns.
const OVERRUN: i32 = 60;

/// Which limiter a row measures.
#[derive(Clone)]
enum Limiter {
    PerProcess(Arc<DefaultDirectRateLimiter>),
    Shared(Box<(Spine, Principal)>),
}

impl Limiter {
    async fn check(&self) -> Result<bool> {
        Ok(match self {
            Self::PerProcess(limiter) => limiter.check().is_ok(),
            Self::Shared(shared) => match shared.0.admit_request(&shared.1).await {
                Ok(_) => true,
                Err(SpineError::RateLimited { .. }) => false,
                Err(error) => return Err(error.into()),
            },
        })
    }
}

/// `sql` with `$1`, `$2` (PostgreSQL) or `?1`, `?2` (SQLite) bound to `values`.
async fn execute(h: &Harness, sql: &str, values: Vec<sea_orm::Value>) -> Result<()> {
    let backend = h.db().get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    };
    h.db()
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// A key of the owner's tenant limited to `rpm`, as the spine authenticates it.
async fn key_limited_to(h: &Harness, owner: &Principal, rpm: i32) -> Result<Principal> {
    let issued = h
        .spine
        .issue_api_key(
            owner,
            IssueKey {
                name: format!("limited-{rpm}"),
                rate_limit_rpm: Some(rpm),
                ..IssueKey::default()
            },
        )
        .await?;
    Ok(h.spine
        .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
        .await?)
}

/// One row: `callers` tasks calling `limiter` for `span`.
async fn measure(
    limiter: &Limiter,
    callers: usize,
    span: Duration,
) -> Result<(usize, f64, f64, f64, u64)> {
    let deadline = Instant::now() + span;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let limiter = limiter.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut admitted = 0_u64;
            while Instant::now() < deadline {
                let at = Instant::now();
                admitted += u64::from(limiter.check().await?);
                latencies.push(at.elapsed());
            }
            anyhow::Ok((latencies, admitted))
        });
    }
    let (mut latencies, mut admitted) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (l, a) = done??;
        latencies.extend(l);
        admitted += a;
    }
    let calls = latencies.len().max(1);
    latencies.sort_unstable();
    let at = |q: f64| latencies[((calls - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let per_second = calls as f64 / started.elapsed().as_secs_f64();
    Ok((calls, per_second, at(0.5), at(0.99), admitted))
}

/// Measures every row on the harness's spine and appends the table to the report.
pub(crate) async fn run(h: &mut Harness, owner: &Principal) -> Result<()> {
    if !h.wanted("rate_limit") {
        return Ok(());
    }
    let span = h.sizes.throughput_for;
    let tenant_limit = "UPDATE tenants SET max_requests_per_minute = $1 WHERE id = $2";
    let tenant = owner.tenant_id.as_uuid();
    execute(h, tenant_limit, vec![UNREACHED.into(), tenant.into()])
        .await
        .context("a tenant-wide limit")?;
    let overrun = key_limited_to(h, owner, OVERRUN).await?;
    let governor = Arc::new(DefaultDirectRateLimiter::direct(Quota::per_minute(
        NonZeroU32::new(UNREACHED as u32).context("a limit")?,
    )));
    let mut table = format!(
        "\n### {}: rate limit per request (issue 21)\n\n\
         | limiter | callers | checks/s | p50 µs | p99 µs | leases per 1,000 checks | admitted |\n\
         |---|---|---|---|---|---|---|\n",
        h.backend
    );
    for callers in [1, 32] {
        let rows = [
            (
                "per process (governor)",
                Limiter::PerProcess(governor.clone()),
            ),
            (
                "shared, within the allowance (tenant-wide limit)",
                Limiter::Shared(Box::new((h.spine.clone(), owner.clone()))),
            ),
            (
                "shared, over it (key limited to 60/min)",
                Limiter::Shared(Box::new((h.spine.clone(), overrun.clone()))),
            ),
        ];
        for (name, limiter) in rows {
            let leases_before = h.spine.metrics().rate_limits.leases;
            let (checks, per_second, p50, p99, admitted) = measure(&limiter, callers, span).await?;
            let leases = match limiter {
                Limiter::PerProcess(_) => "-".to_owned(),
                Limiter::Shared(..) => format!(
                    "{:.2}",
                    (h.spine.metrics().rate_limits.leases - leases_before) as f64 * 1000.0
                        / checks as f64
                ),
            };
            let _ = writeln!(
                table,
                "| {name} | {callers} | {per_second:.0} | {p50:.1} | {p99:.1} | {leases} | {admitted} |"
            );
        }
    }
    h.report.extra.push(table);
    // The other cases run unlimited, as `seed::lift_quotas` left them.
    let no_limit: Option<i32> = None;
    execute(h, tenant_limit, vec![no_limit.into(), tenant.into()]).await
}
