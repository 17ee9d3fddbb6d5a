//! `cargo xtask bench --profile OP`: instructions per call of one latency operation, counted
//! by callgrind, for the spine and its two baselines (plain sea-orm, the raw driver) on SQLite,
//! and where the spine's extra instructions go.
//!
//! Instruction counts do not move with the machine's load, so the figures hold on a shared,
//! noisy machine where wall-clock ratios do not. Each way runs twice under callgrind, with no
//! measured call and with `--calls` of them, everything else the same (the harness's
//! `--profile` mode); the difference of the two runs divided by the calls is one call, on
//! every thread (sqlx runs SQLite on threads of its own). The callgrind files stay in
//! `target/callgrind/` (or a directory named after `ACCOUNT_BENCH_HARNESS`'s binary in it),
//! for `callgrind_annotate` or KCachegrind.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The ways the harness calls an operation, spine first.
const WAYS: [&str; 3] = ["spine", "sea-orm", "raw"];
/// Calls the harness makes before the measured ones (its `WARM_UP`), so that every run
/// prepares the same inputs.
const WARM_UP: usize = 10;

/// Profiles `operation` with `calls` calls per way, the callgrind files in `dir`; prints the
/// report.
pub(super) fn run(harness: &Path, dir: &Path, operation: &str, calls: usize) -> Result<()> {
    if calls == 0 {
        bail!("--calls must be at least 1");
    }
    std::fs::create_dir_all(dir)?;
    let slug: String = operation
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut per_way = Vec::new();
    for way in WAYS {
        let mut runs = Vec::new();
        for n in [0, calls] {
            let out = dir.join(format!("{slug}.{way}.{n}.out"));
            println!("==> callgrind: {operation} via {way}, {n} calls");
            callgrind(harness, operation, way, n, calls, &out)?;
            runs.push(Costs::read(&out)?);
        }
        let measured = runs.pop().context("two runs")?;
        let base = runs.pop().context("two runs")?;
        per_way.push((way, PerCall::between(&base, &measured, calls)));
    }
    println!("{}", report(operation, calls, &per_way));
    println!(
        "callgrind files: {}/{slug}.<way>.<calls>.out (callgrind_annotate --inclusive=yes FILE)",
        dir.display()
    );
    Ok(())
}

/// One run of the harness under callgrind; its output goes to a `.log` beside `out`.
fn callgrind(
    harness: &Path,
    operation: &str,
    way: &str,
    calls: usize,
    most: usize,
    out: &Path,
) -> Result<()> {
    let log = out.with_extension("log");
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(harness)
        .args(["--backend", "sqlite", "--quick", "--profile", operation])
        .args(["--profile-way", way, "--profile-calls", &calls.to_string()])
        .args(["--profile-inputs", &(WARM_UP + most).to_string()])
        .env_remove("ACCOUNT_BENCH_PG_URL")
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(log.with_extension("err"))?)
        .status()
        .context("running valgrind (Debian's `valgrind` package)")?;
    if !status.success() {
        let stderr = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("callgrind run failed ({status}):\n{}", tail.join("\n"));
    }
    Ok(())
}

/// One callgrind file: instructions per function, its own and with its callees.
#[derive(Debug, Default)]
struct Costs {
    /// Instructions executed in the function itself.
    own: HashMap<String, u64>,
    /// Its own and those of the calls it made (a function calling itself counted once).
    inclusive: HashMap<String, u64>,
    /// The object file the function is in (for names without a crate path).
    object: HashMap<String, String>,
}

impl Costs {
    fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Parses callgrind's format (one event, `Ir`; names compressed as `(id) name` once, then
    /// `(id)`). After a `calls=` line the next cost line is the call's inclusive cost.
    fn parse(text: &str) -> Self {
        let mut names: HashMap<String, String> = HashMap::new();
        let mut objects: HashMap<String, String> = HashMap::new();
        let mut costs = Costs::default();
        let (mut function, mut object, mut callee) = (String::new(), String::new(), String::new());
        let mut call_follows = false;
        for line in text.lines() {
            let first = line.bytes().next().unwrap_or(b'#');
            if first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'*') {
                let mut fields = line.split_whitespace();
                let cost = match (fields.next(), fields.next_back()) {
                    (Some(_), Some(last)) => last.parse::<u64>().unwrap_or(0),
                    _ => 0,
                };
                if call_follows {
                    call_follows = false;
                    if callee != function {
                        *costs.inclusive.entry(function.clone()).or_default() += cost;
                    }
                } else {
                    *costs.own.entry(function.clone()).or_default() += cost;
                    *costs.inclusive.entry(function.clone()).or_default() += cost;
                }
            } else if let Some(rest) = line.strip_prefix("fn=") {
                function = compressed(&mut names, rest);
                costs
                    .object
                    .entry(function.clone())
                    .or_insert_with(|| object.clone());
            } else if let Some(rest) = line.strip_prefix("cfn=") {
                callee = compressed(&mut names, rest);
            } else if let Some(rest) = line.strip_prefix("ob=") {
                object = compressed(&mut objects, rest);
            } else if let Some(rest) = line.strip_prefix("cob=") {
                compressed(&mut objects, rest);
            } else if line.starts_with("calls=") {
                call_follows = true;
            }
        }
        costs
    }
}

/// The name behind `(id) name` (recording it) or `(id)`; an uncompressed name as it is.
fn compressed(table: &mut HashMap<String, String>, field: &str) -> String {
    let Some(rest) = field.strip_prefix('(') else {
        return field.to_owned();
    };
    let Some((id, name)) = rest.split_once(')') else {
        return field.to_owned();
    };
    let name = name.trim_start();
    if name.is_empty() {
        table.get(id).cloned().unwrap_or_default()
    } else {
        table.insert(id.to_owned(), name.to_owned());
        name.to_owned()
    }
}

/// Instructions per measured call, per function.
struct PerCall {
    total: f64,
    own: HashMap<String, f64>,
    inclusive: HashMap<String, f64>,
    object: HashMap<String, String>,
}

impl PerCall {
    fn between(base: &Costs, measured: &Costs, calls: usize) -> Self {
        let per = |a: &HashMap<String, u64>, b: &HashMap<String, u64>| {
            let mut out = HashMap::new();
            for name in a.keys().chain(b.keys()) {
                let (was, is) = (
                    a.get(name).copied().unwrap_or(0),
                    b.get(name).copied().unwrap_or(0),
                );
                out.insert(name.clone(), (is as f64 - was as f64) / calls as f64);
            }
            out
        };
        let own = per(&base.own, &measured.own);
        Self {
            total: own.values().sum(),
            own,
            inclusive: per(&base.inclusive, &measured.inclusive),
            object: measured.object.clone(),
        }
    }

    /// Own instructions per call, summed by [`group`].
    fn by_group(&self) -> HashMap<String, f64> {
        let mut groups = HashMap::new();
        for (name, cost) in &self.own {
            let object = self.object.get(name).map_or("", String::as_str);
            *groups.entry(group(name, object)).or_default() += cost;
        }
        groups
    }
}

/// Where a function's code comes from: its crate (the crate of the type for `<T as Trait>`
/// and `drop_in_place<T>`, which run code of `T`'s crate), SQLite for its C functions, the C
/// library's allocator and `mem*` functions apart from the rest of it.
fn group(name: &str, object: &str) -> String {
    let name = name
        .strip_prefix("core::ptr::drop_in_place<")
        .unwrap_or(name);
    let path = name.trim_start_matches(['<', '&', '(', '[', '*']);
    let path = path
        .trim_start_matches("mut ")
        .trim_start_matches("const ")
        .trim_start_matches("dyn ");
    if let Some((krate, _)) = path.split_once("::")
        && !krate.is_empty()
        && krate.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return match krate {
            "core" | "alloc" | "std" => "Rust std (core, alloc, std)".to_owned(),
            "sqlx_core" | "sqlx_sqlite" | "sqlx_postgres" => "sqlx".to_owned(),
            "tracing" | "tracing_core" => "tracing".to_owned(),
            "serde" | "serde_json" => "serde, serde_json".to_owned(),
            "__rustc" => "Rust allocator shim (__rust_alloc ...)".to_owned(),
            other => other.to_owned(),
        };
    }
    let bare = name.split('@').next().unwrap_or(name);
    // The C code linked into the harness is SQLite's (bundled by libsqlite3-sys).
    if bare.starts_with("sqlite3") || object.contains("account-bench") {
        return "SQLite (C)".to_owned();
    }
    let allocator = [
        "malloc",
        "free",
        "realloc",
        "calloc",
        "cfree",
        "_int_",
        "tcache",
        "unlink_chunk",
    ];
    if allocator.iter().any(|a| bare.contains(a)) {
        return "libc malloc/free".to_owned();
    }
    if bare.contains("mem") || bare.contains("str") {
        return "libc mem*/str*".to_owned();
    }
    let file = object.rsplit('/').next().unwrap_or(object);
    format!("other C ({file})")
}

/// The printed report: instructions per call per way, by crate, and the functions whose
/// inclusive cost differs most between the spine and plain sea-orm.
fn report(operation: &str, calls: usize, ways: &[(&str, PerCall)]) -> String {
    let mut out = String::new();
    let total = |way: &str| {
        ways.iter()
            .find(|(w, _)| *w == way)
            .map_or(0.0, |(_, p)| p.total)
    };
    let (spine, sea, raw) = (total("spine"), total("sea-orm"), total("raw"));
    let _ = writeln!(
        out,
        "\n### `{operation}`: instructions per call (callgrind, SQLite, {calls} calls per way)\n\n\
         | way | instructions per call | spine ÷ way |\n|---|---|---|"
    );
    for (way, per) in ways {
        let _ = writeln!(
            out,
            "| {way} | {:.0} | {:.2} |",
            per.total,
            spine / per.total.max(1.0)
        );
    }
    let _ = writeln!(
        out,
        "\nspine − sea-orm: {:.0} instructions per call; spine − raw: {:.0}.",
        spine - sea,
        spine - raw
    );
    let [(_, spine_way), (_, sea_way), (_, raw_way)] = ways else {
        return out;
    };
    let (s, o, r) = (spine_way.by_group(), sea_way.by_group(), raw_way.by_group());
    let mut groups: Vec<&String> = s.keys().chain(o.keys()).chain(r.keys()).collect();
    groups.sort();
    groups.dedup();
    let get = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    groups.sort_by(|a, b| {
        let d = |k: &str| (get(&s, k) - get(&o, k)).abs();
        d(b).total_cmp(&d(a))
    });
    let _ = writeln!(
        out,
        "\nOwn instructions per call by crate (sorted by |spine − sea-orm|):\n\n\
         | code of | spine | sea-orm | raw | spine − sea-orm |\n|---|---|---|---|---|"
    );
    for group in groups.iter().take(18) {
        let _ = writeln!(
            out,
            "| {group} | {:.0} | {:.0} | {:.0} | {:+.0} |",
            get(&s, group),
            get(&o, group),
            get(&r, group),
            get(&s, group) - get(&o, group)
        );
    }
    let mut own: Vec<(&String, f64, f64)> = spine_way
        .own
        .iter()
        .map(|(name, &cost)| (name, cost, get(&sea_way.own, name)))
        .filter(|(_, cost, base)| (cost - base).abs() > 0.002 * spine)
        .collect();
    own.sort_by(|a, b| (b.1 - b.2).abs().total_cmp(&(a.1 - a.2).abs()));
    let _ = writeln!(
        out,
        "\nOwn instructions per call, the functions whose own cost differs most (these add up \
         to the difference):\n\n\
         | function | spine | sea-orm | spine − sea-orm |\n|---|---|---|---|"
    );
    for (name, cost, base) in own.iter().take(25) {
        let _ = writeln!(
            out,
            "| `{}` | {cost:.0} | {base:.0} | {:+.0} |",
            shown(name),
            cost - base
        );
    }
    let mut functions: Vec<(&String, f64, f64)> = spine_way
        .inclusive
        .iter()
        .filter(|(name, _)| !is_frame(name))
        .map(|(name, &cost)| (name, cost, get(&sea_way.inclusive, name)))
        .filter(|(_, cost, base)| cost - base > 0.005 * spine)
        .collect();
    functions.sort_by(|a, b| (b.1 - b.2).total_cmp(&(a.1 - a.2)));
    let _ = writeln!(
        out,
        "\nInclusive instructions per call, the functions that cost the spine most over plain \
         sea-orm (nested: a caller includes its callees):\n\n\
         | function | spine | sea-orm | spine − sea-orm |\n|---|---|---|---|"
    );
    for (name, cost, base) in functions.iter().take(40) {
        let _ = writeln!(
            out,
            "| `{}` | {cost:.0} | {base:.0} | {:+.0} |",
            shown(name),
            cost - base
        );
    }
    out
}

/// A function name for a table cell: at most 160 characters, no `|`.
fn shown(name: &str) -> String {
    name.chars()
        .take(160)
        .collect::<String>()
        .replace('|', "\\|")
}

/// Frames every call passes through (the process, the runtime, the harness's own closures,
/// generic future plumbing): their inclusive cost is the whole call, so they say nothing
/// about where it goes.
fn is_frame(name: &str) -> bool {
    const FRAMES: [&str; 14] = [
        "account_bench::",
        "tokio::runtime::",
        "std::thread::local::",
        "std::rt::",
        "std::sys::",
        "<std::sys::",
        "core::ops::function::",
        "<core::pin::Pin<P>",
        "(below main)",
        "main",
        "__libc_start",
        "0x",
        "start_thread",
        "clone",
    ];
    FRAMES.iter().any(|frame| name.starts_with(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# callgrind format
version: 1
events: Ir
ob=(1) /bin/account-bench
fl=(1) ???
fn=(1) main
0 10
cfn=(2) account_spine::execute::observe
calls=2 0
0 100
cfn=(1)
calls=1 0
0 7
fn=(2)
0 100
cob=(2) /lib/libc.so.6
cfn=(3) malloc
calls=1 0
0 0
totals: 110
";

    #[test]
    fn own_and_inclusive_costs_follow_the_call_lines() {
        let costs = Costs::parse(SAMPLE);
        assert_eq!(costs.own.get("main"), Some(&10));
        assert_eq!(
            costs.inclusive.get("main"),
            Some(&110),
            "a self-call is not added"
        );
        assert_eq!(costs.own.get("account_spine::execute::observe"), Some(&100));
        assert_eq!(
            costs.object.get("main").map(String::as_str),
            Some("/bin/account-bench")
        );
    }

    #[test]
    fn functions_are_grouped_by_the_crate_of_their_code() {
        let bin = "/x/account-bench";
        assert_eq!(
            group("account_spine::execute::observe", bin),
            "account_spine"
        );
        assert_eq!(
            group(
                "<sea_query::SelectStatement as sea_orm::StatementBuilder>::build",
                bin
            ),
            "sea_query"
        );
        assert_eq!(
            group("core::ptr::drop_in_place<tracing::span::Span>", bin),
            "tracing"
        );
        assert_eq!(group("sqlite3VdbeExec", bin), "SQLite (C)");
        assert_eq!(group("yy_reduce.constprop.0", bin), "SQLite (C)");
        assert_eq!(group("malloc", "/lib/libc.so.6"), "libc malloc/free");
        assert_eq!(
            group("__memcpy_avx_unaligned_erms", "/lib/libc.so.6"),
            "libc mem*/str*"
        );
    }
}
