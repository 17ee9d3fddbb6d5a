//! How long [`cargo_strata::check`] takes, warm, on this repository's workspace and on a
//! generated one of 200 crates and about 2,000 files (`synthetic`), and where the time goes.
//!
//! `cargo bench -p cargo-strata --bench check [-- --runs N]` (release; BENCHMARKS.md has the
//! figures). Each workspace is checked once to warm up (cargo writes the generated
//! workspace's lock file then), then `N` rounds (default 15) each time, in turn: `cargo
//! metadata` alone (the subprocess and its parsing, as `check` runs it), reading every source
//! file, `check` with every rule switched off (metadata, reading and lexing), and the full
//! `check`. The totals are medians, with the range. The breakdown subtracts the fastest run
//! of each from another's fastest: on a busy machine noise only ever adds time, and the
//! medians of two runs that each start cargo differ by more than the rules take. A
//! benchmark, not a test: nothing asserts a duration.

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a report tool

mod synthetic;

use cargo_strata::{Options, Rule, check};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(15usize)
        .max(1);
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let generated = scratch.join("strata-bench-200");
    let shape = synthetic::Shape {
        crates: 200,
        files: 10,
        table: true,
    };
    let files = synthetic::write(&generated, &shape).expect("the generated workspace is written");
    println!(
        "generated {} crates, {files} files in {}",
        shape.crates,
        generated.display()
    );
    // Every rule off: what remains is reading the workspace (metadata, sources, lexing).
    let rules_off = scratch.join("strata-bench-rules-off.toml");
    let mut table = String::from("[rules]\n");
    for &rule in Rule::ALL {
        table.push_str(&format!("{} = false\n", rule.id()));
    }
    std::fs::write(&rules_off, table).expect("writable");
    let this = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    println!("cargo_strata::check, release build, warm; median of {runs} runs (min-max)");
    for (label, dir) in [
        ("this workspace", this.canonicalize().expect("exists")),
        ("generated workspace", generated),
    ] {
        measure(label, &dir, &rules_off, runs);
    }
}

/// Times the phases on the workspace in `dir` and prints them.
fn measure(label: &str, dir: &Path, rules_off: &Path, runs: usize) {
    let manifest = dir.join("Cargo.toml");
    let report = check(&manifest, &Options::default()).expect("the linter runs");
    let sources = source_files(&manifest);
    let bytes: u64 = sources
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "\n{label}: {} source files, {:.1} MB; report: {} contracts kept, {} broken",
        sources.len(),
        bytes as f64 / 1e6,
        report.kept(),
        report.broken()
    );
    let off = Options::default().with_config(rules_off);
    let (mut metadata, mut read, mut reading, mut full) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        metadata.push(time(|| {
            cargo_metadata::MetadataCommand::new()
                .manifest_path(&manifest)
                .other_options(vec!["--offline".to_owned()])
                .exec()
                .expect("cargo metadata runs");
        }));
        read.push(time(|| {
            for file in &sources {
                let _ = std::fs::read_to_string(file);
            }
        }));
        reading.push(time(|| {
            check(&manifest, &off).expect("the linter runs");
        }));
        full.push(time(|| {
            check(&manifest, &Options::default()).expect("the linter runs");
        }));
    }
    let (metadata, read, reading, full) = (
        Stats::of(metadata),
        Stats::of(read),
        Stats::of(reading),
        Stats::of(full),
    );
    println!("  check, median (min-max)            {full}");
    println!("  check with every rule off          {reading}");
    println!("  cargo metadata alone               {metadata}");
    println!("  breakdown of the fastest check:");
    println!(
        "    cargo metadata (subprocess, parse)  {:>6.1} ms",
        ms(metadata.min)
    );
    println!(
        "    reading the sources                 {:>6.1} ms",
        ms(read.min)
    );
    println!(
        "    lexing (and the table)              {:>6.1} ms  (fastest with every rule off, less the two above)",
        ms(reading.min) - ms(metadata.min) - ms(read.min)
    );
    println!(
        "    rules                               {:>6.1} ms  (fastest check, less the fastest with every rule off)",
        ms(full.min) - ms(reading.min)
    );
}

/// Median, least and most of some timings.
struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

impl Stats {
    fn of(mut times: Vec<Duration>) -> Self {
        times.sort();
        Stats {
            median: times[times.len() / 2],
            min: times[0],
            max: times[times.len() - 1],
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.1} ms  ({:.1}-{:.1})",
            ms(self.median),
            ms(self.min),
            ms(self.max)
        )
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn time(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

/// Every `.rs` file under the members' directories, as the linter finds them (nested
/// packages, `target` and hidden directories left out).
fn source_files(manifest: &Path) -> Vec<PathBuf> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest)
        .no_deps()
        .other_options(vec!["--offline".to_owned()])
        .exec()
        .expect("cargo metadata runs");
    let mut files = Vec::new();
    for package in metadata.workspace_packages() {
        if let Some(dir) = package.manifest_path.parent() {
            rust_files(dir.as_std_path(), true, &mut files);
        }
    }
    files
}

fn rust_files(dir: &Path, root: bool, out: &mut Vec<PathBuf>) {
    if !root && dir.join("Cargo.toml").exists() {
        return;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                rust_files(&path, false, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}
