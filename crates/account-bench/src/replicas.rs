//! Read throughput with a streaming replica against the primary alone, in the same run
//! (PostgreSQL; `cargo xtask bench` starts the replica beside its durable server). Two spines
//! on the same database: the harness's (primary only) and one configured with the replica;
//! the same read use cases, by a principal that writes nothing meanwhile (so every read may
//! go to the replica), at 1 and 32 callers.

use crate::Harness;
use account_spine::{DatabaseConfig, Principal, Spine};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// One read use case, as a plain function of the spine and the reader.
type Read = fn(Spine, Principal) -> crate::BoxFuture<Result<()>>;

/// The spine reading from `replica_url`, once the replica has caught up with the seeding.
async fn replica_spine(h: &Harness, url: &str, replica_url: &str) -> Result<Spine> {
    let config = DatabaseConfig::new(url).with_replicas([replica_url]);
    let spine = Spine::connect(&config).await?.with_pepper(crate::pepper()?);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let caught_up = spine
            .replica_status()
            .iter()
            .all(|r| r.usable && r.lag.is_some_and(|lag| lag < Duration::from_millis(200)));
        if caught_up {
            return Ok(spine);
        }
        if Instant::now() > deadline {
            bail!(
                "{}: the replica did not catch up: {:?}",
                h.backend,
                spine.replica_status()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `callers` tasks calling `read` on `spine` for `span`: calls/s, p50 and p99 in µs.
async fn measure(
    spine: &Spine,
    principal: &Principal,
    read: Read,
    callers: usize,
    span: Duration,
) -> Result<(f64, f64, f64)> {
    let deadline = Instant::now() + span;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (spine, principal) = (spine.clone(), principal.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let at = Instant::now();
                read(spine.clone(), principal.clone()).await?;
                latencies.push(at.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let calls = latencies.len().max(1);
    latencies.sort_unstable();
    let at = |q: f64| latencies[((calls - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    Ok((
        calls as f64 / started.elapsed().as_secs_f64(),
        at(0.5),
        at(0.99),
    ))
}

fn billing_summary(spine: Spine, principal: Principal) -> crate::BoxFuture<Result<()>> {
    Box::pin(async move {
        spine.billing_summary(&principal).await?;
        Ok(())
    })
}

fn profile(spine: Spine, principal: Principal) -> crate::BoxFuture<Result<()>> {
    Box::pin(async move {
        spine.get_profile(&principal).await?;
        Ok(())
    })
}

/// Measures both ways and appends the table to the report; nothing without a replica.
pub(crate) async fn run(h: &mut Harness, reader: &Principal) -> Result<()> {
    let Some(replica_url) = h.replica_url.clone() else {
        return Ok(());
    };
    if !h.wanted("replica") {
        return Ok(());
    }
    let url = h.url.clone();
    let with_replica = replica_spine(h, &url, &replica_url)
        .await
        .context("a spine reading from the replica")?;
    let span = h.sizes.throughput_for;
    let mut table = format!(
        "\n### {}: reads with a streaming replica (issue 21)\n\n\
         | read | callers | primary only/s | p50/p99 µs | with the replica/s | p50/p99 µs | served by the replica |\n\
         |---|---|---|---|---|---|---|\n",
        h.backend
    );
    let reads: [(&str, Read); 2] = [
        ("tenant.detail (billing summary)", billing_summary),
        ("user.detail (profile)", profile),
    ];
    for (name, read) in reads {
        for callers in [1, 32] {
            let (primary, p50, p99) = measure(&h.spine, reader, read, callers, span).await?;
            let before = with_replica.metrics().reads;
            let (replica, r50, r99) = measure(&with_replica, reader, read, callers, span).await?;
            let after = with_replica.metrics().reads;
            let by_replica = after.replica - before.replica;
            let total = (by_replica + after.primary - before.primary).max(1);
            let _ = writeln!(
                table,
                "| {name} | {callers} | {primary:.0} | {p50:.0}/{p99:.0} | {replica:.0} | {r50:.0}/{r99:.0} | {:.0} % |",
                100.0 * by_replica as f64 / total as f64
            );
        }
    }
    h.report.extra.push(table);
    Ok(())
}
