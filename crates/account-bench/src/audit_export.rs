//! `account-bench --audit-export`: the memory of `GET /v1/audit/export` as the row count grows.
//!
//! PostgreSQL: a fresh database, one tenant (bootstrapped through the spine, its retention
//! lifted so the API's purge leaves the rows alone) and `--audit-rows` audit rows seeded with
//! one `INSERT ... SELECT` over `generate_series`, a second apart. Then, for each export size
//! (the newest 10,000 rows, then every row), a fresh `account-api` process: a small warm-up
//! export, its resident set read from `/proc/<pid>/status` (`VmRSS`, `VmHWM`), the export
//! streamed over HTTP by this process, which counts the lines and reads the server's `VmRSS`
//! at every tenth of them, and its peak (`VmHWM`) at the end. The export runs in the server
//! process alone, so its peak is the export's (and the process's) own.

use crate::database::fresh_database;
use crate::http::ApiServer;
use crate::report::load_average;
use crate::{Cli, connect_options, pepper};
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine};
use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sea_orm::{ConnectionTrait, Database, Statement, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The first seeded row's time; row `g` is written `g` seconds later.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The smaller export, against which the full one is compared.
const SMALL: u64 = 10_000;

/// What one export did.
struct Export {
    rows: u64,
    lines: u64,
    bytes: u64,
    elapsed: Duration,
    /// The server's resident set after the warm-up export, before this one (kB).
    rss_before: u64,
    /// Its resident set at each tenth of the lines (kB).
    rss_during: Vec<u64>,
    /// Its peak resident set over its whole life, read after this export (kB).
    hwm_after: u64,
}

/// Runs the export benchmark (PostgreSQL only) and prints its table.
pub(crate) async fn run(cli: &Cli) -> Result<()> {
    let admin_url = cli
        .pg_url
        .as_deref()
        .context("the audit export benchmark needs --pg-url (cargo xtask bench starts a server)")?;
    let binary = match &cli.api_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("account-api"),
    };
    ensure!(
        binary.is_file(),
        "no account-api binary at {} (cargo xtask bench --audit-export builds it)",
        binary.display()
    );
    let rows = cli.audit_rows.max(SMALL);
    let load_before = load_average();
    let dir = std::env::temp_dir().join(format!("account-bench-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let database = fresh_database(admin_url, "account_bench_audit").await?;
    let outcome = measure(&database.url, &binary, &dir, rows).await;
    database.drop_database().await;
    let _ = std::fs::remove_dir_all(&dir);
    let exports = outcome?;
    println!("API binary {}", binary.display());
    println!("{}", render(&exports));
    println!(
        "load average before {load_before}, after {}",
        load_average()
    );
    Ok(())
}

/// Seeds `rows` rows and measures the two exports, each on a fresh server.
async fn measure(url: &str, binary: &Path, dir: &Path, rows: u64) -> Result<Vec<Export>> {
    account_spine::migrate(&DatabaseConfig::new(url)).await?;
    let db = Database::connect(connect_options(url, 4)).await?;
    let spine = Spine::from_connection(db.clone()).with_pepper(pepper()?);
    let operator = OperatorPrincipal {
        operator_id: "account-bench".into(),
        request: RequestMeta::default(),
    };
    let (created, key) = spine
        .bootstrap(&operator, "audit@example.com", "Audit export")
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;
    let tenant = created.tenant.id.as_uuid();
    let seeding = Instant::now();
    let backend = db.get_database_backend();
    // Rows much like the spine's own: a person's action on a run, with its after-state.
    let seed = "INSERT INTO audit_log (id, tenant_id, actor_type, user_id, action, resource_type, \
         resource_id, new_value, ip_address, user_agent, request_id, created_at) \
         SELECT gen_random_uuid(), $1, 'user', $2, 'run.admitted', 'run', 'run-' || g, \
         jsonb_build_object('status', 'queued', 'worker_id', 'business-builder', \
         'task', 'plan ' || g), '192.0.2.1', 'account-bench/1.0', 'req-' || g, \
         $3 + g * interval '1 second' FROM generate_series(1, $4) AS g";
    let values: Vec<Value> = vec![
        tenant.into(),
        created.owner.user_id.as_uuid().into(),
        base().into(),
        i64::try_from(rows)?.into(),
    ];
    db.execute_raw(Statement::from_sql_and_values(backend, seed, values))
        .await?;
    // Kept forever: the API's purge would otherwise delete rows this old at its start.
    let keep = "UPDATE tenants SET audit_retention_days = NULL WHERE id = $1";
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        keep,
        [Value::from(tenant)],
    ))
    .await?;
    db.execute_unprepared("ANALYZE audit_log").await?;
    eprintln!("    seeded {rows} audit rows in {:.1?}", seeding.elapsed());
    db.close().await?;

    let pepper_file = dir.join("account.pepper");
    std::fs::write(&pepper_file, crate::PEPPER)?;
    let key = key.plaintext.expose().to_owned();
    let end = base() + TimeDelta::seconds(i64::try_from(rows)? + 1);
    let mut exports = Vec::new();
    for size in [SMALL, rows] {
        let from = end - TimeDelta::seconds(i64::try_from(size)?);
        let log = dir.join(format!("api-{size}.log"));
        let server = ApiServer::start(binary, url, &pepper_file, &log, true)?;
        let pid = server.pid().context("the server's pid")?;
        // Warm-up: pools, statement caches and the allocator's first arenas.
        let warm_from = end - TimeDelta::seconds(100);
        stream(server.port, &key, warm_from, end, pid, 100)?;
        let rss_before = status(pid, "VmRSS")?;
        let started = Instant::now();
        let (lines, bytes, rss_during) = stream(server.port, &key, from, end, pid, size)?;
        let elapsed = started.elapsed();
        let hwm_after = status(pid, "VmHWM")?;
        server.stop()?;
        ensure!(lines == size, "exported {lines} lines, expected {size}");
        eprintln!("    exported {size} rows in {elapsed:.1?}");
        exports.push(Export {
            rows: size,
            lines,
            bytes,
            elapsed,
            rss_before,
            rss_during,
            hwm_after,
        });
    }
    Ok(exports)
}

/// `GET /v1/audit/export?from=&to=` over HTTP/1.1, the chunked body read as it comes; returns
/// its lines, its bytes, and the server's `VmRSS` (kB) each time another tenth of `expected`
/// lines has arrived.
fn stream(
    port: u16,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pid: u32,
    expected: u64,
) -> Result<(u64, u64, Vec<u64>)> {
    let stamp = |at: DateTime<Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut socket = TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        socket,
        "GET /v1/audit/export?from={}&to={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {key}\r\nConnection: close\r\n\r\n",
        stamp(from),
        stamp(to)
    )?;
    let mut reader = BufReader::with_capacity(64 * 1024, socket);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("HTTP/1.1 200") {
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        bail!("the export answered {}{rest}", line.trim_end());
    }
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        chunked |= line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked");
    }
    ensure!(
        chunked,
        "the export is not streamed (no chunked transfer encoding)"
    );
    let (mut lines, mut bytes, mut during) = (0u64, 0u64, Vec::new());
    let step = (expected / 10).max(1);
    let mut chunk = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim_end(), 16)
            .with_context(|| format!("a chunk size: {line:?}"))?;
        if size == 0 {
            break;
        }
        chunk.resize(size, 0);
        reader.read_exact(&mut chunk)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        let before = lines;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        bytes += size as u64;
        if lines / step > before / step {
            during.push(status(pid, "VmRSS")?);
        }
    }
    Ok((lines, bytes, during))
}

/// A `/proc/<pid>/status` figure in kB (`VmRSS`, `VmHWM`).
fn status(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} for process {pid}"))
}

fn render(exports: &[Export]) -> String {
    let mb = |kb: u64| kb as f64 / 1024.0;
    let mut out = String::from(
        "audit export over HTTP (PostgreSQL), a fresh account-api process per size\n\
         | rows | seconds | rows/s | MiB sent | server RSS before (MiB) | RSS at each tenth (MiB) | peak RSS, VmHWM (MiB) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for e in exports {
        let during: Vec<String> = e
            .rss_during
            .iter()
            .map(|kb| format!("{:.0}", mb(*kb)))
            .collect();
        let seconds = e.elapsed.as_secs_f64();
        out.push_str(&format!(
            "| {} | {seconds:.1} | {:.0} | {:.0} | {:.1} | {} | {:.1} |\n",
            e.lines,
            e.rows as f64 / seconds,
            e.bytes as f64 / 1_048_576.0,
            mb(e.rss_before),
            during.join(" "),
            mb(e.hwm_after),
        ));
    }
    out
}
