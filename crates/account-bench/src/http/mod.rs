//! `account-bench --http`: the release `account-api` binary under load from wrk, beside the
//! spine call alone, in the same run on the same database.
//!
//! Per backend: seed a fresh database with the harness's own seeding (quotas lifted, so
//! admissions measure admitting, not refusing), start the API on it with its access log on
//! (as deployed), then for each endpoint and 1, 8 and 32 connections a wrk cell followed by
//! the same use case called on an in-process [`Spine`] by as many tasks for as long, while the
//! API idles. The spine cell authenticates the same key first, as the API does per request,
//! so the difference between the two is the HTTP stack: parsing, routing, the tracing span,
//! the access-log line, JSON, the socket. Last, the access log's cost: `GET /v1/runs` with the
//! log off and on, alternately, each on a freshly started server.

mod server;
mod wrk;

use crate::database::fresh_database;
use crate::report::{Latencies, load_average};
use crate::{Cli, cases, connect_options, pepper, seed};
use account_spine::api_keys::KeyVerification;
use account_spine::runs::{AdmitRun, RunFilter};
use account_spine::{DatabaseConfig, OffsetPage, RequestMeta, Spine};
use anyhow::{Context, Result, ensure};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::Database;
pub(crate) use server::ApiServer;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wrk::{Figures, Load};

/// Connections per cell (and callers of the spine cell beside it).
const CONNECTIONS: [usize; 3] = [1, 8, 32];
/// The API's pool size (its `--db-max-connections` default), given to the spine too.
const POOL: u32 = 16;
/// Connections of the access-log comparison.
const LOG_CONNECTIONS: usize = 8;

/// Dataset sizes and cell length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HttpSizes {
    spread_tenants: usize,
    /// Usage records of the hot tenant in November 2026 (the month `GET /v1/usage` asks for).
    usage_records: u64,
    /// Runs admitted before timing, so the first page of `GET /v1/runs` is full.
    runs: usize,
    /// Seconds per cell, wrk and spine alike.
    cell_seconds: u64,
    /// Rounds of the access-log comparison, each a cell with the log off and one with it on.
    log_rounds: usize,
}

impl HttpSizes {
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Self {
                spread_tenants: 20,
                usage_records: 1_000,
                runs: 60,
                cell_seconds: 2,
                log_rounds: 2,
            }
        } else {
            Self {
                spread_tenants: 100,
                usage_records: 10_000,
                runs: 60,
                cell_seconds: 10,
                log_rounds: 4,
            }
        }
    }
}

/// The endpoints under load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Usage,
    RunsList,
    Verify,
    AdmitHot,
    AdmitSpread,
}

impl Endpoint {
    /// Reads first: admissions grow the runs table the list reads.
    const ALL: [Endpoint; 5] = [
        Endpoint::Usage,
        Endpoint::RunsList,
        Endpoint::Verify,
        Endpoint::AdmitHot,
        Endpoint::AdmitSpread,
    ];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Usage => "GET /v1/usage",
            Endpoint::RunsList => "GET /v1/runs",
            Endpoint::Verify => "POST /v1/keys/verify",
            Endpoint::AdmitHot => "POST /v1/runs hot",
            Endpoint::AdmitSpread => "POST /v1/runs spread",
        }
    }

    fn spread(self) -> bool {
        self == Endpoint::AdmitSpread
    }

    fn load(self, fixture: &Fixture) -> Load {
        let (method, path, body) = match self {
            Endpoint::Usage => (
                "GET",
                "/v1/usage?start=2026-11-01T00:00:00Z&end=2026-12-01T00:00:00Z",
                None,
            ),
            Endpoint::RunsList => ("GET", "/v1/runs?limit=50", None),
            Endpoint::Verify => (
                "POST",
                "/v1/keys/verify",
                Some(format!(r#"{{"key":"{}"}}"#, fixture.hot_key)),
            ),
            Endpoint::AdmitHot | Endpoint::AdmitSpread => (
                "POST",
                "/v1/runs",
                Some(r#"{"worker_id":"bench-worker","task":"benchmark"}"#.to_owned()),
            ),
        };
        Load {
            method,
            path: path.to_owned(),
            body,
            keys_file: if self.spread() {
                fixture.dir.join("spread.keys")
            } else {
                fixture.dir.join("hot.keys")
            },
        }
    }

    /// What the API's handler does for one request, on an in-process spine.
    async fn call(self, spine: &Spine, key: &str, hot_key: &str) -> Result<()> {
        let principal = spine
            .authenticate_api_key(key, RequestMeta::default())
            .await?;
        match self {
            Endpoint::Usage => {
                let (start, end) = november()?;
                spine.usage_summary(&principal, start, end).await?;
            }
            Endpoint::RunsList => {
                let page = OffsetPage {
                    limit: 50,
                    offset: 0,
                };
                spine
                    .list_runs(&principal, &RunFilter::default(), page)
                    .await?;
            }
            Endpoint::Verify => {
                let verdict = spine.verify_presented_key(&principal, hot_key).await?;
                ensure!(
                    matches!(verdict, KeyVerification::Valid(_)),
                    "the hot key did not verify"
                );
            }
            Endpoint::AdmitHot | Endpoint::AdmitSpread => {
                spine
                    .admit_run(
                        &principal,
                        AdmitRun {
                            worker_id: "bench-worker".to_owned(),
                            task: "benchmark".to_owned(),
                            input: None,
                            token_estimate: 0,
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

fn november() -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let at = |month| Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).single();
    Ok((at(11).context("start")?, at(12).context("end")?))
}

/// The seeded keys and the run's files.
struct Fixture {
    dir: PathBuf,
    hot_key: String,
    spread_keys: Vec<String>,
}

/// The spine call alone: `callers` tasks for `length`, keys rotating as wrk's do.
#[derive(Default)]
struct SpineCell {
    rate: f64,
    latencies: Latencies,
    errors: u64,
}

async fn spine_cell(
    spine: &Spine,
    endpoint: Endpoint,
    fixture: &Fixture,
    callers: usize,
    length: Duration,
) -> Result<SpineCell> {
    let keys = Arc::new(if endpoint.spread() {
        fixture.spread_keys.clone()
    } else {
        vec![fixture.hot_key.clone()]
    });
    let hot_key = Arc::new(fixture.hot_key.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (spine, keys, hot_key, next) =
            (spine.clone(), keys.clone(), hot_key.clone(), next.clone());
        tasks.spawn(async move {
            let (mut latencies, mut errors, mut first_error) = (Latencies::default(), 0, None);
            while Instant::now() < deadline {
                let key = &keys[next.fetch_add(1, Ordering::Relaxed) % keys.len()];
                let began = Instant::now();
                match endpoint.call(&spine, key, &hot_key).await {
                    Ok(()) => latencies.push(began.elapsed()),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(format!("{error:#}"));
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut cell = SpineCell::default();
    while let Some(joined) = tasks.join_next().await {
        let (latencies, errors, first_error) = joined?;
        cell.latencies.extend(latencies);
        cell.errors += errors;
        if let Some(error) = first_error {
            eprintln!("    spine {} x{callers}: error: {error}", endpoint.name());
        }
    }
    cell.rate = cell.latencies.len() as f64 / started.elapsed().as_secs_f64();
    Ok(cell)
}

/// One row of the table.
struct Row {
    endpoint: Endpoint,
    connections: usize,
    http: Figures,
    spine: SpineCell,
}

/// Runs the HTTP benchmark on each backend and prints its tables.
pub(crate) async fn run(cli: &Cli, backends: &[&'static str]) -> Result<()> {
    wrk::check_installed()?;
    let binary = match &cli.api_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("account-api"),
    };
    ensure!(
        binary.is_file(),
        "no account-api binary at {} (cargo xtask bench --http builds it; or --api-binary)",
        binary.display()
    );
    let sizes = HttpSizes::new(cli.quick);
    println!("http sizes: {sizes:?}; API binary {}", binary.display());
    for backend in backends {
        let rendered = run_backend(backend, cli, sizes, &binary).await?;
        println!("{rendered}");
    }
    Ok(())
}

async fn run_backend(
    backend: &'static str,
    cli: &Cli,
    sizes: HttpSizes,
    binary: &Path,
) -> Result<String> {
    let load_before = load_average();
    let dir = std::env::temp_dir().join(format!("account-bench-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (url, pg) = match backend {
        "sqlite" => (
            format!("sqlite://{}?mode=rwc", dir.join("account.db").display()),
            None,
        ),
        _ => {
            let admin_url = cli.pg_url.as_deref().context("PostgreSQL needs --pg-url")?;
            let database = fresh_database(admin_url, "account_bench_http").await?;
            (database.url.clone(), Some(database))
        }
    };
    let outcome = measure(backend, cli, sizes, binary, &dir, &url).await;
    if let Some(database) = pg {
        // The spine's pool is gone with `measure`; FORCE ends the API's stragglers, if any.
        database.drop_database().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(format!(
        "{}\n{backend}: load average before {load_before}, after {}\n",
        outcome?,
        load_average()
    ))
}

/// Seeds the database, then measures every cell; returns the rendered tables.
async fn measure(
    backend: &'static str,
    cli: &Cli,
    sizes: HttpSizes,
    binary: &Path,
    dir: &Path,
    url: &str,
) -> Result<String> {
    account_spine::migrate(&DatabaseConfig::new(url)).await?;
    let db = Database::connect(connect_options(url, POOL)).await?;
    let spine = Spine::from_connection(db.clone()).with_pepper(pepper()?);
    eprintln!("    {backend}: seeding");
    let fixture = seed_fixture(&spine, &db, sizes, dir).await?;
    let script = dir.join("wrk.lua");
    std::fs::write(&script, wrk::SCRIPT)?;
    let pepper_file = dir.join("account.pepper");
    // The harness's pepper, so the keys it issued verify in the API.
    std::fs::write(&pepper_file, crate::PEPPER)?;
    let wanted = |name: &str| cli.filter.as_deref().is_none_or(|f| name.contains(f));
    let seconds = sizes.cell_seconds;
    let cell = Duration::from_secs(seconds);

    let mut rows = Vec::new();
    let endpoints: Vec<Endpoint> = Endpoint::ALL
        .into_iter()
        .filter(|e| wanted(e.name()))
        .collect();
    let mut access_lines = None;
    if !endpoints.is_empty() {
        let log = dir.join("api.log");
        let server = ApiServer::start(binary, url, &pepper_file, &log, true)?;
        // Warm-up, untimed: each key's first verification, statement caches, pools.
        let mut requests = 0;
        for &endpoint in &endpoints {
            let load = endpoint.load(&fixture);
            requests += wrk::run(&script, server.port, &load, 1, 1).await?.requests;
            spine_cell(&spine, endpoint, &fixture, 1, Duration::from_millis(300)).await?;
        }
        for &endpoint in &endpoints {
            let load = endpoint.load(&fixture);
            for connections in CONNECTIONS {
                let http = wrk::run(&script, server.port, &load, connections, seconds).await?;
                let alone = spine_cell(&spine, endpoint, &fixture, connections, cell).await?;
                eprintln!(
                    "    {backend}: {} x{connections}: {:.0} req/s, spine {:.0}/s",
                    endpoint.name(),
                    http.rate(),
                    alone.rate
                );
                rows.push(Row {
                    endpoint,
                    connections,
                    http,
                    spine: alone,
                });
            }
        }
        requests += rows.iter().map(|r| r.http.requests).sum::<u64>();
        access_lines = Some((server.stop()?, requests));
    }
    let mut out = render(backend, &rows, access_lines);
    if wanted("access-log") {
        let load = Endpoint::RunsList.load(&fixture);
        let mut cells = Vec::new();
        for round in 0..sizes.log_rounds {
            // Off-on, then on-off: a drift in the machine's load favours neither.
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for access_log in order {
                let log = dir.join(format!("api-log-{access_log}-{round}.log"));
                let server = ApiServer::start(binary, url, &pepper_file, &log, access_log)?;
                wrk::run(&script, server.port, &load, LOG_CONNECTIONS, 1).await?;
                let figures =
                    wrk::run(&script, server.port, &load, LOG_CONNECTIONS, seconds).await?;
                let lines = server.stop()?;
                eprintln!(
                    "    {backend}: access log {access_log}, round {round}: {:.0} req/s",
                    figures.rate()
                );
                cells.push((round, access_log, figures, lines));
            }
        }
        out.push_str(&render_access_log(backend, &cells));
    }
    drop(spine);
    db.close().await?;
    Ok(out)
}

/// The hot tenant (usage, runs, its key), the spread tenants' keys, quotas lifted.
async fn seed_fixture(
    spine: &Spine,
    db: &sea_orm::DatabaseConnection,
    sizes: HttpSizes,
    dir: &Path,
) -> Result<Fixture> {
    let bootstrap = |label: String| async move {
        let (created, key) = spine
            .bootstrap(
                &cases::operator(),
                &format!("owner-{label}@bench.test"),
                &label,
            )
            .await
            .with_context(|| format!("bootstrapping tenant {label}"))?;
        anyhow::Ok((created.tenant.id, key.plaintext.expose().to_owned()))
    };
    let (hot, hot_key) = bootstrap("hot".to_owned()).await?;
    let mut spread_keys = Vec::with_capacity(sizes.spread_tenants);
    for i in 0..sizes.spread_tenants {
        spread_keys.push(bootstrap(format!("spread-{i}")).await?.1);
    }
    // Without this a hot tenant at 32 connections measures 429s (runs per day, concurrent
    // runs), not admissions; the refusals that remain show as non-2xx.
    seed::lift_quotas(db).await?;
    seed::usage(db, hot.as_uuid(), sizes.usage_records).await?;
    let fixture = Fixture {
        dir: dir.to_owned(),
        hot_key,
        spread_keys,
    };
    for _ in 0..sizes.runs {
        Endpoint::AdmitHot
            .call(spine, &fixture.hot_key, &fixture.hot_key)
            .await
            .context("seeding runs")?;
    }
    seed::analyze(db).await?;
    std::fs::write(dir.join("hot.keys"), format!("{}\n", fixture.hot_key))?;
    std::fs::write(
        dir.join("spread.keys"),
        fixture.spread_keys.join("\n") + "\n",
    )?;
    Ok(fixture)
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.2}", d.as_secs_f64() * 1e3),
    )
}

fn render(backend: &str, rows: &[Row], access_lines: Option<(u64, u64)>) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n### {backend}: HTTP (wrk) beside the spine call alone (latency in ms)\n\n\
         | endpoint | backend | conns | req/s | p50 | p99 | max | non-2xx | socket errors/timeouts | spine calls/s | spine p50 | spine p99 | spine errors |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for row in rows {
        let (http, spine) = (&row.http, &row.spine);
        let _ = writeln!(
            out,
            "| {} | {backend} | {} | {:.0} | {} | {} | {} | {} | {}/{} | {:.0} | {} | {} | {} |",
            row.endpoint.name(),
            row.connections,
            http.rate(),
            ms(Some(http.p50)),
            ms(Some(http.p99)),
            ms(Some(http.max)),
            http.non_2xx,
            http.socket_errors,
            http.timeouts,
            spine.rate,
            ms(spine.latencies.quantile(0.5)),
            ms(spine.latencies.quantile(0.99)),
            spine.errors,
        );
    }
    if let Some((lines, requests)) = access_lines {
        let _ = writeln!(
            out,
            "\nAccess-log lines written: {lines} for {requests} requests wrk counted, warm-up \
             included (answers still in flight when a cell ends are logged, not counted)."
        );
    }
    out
}

fn render_access_log(backend: &str, cells: &[(usize, bool, Figures, u64)]) -> String {
    let mut out = format!(
        "\n### {backend}: access log off and on, GET /v1/runs, {LOG_CONNECTIONS} connections\n\n\
         | round | access log | req/s | p50 ms | p99 ms | max ms | non-2xx | log lines |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for (round, on, figures, lines) in cells {
        let _ = writeln!(
            out,
            "| {round} | {} | {:.0} | {} | {} | {} | {} | {lines} |",
            if *on { "on" } else { "off" },
            figures.rate(),
            ms(Some(figures.p50)),
            ms(Some(figures.p99)),
            ms(Some(figures.max)),
            figures.non_2xx,
        );
    }
    // Each round's cost from its own two cells (taken back to back), then the median: the
    // machine's load moves more between rounds than within one.
    let costs: Vec<f64> = cells
        .chunks(2)
        .filter_map(|pair| {
            let rate = |on: bool| pair.iter().find(|c| c.1 == on).map(|c| c.2.rate());
            let (off, on) = (rate(false)?, rate(true)?);
            (off > 0.0).then(|| 100.0 * (off - on) / off)
        })
        .collect();
    let mut sorted = costs.clone();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median = match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some(f64::midpoint(sorted[middle - 1], sorted[middle])),
    };
    if let Some(median) = median {
        let each: Vec<String> = costs.iter().map(|c| format!("{c:.1}")).collect();
        let _ = writeln!(
            out,
            "\nAccess log cost (throughput lost with it on, per round: {} %): median {median:.1} %.",
            each.join(", ")
        );
    }
    out
}
