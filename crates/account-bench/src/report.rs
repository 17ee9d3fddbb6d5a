//! Percentiles, ratios and the printed tables.

use std::fmt::Write as _;
use std::time::Duration;

/// The three ways every operation is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Way {
    /// Through `Spine`.
    Spine,
    /// The spine's captured statements through plain sea-orm.
    SeaOrm,
    /// The same statements through tokio-postgres / rusqlite.
    Raw,
}

impl Way {
    /// All three, in print order.
    pub(crate) const ALL: [Way; 3] = [Way::Spine, Way::SeaOrm, Way::Raw];

    /// Short name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Way::Spine => "spine",
            Way::SeaOrm => "sea-orm",
            Way::Raw => "raw",
        }
    }
}

/// Call latencies of one way.
#[derive(Clone, Debug, Default)]
pub(crate) struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// Adds one call.
    pub(crate) fn push(&mut self, elapsed: Duration) {
        self.samples.push(elapsed);
    }

    /// Adds every call of `other`.
    pub(crate) fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Calls recorded.
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
        Some(sorted[rank - 1])
    }
}

/// One latency row: an operation measured three ways.
pub(crate) struct LatencyRow {
    pub(crate) operation: String,
    /// Statements of the first (cold) call and of a second (warm) one; the baselines replay
    /// the warm call's, unless it issued none.
    pub(crate) statements: (usize, usize),
    pub(crate) ways: Vec<(Way, Latencies)>,
}

/// One throughput row.
pub(crate) struct ThroughputRow {
    pub(crate) operation: String,
    pub(crate) callers: usize,
    /// Way, completed calls per second, errors, p50 and p99 call latency.
    pub(crate) ways: Vec<(Way, f64, u64, Latencies)>,
}

/// Everything one run measured.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) latency: Vec<LatencyRow>,
    pub(crate) throughput: Vec<ThroughputRow>,
    /// Tables of their own (already Markdown), printed after the others.
    pub(crate) extra: Vec<String>,
}

fn micros(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e6),
    )
}

fn ratio(numerator: Option<Duration>, denominator: Option<Duration>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if !d.is_zero() => format!("{:.2}", n.as_secs_f64() / d.as_secs_f64()),
        _ => "-".to_owned(),
    }
}

impl LatencyRow {
    fn p50(&self, way: Way) -> Option<Duration> {
        self.ways
            .iter()
            .find(|(w, _)| *w == way)
            .and_then(|(_, l)| l.quantile(0.5))
    }
    fn p99(&self, way: Way) -> Option<Duration> {
        self.ways
            .iter()
            .find(|(w, _)| *w == way)
            .and_then(|(_, l)| l.quantile(0.99))
    }
}

impl Report {
    /// The tables, as Markdown.
    pub(crate) fn render(&self, backend: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n### {backend}: latency per call (µs; ratios of p50)\n\n\
             | operation | stmts cold/warm | spine p50 | spine p99 | sea-orm p50 | sea-orm p99 | raw p50 | raw p99 | spine/sea-orm | spine/raw | n |\n\
             |---|---|---|---|---|---|---|---|---|---|---|"
        );
        for row in &self.latency {
            let n = row.ways.first().map_or(0, |(_, l)| l.len());
            let _ = writeln!(
                out,
                "| {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.operation,
                row.statements.0,
                row.statements.1,
                micros(row.p50(Way::Spine)),
                micros(row.p99(Way::Spine)),
                micros(row.p50(Way::SeaOrm)),
                micros(row.p99(Way::SeaOrm)),
                micros(row.p50(Way::Raw)),
                micros(row.p99(Way::Raw)),
                ratio(row.p50(Way::Spine), row.p50(Way::SeaOrm)),
                ratio(row.p50(Way::Spine), row.p50(Way::Raw)),
                n,
            );
        }
        if !self.throughput.is_empty() {
            let _ = writeln!(
                out,
                "\n### {backend}: throughput (calls/s; p50/p99 call latency in µs)\n\n\
                 | operation | callers | spine/s | sea-orm/s | raw/s | spine÷raw | spine÷sea-orm | spine p50/p99 | raw p50/p99 | errors s/o/r |\n\
                 |---|---|---|---|---|---|---|---|---|---|"
            );
            for row in &self.throughput {
                let rate = |way: Way| row.ways.iter().find(|w| w.0 == way).map_or(0.0, |w| w.1);
                let errors = |way: Way| row.ways.iter().find(|w| w.0 == way).map_or(0, |w| w.2);
                let lat = |way: Way| {
                    row.ways.iter().find(|w| w.0 == way).map_or_else(
                        || "-".to_owned(),
                        |w| {
                            format!(
                                "{}/{}",
                                micros(w.3.quantile(0.5)),
                                micros(w.3.quantile(0.99))
                            )
                        },
                    )
                };
                let share = |a: f64, b: f64| {
                    if b > 0.0 {
                        format!("{:.0} %", 100.0 * a / b)
                    } else {
                        "-".to_owned()
                    }
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {}/{}/{} |",
                    row.operation,
                    row.callers,
                    rate(Way::Spine),
                    rate(Way::SeaOrm),
                    rate(Way::Raw),
                    share(rate(Way::Spine), rate(Way::Raw)),
                    share(rate(Way::Spine), rate(Way::SeaOrm)),
                    lat(Way::Spine),
                    lat(Way::Raw),
                    errors(Way::Spine),
                    errors(Way::SeaOrm),
                    errors(Way::Raw),
                );
            }
        }
        for table in &self.extra {
            out.push_str(table);
        }
        out
    }
}

/// The first line of a run's output: build, sizes and machine.
pub(crate) fn banner(quick: bool) -> String {
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let sizes = if quick { "quick" } else { "full" };
    format!("# account-bench ({build} build, {sizes}): {}", machine())
}

/// `nproc`, CPU model, kernel and load, for the record.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, {model}, kernel {}", kernel.trim())
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
