//! Layer: tooling — bench. The benchmark harness behind `cargo xtask bench`.
// Over 600 lines: the harness, its three ways and its latency and throughput loops share the
// pools, the recorder and the report; split, that state would be visible to every case module.
//!
//! Every operation is measured three ways in the same process and the same run, interleaved
//! round by round: through the [`Spine`]; as the statements the spine issued (recorded by a
//! sea-orm metric callback) replayed through plain sea-orm on the spine's own pool; and as the
//! same statements through the raw driver (tokio-postgres, or rusqlite on SQLite). It prints
//! p50/p99 per way and the ratios spine/sea-orm and spine/raw, because absolute latencies on
//! this VM kind move 5–8× with vCPU idle state (see BENCHMARKS.md).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark reports on the terminal

mod audit_export;
mod capture;
mod cases;
mod database;
mod http;
mod profile;
mod rate_limits;
mod replay;
mod replicas;
mod report;
mod seed;

use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, Spine};
use anyhow::{Context, Result, bail};
use capture::{Captured, Inputs, Recorder};
use clap::{Parser, ValueEnum};
use database::{fresh_database, remove_sqlite};
use profile::{Profile, ProfileArgs};
use replay::{RawPg, RawSqlite, SeaOrmReplay};
use report::{Latencies, LatencyRow, Report, ThroughputRow, Way, banner, load_average};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which databases to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

/// The spine against plain sea-orm and the raw drivers, same statements, same run.
#[derive(Parser, Debug)]
#[command(name = "account-bench")]
struct Cli {
    /// Databases to run on.
    #[arg(long, value_enum, default_value = "both")]
    backend: BackendChoice,
    /// Small datasets and few iterations (a smoke run of seconds).
    #[arg(long)]
    quick: bool,
    /// Only operations whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// An admin URL of a PostgreSQL server; the run creates and drops a database on it.
    #[arg(long, env = "ACCOUNT_BENCH_PG_URL")]
    pg_url: Option<String>,
    /// An admin URL of a streaming replica of that server: reads are then also measured
    /// through it (`cargo xtask bench` starts one).
    #[arg(long, env = "ACCOUNT_BENCH_PG_REPLICA_URL")]
    pg_replica_url: Option<String>,
    /// Print the SQL each spine operation issued.
    #[arg(long)]
    show_sql: bool,
    /// Load the HTTP API (the `account-api` binary) with wrk instead, beside the spine alone.
    #[arg(long)]
    http: bool,
    /// The `account-api` binary `--http` runs (default: the one beside this binary).
    #[arg(long, env = "ACCOUNT_BENCH_API_BINARY")]
    api_binary: Option<PathBuf>,
    /// Measure the API's memory while it streams an audit export instead (PostgreSQL).
    #[arg(long)]
    audit_export: bool,
    /// Audit rows `--audit-export` seeds and exports in full (beside the newest 10,000).
    #[arg(long, default_value_t = 1_000_000)]
    audit_rows: u64,
    #[command(flatten)]
    profile: ProfileArgs,
}

/// Dataset sizes and iteration counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub(crate) members: u64,
    pub(crate) usage_records: u64,
    pub(crate) expired_pins: u64,
    pub(crate) spread_tenants: usize,
    /// Interleaved rounds; each runs `per_round` calls per way.
    pub(crate) rounds: usize,
    pub(crate) per_round: usize,
    /// The same for operations that scan large sets.
    pub(crate) heavy_rounds: usize,
    pub(crate) heavy_per_round: usize,
    /// How long each throughput cell runs.
    pub(crate) throughput_for: Duration,
}

impl Sizes {
    fn full() -> Self {
        Self {
            members: 100_000,
            usage_records: 1_000_000,
            expired_pins: 1_000_000,
            spread_tenants: 1_000,
            rounds: 5,
            per_round: 60,
            heavy_rounds: 3,
            heavy_per_round: 5,
            throughput_for: Duration::from_secs(3),
        }
    }

    fn quick() -> Self {
        Self {
            members: 1_000,
            usage_records: 10_000,
            expired_pins: 10_000,
            spread_tenants: 20,
            rounds: 2,
            per_round: 10,
            heavy_rounds: 1,
            heavy_per_round: 3,
            throughput_for: Duration::from_millis(200),
        }
    }
}

/// A future the harness can hold across tasks.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// Builds one iteration's input (untimed).
pub(crate) type Prepare = Arc<dyn Fn(u64) -> BoxFuture<Result<Inputs>> + Send + Sync>;
/// The spine call under test, on the given spine.
pub(crate) type Call = Arc<dyn Fn(Spine, Inputs) -> BoxFuture<Result<()>> + Send + Sync>;

/// Wraps an async closure as a [`Prepare`].
pub(crate) fn prepare<F, Fut>(f: F) -> Prepare
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Inputs>> + Send + 'static,
{
    Arc::new(move |i| Box::pin(f(i)))
}

/// Wraps an async closure as a [`Call`].
pub(crate) fn call<F, Fut>(f: F) -> Call
where
    F: Fn(Spine, Inputs) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |spine, inputs| Box::pin(f(spine, inputs)))
}

/// The raw driver of the backend.
pub(crate) enum Raw {
    Pg(RawPg),
    Sqlite(RawSqlite),
}

impl Raw {
    async fn run(
        &self,
        statements: Vec<Statement>,
        transactional: bool,
        concurrent: bool,
    ) -> Result<u64> {
        match self {
            Raw::Pg(pg) => pg.run(statements, transactional).await,
            Raw::Sqlite(sqlite) => sqlite.run(statements, transactional, concurrent).await,
        }
    }
}

/// One backend's connections and what the run measured on it.
pub(crate) struct Harness {
    pub(crate) backend: &'static str,
    /// The database's URL.
    pub(crate) url: String,
    /// The same database on a streaming replica, when there is one (PostgreSQL).
    pub(crate) replica_url: Option<String>,
    /// The spine under test.
    pub(crate) spine: Spine,
    /// A spine on its own pool whose statements are recorded.
    capture: Spine,
    recorder: Recorder,
    /// Plain sea-orm on the spine's pool.
    pub(crate) sea: Arc<SeaOrmReplay>,
    raw: Arc<Raw>,
    pub(crate) sizes: Sizes,
    filter: Option<String>,
    show_sql: bool,
    pub(crate) report: Report,
    iterations: Arc<AtomicU64>,
    /// `--profile`: the one operation to call, and how.
    profile: Option<Profile>,
    /// Operations `--profile` ran (exactly one, or the name matched none).
    profiled: usize,
}

/// The spine's connection settings (`Spine::connect`), so both pools match.
fn connect_options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut config = DatabaseConfig::new(url);
    config.max_connections = max_connections;
    let mut options = config.connect_options();
    // The seeding SQL names tables unqualified; the spine's own statements are qualified,
    // so this changes nothing for them (PostgreSQL only; SQLite finds the attached tables).
    options.set_schema_search_path("account");
    options
}

/// The API-key pepper of every spine the harness opens (and of the API `--http` starts).
const PEPPER: &[u8] = b"account-bench-pepper-0123456789abcdef";

pub(crate) fn pepper() -> Result<ApiKeyPepper> {
    ApiKeyPepper::from_bytes(PEPPER).map_err(|e| anyhow::anyhow!("pepper: {e:?}"))
}

impl Harness {
    async fn open(
        backend: &'static str,
        url: &str,
        raw: Raw,
        sizes: Sizes,
        cli: &Cli,
    ) -> Result<Self> {
        let pool_size = DatabaseConfig::new(url).max_connections;
        let db = Database::connect(connect_options(url, pool_size)).await?;
        let recorder = Recorder::default();
        let mut capture_db = Database::connect(connect_options(url, 2)).await?;
        let sink = recorder.clone();
        capture_db.set_metric_callback(move |info| sink.record(info.statement));
        let mut spine = Spine::from_connection(db.clone()).with_pepper(pepper()?);
        // As `Spine::connect` does: on SQLite, write transactions on a pool of one.
        if let Some(writer) = DatabaseConfig::new(url).writer_options() {
            spine = spine.with_write_connection(Database::connect(writer).await?);
        }
        let capture = Spine::from_connection(capture_db).with_pepper(pepper()?);
        account_spine::migrate(&DatabaseConfig::new(url)).await?;
        Ok(Self {
            backend,
            url: url.to_owned(),
            replica_url: None,
            spine,
            capture,
            recorder,
            sea: Arc::new(SeaOrmReplay { db }),
            raw: Arc::new(raw),
            sizes,
            filter: cli
                .profile
                .profile()
                .map_or_else(|| cli.filter.clone(), |p| Some(p.operation)),
            show_sql: cli.show_sql,
            report: Report::default(),
            iterations: Arc::new(AtomicU64::new(0)),
            profile: cli.profile.profile(),
            profiled: 0,
        })
    }

    /// The rendered report; under `--profile`, what ran (the profiler has the figures).
    fn finish(&self, title: &str) -> Result<String> {
        match &self.profile {
            None => Ok(self.report.render(title)),
            Some(profile) if self.profiled == 1 => Ok(format!("{title}: {profile} done")),
            Some(profile) => bail!(
                "{profile}: {} latency operations matched (one must; cleanups and admission \
                 throughput cannot be profiled)",
                self.profiled
            ),
        }
    }

    /// The pool the spine and the sea-orm baseline share (for seeding).
    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.sea.db
    }

    pub(crate) fn wanted(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }

    fn next_iteration(&self) -> u64 {
        self.iterations.fetch_add(1, Ordering::Relaxed)
    }

    async fn run_once(
        &self,
        way: Way,
        captured: &Captured,
        call: &Call,
        inputs: Inputs,
        concurrent: bool,
    ) -> Result<Duration> {
        Ok(match way {
            Way::Spine => {
                let started = Instant::now();
                call(self.spine.clone(), inputs).await?;
                started.elapsed()
            }
            Way::SeaOrm => {
                let statements = captured.instantiate(&inputs);
                let started = Instant::now();
                self.sea.run(statements, captured.transactional).await?;
                started.elapsed()
            }
            Way::Raw => {
                let statements = captured.instantiate(&inputs);
                let started = Instant::now();
                self.raw
                    .run(statements, captured.transactional, concurrent)
                    .await?;
                started.elapsed()
            }
        })
    }

    /// Single-caller latency, three ways interleaved round by round.
    pub(crate) async fn latency(
        &mut self,
        name: &str,
        transactional: bool,
        heavy: bool,
        prepare: Prepare,
        call: Call,
    ) -> Result<()> {
        if !self.wanted(name) {
            return Ok(());
        }
        if let Some(profile) = self.profile.clone() {
            self.profiled += 1;
            if self.profiled > 1 {
                return Ok(()); // `finish` refuses the run: one operation per profile
            }
            let captured = self
                .capture(name, transactional, true, &prepare, &call)
                .await?;
            return profile.run(self, name, &captured, &prepare, &call).await;
        }
        let captured = self
            .capture(name, transactional, true, &prepare, &call)
            .await?;
        let ways: &[Way] = if captured.statements.is_empty() {
            &[Way::Spine]
        } else {
            &Way::ALL
        };
        let (rounds, per_round) = if heavy {
            (self.sizes.heavy_rounds, self.sizes.heavy_per_round)
        } else {
            (self.sizes.rounds, self.sizes.per_round)
        };
        let mut samples: Vec<(Way, Latencies)> =
            ways.iter().map(|w| (*w, Latencies::default())).collect();
        // One warm-up call per way primes statement caches and pools.
        for &way in ways {
            let inputs = prepare(self.next_iteration()).await?;
            self.run_once(way, &captured, &call, inputs, false)
                .await
                .with_context(|| format!("{name}: warm-up via {}", way.name()))?;
        }
        for _ in 0..rounds {
            for (way, latencies) in samples.iter_mut() {
                for _ in 0..per_round {
                    let inputs = prepare(self.next_iteration()).await?;
                    let elapsed = self
                        .run_once(*way, &captured, &call, inputs, false)
                        .await
                        .with_context(|| format!("{name} via {}", way.name()))?;
                    latencies.push(elapsed);
                }
            }
        }
        let row = LatencyRow {
            operation: name.to_owned(),
            statements: captured.counts,
            ways: samples,
        };
        eprintln!("    {}: {name} done", self.backend);
        self.report.latency.push(row);
        Ok(())
    }

    /// One timed call per way, each after `reset` rebuilt the data it consumes (cleanups).
    pub(crate) async fn one_shot<R, RF>(
        &mut self,
        name: &str,
        transactional: bool,
        reset: R,
        prepare: Prepare,
        call: Call,
    ) -> Result<()>
    where
        R: Fn() -> RF,
        RF: Future<Output = Result<()>>,
    {
        if !self.wanted(name) || self.profile.is_some() {
            return Ok(());
        }
        // The capture runs on the full dataset too: the statements can depend on its size
        // (a cleanup deletes in batches until one comes back short).
        reset().await?;
        let captured = self
            .capture(name, transactional, false, &prepare, &call)
            .await?;
        let mut samples = Vec::new();
        for way in Way::ALL {
            reset().await?;
            let inputs = prepare(self.next_iteration()).await?;
            let mut latencies = Latencies::default();
            latencies.push(
                self.run_once(way, &captured, &call, inputs, false)
                    .await
                    .with_context(|| format!("{name} via {}", way.name()))?,
            );
            samples.push((way, latencies));
        }
        self.report.latency.push(LatencyRow {
            operation: name.to_owned(),
            statements: captured.counts,
            ways: samples,
        });
        eprintln!("    {}: {name} done", self.backend);
        Ok(())
    }

    /// Calls per second with `callers` concurrent callers, each way in turn for the same time.
    pub(crate) async fn throughput(
        &mut self,
        name: &str,
        captured: &Captured,
        callers: usize,
        prepare: Prepare,
        call: Call,
    ) -> Result<()> {
        if self.profile.is_some() {
            return Ok(());
        }
        let mut ways = Vec::new();
        for way in Way::ALL {
            let deadline = Instant::now() + self.sizes.throughput_for;
            let started = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..callers {
                let harness = self.worker();
                let (prepare, call, captured) = (prepare.clone(), call.clone(), captured.clone());
                tasks.spawn(async move {
                    let mut latencies = Latencies::default();
                    let mut errors = 0u64;
                    let mut first_error = None;
                    while Instant::now() < deadline {
                        let inputs =
                            prepare(harness.iterations.fetch_add(1, Ordering::Relaxed)).await?;
                        match harness
                            .run_once(way, &captured, &call, inputs, callers > 1)
                            .await
                        {
                            Ok(elapsed) => latencies.push(elapsed),
                            Err(error) => {
                                errors += 1;
                                first_error.get_or_insert(format!("{error:#}"));
                            }
                        }
                    }
                    anyhow::Ok((latencies, errors, first_error))
                });
            }
            let mut latencies = Latencies::default();
            let mut errors = 0;
            while let Some(joined) = tasks.join_next().await {
                let (l, e, first) = joined??;
                latencies.extend(l);
                errors += e;
                if let Some(first) = first {
                    eprintln!("    {name} via {} x{callers}: error: {first}", way.name());
                }
            }
            let elapsed = started.elapsed().as_secs_f64();
            ways.push((way, latencies.len() as f64 / elapsed, errors, latencies));
        }
        eprintln!("    {}: {name} x{callers} done", self.backend);
        self.report.throughput.push(ThroughputRow {
            operation: name.to_owned(),
            callers,
            ways,
        });
        Ok(())
    }

    /// A handle on the shared connections for a spawned caller.
    fn worker(&self) -> Arc<Harness> {
        Arc::new(Harness {
            backend: self.backend,
            url: self.url.clone(),
            replica_url: self.replica_url.clone(),
            spine: self.spine.clone(),
            capture: self.capture.clone(),
            recorder: self.recorder.clone(),
            sea: self.sea.clone(),
            raw: self.raw.clone(),
            sizes: self.sizes,
            filter: None,
            show_sql: false,
            report: Report::default(),
            iterations: self.iterations.clone(),
            profile: None,
            profiled: 0,
        })
    }
}

async fn run_backend(backend: &'static str, cli: &Cli, sizes: Sizes) -> Result<String> {
    let load_before = load_average();
    let started = Instant::now();
    let output = match backend {
        "sqlite" => {
            let path =
                std::env::temp_dir().join(format!("account-bench-{}.db", std::process::id()));
            remove_sqlite(&path);
            let url = format!("sqlite://{}?mode=rwc", path.display());
            // The schema must exist before rusqlite opens its connections.
            let harness_raw = {
                account_spine::migrate(&DatabaseConfig::new(&url)).await?;
                Raw::Sqlite(RawSqlite::open(&path, 16)?)
            };
            let outcome = async {
                let mut harness = Harness::open("sqlite", &url, harness_raw, sizes, cli).await?;
                cases::run_all(&mut harness).await?;
                harness.finish("SQLite")
            }
            .await;
            remove_sqlite(&path);
            outcome?
        }
        _ => {
            let admin_url = cli
                .pg_url
                .as_deref()
                .context("PostgreSQL needs --pg-url or ACCOUNT_BENCH_PG_URL (cargo xtask bench starts a server)")?;
            let database = fresh_database(admin_url, "account_bench").await?;
            let url = database.url.clone();
            let outcome = async {
                let raw = Raw::Pg(RawPg::connect(&url, 16).await?);
                let mut harness = Harness::open("postgres", &url, raw, sizes, cli).await?;
                harness.replica_url = cli.pg_replica_url.as_deref().and_then(|replica| {
                    let (base, _) = replica.rsplit_once('/')?;
                    Some(format!("{base}/{}", database.name))
                });
                cases::run_all(&mut harness).await?;
                let rendered = harness.finish("PostgreSQL")?;
                let settings = harness
                    .db()
                    .query_one_raw(Statement::from_string(
                        harness.db().get_database_backend(),
                        "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit') || ' ' || version() AS s",
                    ))
                    .await?
                    .and_then(|row| row.try_get::<String>("", "s").ok())
                    .unwrap_or_default();
                anyhow::Ok(format!(
                    "{rendered}\nPostgreSQL fsync/synchronous_commit: {settings}\n"
                ))
            }
            .await;
            // The harness's pools are closed by now (dropped with the block above).
            database.drop_database().await;
            outcome?
        }
    };
    Ok(format!(
        "{output}\n{backend}: load average before {load_before}, after {}; {:.0?} in all\n",
        load_average(),
        started.elapsed()
    ))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // A profile runs on one thread: what it counts is then the calls' own work, not worker
    // threads looking for tasks (sqlx's SQLite threads are still there, and counted).
    let mut runtime = if cli.profile.profile().is_some() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all().build()?.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let sizes = if cli.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let backends: &[&'static str] = match cli.backend {
        BackendChoice::Sqlite => &["sqlite"],
        BackendChoice::Postgres => &["postgres"],
        BackendChoice::Both => &["sqlite", "postgres"],
    };
    if backends.contains(&"postgres") && cli.pg_url.is_none() {
        bail!(
            "PostgreSQL needs --pg-url or ACCOUNT_BENCH_PG_URL (cargo xtask bench starts a server)"
        );
    }
    println!("{}", banner(cli.quick));
    if cli.audit_export {
        return audit_export::run(&cli).await;
    }
    if cli.http {
        return http::run(&cli, backends).await;
    }
    println!("sizes: {sizes:?}");
    for backend in backends {
        let rendered = run_backend(backend, &cli, sizes).await?;
        println!("{rendered}");
    }
    Ok(())
}
