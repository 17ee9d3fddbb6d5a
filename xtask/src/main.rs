//! Layer: tooling — xtask. The command-line entry point of `cargo xtask`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool talks on the terminal

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  layers   check the workspace against the layer table ([workspace.metadata.layers])
           (cargo xtask layers --help for its options; layers init --stdout drafts a table)
  tidy     source hygiene: frozen migrations
  ci       every check: fmt, clippy, layers, tidy, cargo-deny, docs, packaging, tests on SQLite and
           PostgreSQL, each backend alone, semver
  package  cargo package of every published crate, each checked from its .crate file (a step of ci)
  fuzz     run each cargo-fuzz target briefly ([--seconds N] [--with-api])
  pg       start|stop a throwaway PostgreSQL and a streaming replica of it (used by ci; handy for
           local test runs)
  cluster  a throwaway primary, a streaming replica and 3 account-api instances reading from it,
           until Ctrl-C ([--release] for an optimised build)
  bench    the benchmark harness, release build, SQLite and a durable PostgreSQL
           (cargo xtask bench --help for its options; BENCHMARKS.md for the figures)
  schemathesis [--database-url URL]
           property tests of the served /openapi.json (a step of ci; URL: an empty database)
  semver   cargo-semver-checks of the published crates against [workspace.metadata.semver]
           baseline (a step of ci; [--baseline-rev REV] for another revision)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(root) = std::env::var_os(xtask::fuzz::INSTRUMENT_ROOT_VAR) {
        return match xtask::fuzz::rustc_wrapper(std::path::Path::new(&root), &args) {
            Ok(code) => ExitCode::from(code),
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(1)
            }
        };
    }
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let outcome = match command.as_str() {
        "layers" => xtask::layers::run(rest),
        "tidy" => xtask::tidy::run(rest),
        "ci" => xtask::ci::run(rest),
        "package" => xtask::package::run(rest),
        "fuzz" => xtask::fuzz::run(rest),
        "pg" => xtask::pg::run(rest),
        "cluster" => xtask::cluster::run(rest),
        "bench" => xtask::bench::run(rest),
        "schemathesis" => xtask::schemathesis::run(rest),
        "semver" => xtask::semver::run(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => {
            eprintln!("unknown command `{other}`\n\n{USAGE}");
            Ok(2)
        }
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
