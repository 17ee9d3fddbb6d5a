//! `cargo xtask layers`: checks a workspace against its layer table.
//!
//! The table (`[workspace.metadata.layers]` in the root `Cargo.toml`) assigns every crate to a
//! layer and says what each layer may use. The linter reads `cargo metadata` (offline) and the
//! sources, and reports every violation, one per line as `file:line: rule: message`, then
//! `N contracts kept, M broken`. Exit code 0 when clean, 1 on violations, 2 on usage errors.

#![allow(clippy::print_stdout, clippy::print_stderr)] // reporting is this module's job

mod deny;
mod edges;
mod externals;
pub mod metadata;
pub mod report;
mod sources;
pub mod table;
mod unused;

use anyhow::Result;
use metadata::Metadata;
use report::{Report, Violation};
use std::path::PathBuf;
use table::LayerTable;

const HELP: &str = "\
usage: cargo xtask layers [--manifest-path <Cargo.toml>] [--format text|json] [--write-deny]

Checks the workspace against [workspace.metadata.layers] in its root Cargo.toml.

options:
  --manifest-path <path>  the workspace to check (default: this one)
  --format text|json      `file:line: rule: message` lines (default), or JSON
  --write-deny            regenerate the [bans] block of deny.toml from the table, then check

rules (ids as printed; exceptions name them):
  invalid-table        the table itself is malformed
  undeclared-crate     a workspace crate is in no layer
  layer-edge           a dependency climbs the stack, skips a closed layer, uses a side layer
                       not in also_uses, an isolated crate, or a dev-only crate outside
                       [dev-dependencies]; normal, dev and build dependencies are told apart
  forbidden-external   a layer reaches a crate its forbidden_external lists, directly or through
                       external crates (the shortest chain is printed); the search stops at
                       workspace crates (checked on their own) and at external_parents
  unused-dependency    a declared dependency is never named in the sources that could use it
  layer-header         the crate root does not start with `//! Layer: <level> — <name>.`
  banned-name          a crate, module file or item ends with a banned suffix (`_service`)
  source-rule          per-layer text backstops: transaction-control (begin/commit/rollback),
                       raw-sql (SQL string literals, raw statement calls)
  deny-sync            deny.toml's generated [bans] block differs from the table
  invalid-exception    an exception has no reason
  stale-exception      an exception matches no violation
";

/// Shared state of one run: the inputs and the report the rules fill.
pub struct Context<'a> {
    /// `cargo metadata` of the workspace.
    pub metadata: &'a Metadata,
    /// Its layer table.
    pub table: &'a LayerTable,
    /// Violations found so far.
    pub report: Report,
}

impl Context<'_> {
    fn table_layers(&self) -> &[table::Layer] {
        &self.table.layers
    }
}

/// Parsed command-line options.
#[derive(Debug, Default)]
pub struct Options {
    /// The workspace to check.
    pub manifest_path: Option<PathBuf>,
    /// Print JSON instead of lines.
    pub json: bool,
    /// Regenerate deny.toml's block first.
    pub write_deny: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--manifest-path" => {
                    let path = args.next().ok_or("--manifest-path needs a path")?;
                    options.manifest_path = Some(PathBuf::from(path));
                }
                "--format" => match args.next().map(String::as_str) {
                    Some("json") => options.json = true,
                    Some("text") => options.json = false,
                    other => return Err(format!("--format takes text or json, not {other:?}")),
                },
                "--write-deny" => options.write_deny = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(Some(options))
    }
}

/// Entry point of `cargo xtask layers`; returns the exit code.
pub fn run(args: &[String]) -> Result<u8> {
    let options = match Options::parse(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{HELP}");
            return Ok(0);
        }
        Err(message) => {
            eprintln!("{message}\n\n{HELP}");
            return Ok(2);
        }
    };
    let report = check(&options)?;
    if options.json {
        print!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.violations.is_empty() { 0 } else { 1 })
}

/// Runs every rule on the workspace the options name.
pub fn check(options: &Options) -> Result<Report> {
    let metadata = Metadata::load(options.manifest_path.as_deref())?;
    let root_manifest = metadata.workspace_root.join("Cargo.toml");
    let table_file = metadata.relative(&root_manifest);
    let table_line = std::fs::read_to_string(&root_manifest)
        .ok()
        .and_then(|t| {
            t.lines()
                .position(|l| l.trim_start().starts_with("[workspace.metadata.layers"))
        })
        .map_or(1, |i| i + 1);
    let table = match LayerTable::from_metadata(metadata.metadata.as_ref()) {
        Ok(table) => table,
        Err(message) => {
            let mut report = Report::default();
            report.push(invalid_table(&table_file, table_line, message));
            report.finish(&[], &table_file, table_line);
            return Ok(report);
        }
    };
    let mut cx = Context {
        metadata: &metadata,
        table: &table,
        report: Report::default(),
    };
    cx.report.checked("invalid-table", "");
    for problem in table.problems() {
        cx.report
            .push(invalid_table(&table_file, table_line, problem));
    }
    if options.write_deny {
        deny::write(&cx)?;
    }
    edges::check(&mut cx);
    externals::check(&mut cx);
    unused::check(&mut cx);
    sources::check(&mut cx);
    deny::check(&mut cx);
    let mut report = cx.report;
    report.finish(&table.exceptions, &table_file, table_line);
    Ok(report)
}

fn invalid_table(file: &str, line: usize, message: String) -> Violation {
    Violation {
        file: file.to_owned(),
        line,
        rule: "invalid-table",
        krate: String::new(),
        target: String::new(),
        message,
    }
}
