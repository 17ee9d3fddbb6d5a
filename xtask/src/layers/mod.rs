//! `cargo xtask layers`: checks a workspace against its layer table.
//!
//! The table (`[workspace.metadata.layers]` in the root `Cargo.toml`) assigns every crate to a
//! layer and says what each layer may use. The linter reads `cargo metadata --offline` and the
//! crates' sources, runs every rule, and reports every violation, one per line as
//! `file:line: rule: message`, then `N contracts kept, M broken`. `--help` lists the rules
//! and the table's keys.
//!
//! Code map: `cli` parses the command line; `table`, `metadata`, `manifest` and `sources`
//! read the inputs (`lexer` turns Rust code into tokens); `rules` holds one module per check
//! and `deny` the deny.toml generator; `exceptions` filters the findings; `report` prints them.

#![allow(clippy::print_stdout, clippy::print_stderr)] // reporting is this module's job

mod cli;
mod deny;
mod exceptions;
mod lexer;
mod manifest;
mod metadata;
mod report;
mod rules;
mod sources;
mod table;

pub use cli::Options;
pub use report::{Report, Violation};
pub use rules::Rule;

use anyhow::Result;
use cli::Request;
use manifest::Manifests;
use metadata::{Graph, Metadata};
use sources::PackageSources;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use table::{LayerTable, TableLines};

/// One rule's check: reads the workspace, adds contracts and violations to the report.
type Check = fn(&Workspace<'_>, &mut Report);

/// What the rules read: the workspace, its table and its sources, each loaded once.
pub(crate) struct Workspace<'a> {
    /// `cargo metadata`, indexed.
    pub(crate) graph: &'a Graph<'a>,
    /// The layer table.
    pub(crate) table: &'a LayerTable,
    /// Each member's lexed sources, by crate name.
    pub(crate) sources: BTreeMap<&'a str, PackageSources>,
    /// Manifest texts, for line numbers.
    pub(crate) manifests: Manifests,
}

impl<'a> Workspace<'a> {
    /// Reads and lexes every member's sources.
    fn load(graph: &'a Graph<'a>, table: &'a LayerTable) -> Self {
        Workspace {
            graph,
            table,
            sources: graph
                .members
                .iter()
                .map(|(name, package)| (*name, PackageSources::load(package)))
                .collect(),
            manifests: Manifests::default(),
        }
    }

    /// `path` relative to the workspace root, as the report prints it.
    pub(crate) fn relative(&self, path: &Path) -> String {
        self.graph.metadata.relative(path)
    }
}

/// Entry point of `cargo xtask layers`; returns the exit code (0 clean, 1 violations, 2 usage
/// error or a workspace that cannot be read).
pub fn run(args: &[String]) -> Result<u8> {
    let options = match Options::parse(args) {
        Ok(Request::Check(options)) => options,
        Ok(Request::Help) => {
            print!("{}", cli::help());
            return Ok(0);
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{}", cli::help());
            return Ok(2);
        }
    };
    let report = match check(&options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error:#}");
            return Ok(2);
        }
    };
    if options.json {
        print!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    for note in &report.notes {
        eprintln!("warning: {note}");
    }
    // An incomplete check is not a clean one.
    Ok(if report.violations.is_empty() && report.notes.is_empty() {
        0
    } else {
        1
    })
}

/// Runs every rule on the workspace the options name (rewriting deny.toml's generated block
/// first with `write_deny`) and returns the finished report.
pub fn check(options: &Options) -> Result<Report> {
    let manifest_path = options.manifest_path.clone().or_else(default_manifest);
    let metadata = Metadata::load(manifest_path.as_deref())?;
    let graph = Graph::new(&metadata);
    let root_manifest = metadata.workspace_root.join("Cargo.toml");
    let table_file = metadata.relative(&root_manifest);
    let lines = TableLines::scan(&std::fs::read_to_string(&root_manifest).unwrap_or_default());
    let mut report = Report::default();
    report.checked(Rule::InvalidTable, "");

    let table = match LayerTable::from_metadata(metadata.metadata.as_ref()) {
        Ok(table) => table,
        Err(message) => {
            report.push(invalid_table(&table_file, lines.table, message));
            report.sort();
            return Ok(report);
        }
    };
    let members: BTreeSet<&str> = graph.members.keys().copied().collect();
    for (line, message) in table.problems(&members, &lines) {
        report.push(invalid_table(&table_file, line, message));
    }

    let workspace = Workspace::load(&graph, &table);
    // Without a resolved graph (a dependency cycle) the graph rules cannot run.
    let skipped = match &metadata.unresolved {
        None => Vec::new(),
        Some(why) => {
            if options.write_deny {
                anyhow::bail!("--write-deny needs the resolved dependency graph: {why}");
            }
            report.notes.push(format!(
                "cargo cannot resolve the dependency graph ({why}); forbidden-external and \
                 deny-sync did not run, the other rules ran on the declared dependencies"
            ));
            vec![Rule::ForbiddenExternal, Rule::DenySync]
        }
    };
    if options.write_deny {
        deny::write(&workspace)?;
    }
    let checks: [(Rule, Check); 7] = [
        (Rule::LayerEdge, rules::edges::check),
        (Rule::ForbiddenExternal, rules::externals::check),
        (Rule::UnusedDependency, rules::unused::check),
        (Rule::LayerHeader, rules::headers::check),
        (Rule::BannedName, rules::names::check),
        (Rule::SourceRule, rules::backstops::check),
        (Rule::DenySync, deny::check),
    ];
    for (rule, check) in checks {
        if !skipped.contains(&rule) {
            check(&workspace, &mut report);
        }
    }
    exceptions::apply(
        &mut report,
        &table.exceptions,
        &skipped,
        &table_file,
        &lines,
    );
    report.sort();
    Ok(report)
}

/// The manifest cargo ran this program for (`cargo run` and `cargo test` set
/// `CARGO_MANIFEST_DIR`), so `cargo xtask layers` checks its own workspace from any
/// directory; `None` lets `cargo metadata` look from the current directory.
fn default_manifest() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let manifest = dir.join("Cargo.toml");
    manifest.is_file().then_some(manifest)
}

fn invalid_table(file: &str, line: usize, message: String) -> Violation {
    Violation {
        file: file.to_owned(),
        line,
        rule: Rule::InvalidTable,
        krate: String::new(),
        target: String::new(),
        message,
    }
}
