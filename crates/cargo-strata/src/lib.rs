//! Layer: tooling — linter. A layer linter for Cargo workspaces: the library behind `cargo
//! strata`, for a workspace's own `cargo xtask`.
//!
//! A layer table (`[workspace.metadata.layers]` in the root `Cargo.toml`, or a `layers.toml`
//! beside it) assigns every crate to a layer and says what each layer may use. [`check`] reads
//! `cargo metadata --offline` and the crates' sources, runs every rule the table switches on,
//! and returns a [`Report`]: each [`Violation`] with its file, line, rule, and the chain of
//! crates and files that shows it.
//!
//! ```no_run
//! use std::path::Path;
//!
//! // In a host's `xtask/src/main.rs`: fail CI on any broken contract.
//! let report = cargo_strata::check(Path::new("Cargo.toml"), &cargo_strata::Options::default())?;
//! print!("{}", report.render(cargo_strata::Format::Text));
//! std::process::exit(report.exit_code().into());
//! # Ok::<(), cargo_strata::Error>(())
//! ```
//!
//! The table's keys, the rules and the output formats are documented in the crate's README
//! and by `cargo strata --help`.
//!
//! Code map: `table` reads the table (and finds what is wrong with it); `metadata`, `manifest`
//! and `sources` read the workspace (`lexer` turns Rust code into tokens); `rules` holds one
//! module per check and `deny` the deny.toml generator; `exceptions` filters the findings;
//! `report` holds them and `output` renders them; `cli` is the command line, and `init`
//! drafts a first table from the dependency graph (`cargo strata init`).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
mod deny;
mod exceptions;
mod init;
mod lexer;
mod manifest;
mod metadata;
mod output;
mod report;
mod rules;
mod sources;
mod table;

pub use init::init;
pub use output::{Format, JSON_VERSION};
pub use report::{Report, Violation};
pub use rules::Rule;

use manifest::Manifests;
use metadata::{Graph, Metadata};
use sources::PackageSources;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use table::{LayerTable, TableLines, TableSource};

/// What [`check`] is asked to do besides reading the workspace.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    /// A layer table file to read instead of the workspace's own (`layers.toml` at the root,
    /// else `[workspace.metadata.layers]`). Its keys are those of `[workspace.metadata.layers]`.
    pub config: Option<PathBuf>,
    /// Regenerate the generated `[bans]` block of the workspace's `deny.toml` from the table
    /// before checking.
    pub write_deny: bool,
}

impl Options {
    /// Reads the layer table from `path` instead of the workspace.
    #[must_use]
    pub fn with_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Regenerates deny.toml's generated block before checking.
    #[must_use]
    pub fn with_write_deny(mut self, write_deny: bool) -> Self {
        self.write_deny = write_deny;
        self
    }
}

/// Why a check could not run at all. A table with problems is not an error: it is reported
/// as `invalid-table` violations, located at the entries at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `cargo metadata` could not read the workspace (no manifest there, a manifest cargo
    /// rejects, or dependencies missing offline).
    #[error("`cargo metadata --offline` failed: {0}")]
    Metadata(String),
    /// The options or the table cannot be used: a `--config` file that cannot be read, a
    /// table in two places, `--write-deny` without a usable deny.toml.
    #[error("{0}")]
    Config(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    fn metadata(error: cargo_metadata::Error) -> Self {
        match error {
            cargo_metadata::Error::CargoMetadata { stderr } => {
                Error::Metadata(stderr.trim_end().to_owned())
            }
            other => Error::Metadata(other.to_string()),
        }
    }
}

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
    /// The workspace of `graph` and `table`, no sources read yet.
    fn new(graph: &'a Graph<'a>, table: &'a LayerTable) -> Self {
        Workspace {
            graph,
            table,
            sources: BTreeMap::new(),
            manifests: Manifests::default(),
        }
    }

    /// Reads and lexes every member's sources, one thread per core.
    fn load(graph: &'a Graph<'a>, table: &'a LayerTable) -> Self {
        let members: Vec<(&'a str, &'a metadata::Package)> =
            graph.members.iter().map(|(n, p)| (*n, *p)).collect();
        let sources = sources::on_every_core(&members, |(name, package)| {
            (*name, PackageSources::load(package))
        })
        .into_iter()
        .collect();
        Workspace {
            sources,
            ..Workspace::new(graph, table)
        }
    }

    /// `path` relative to the workspace root, as the report prints it.
    pub(crate) fn relative(&self, path: &Path) -> String {
        self.graph.metadata.relative(path)
    }
}

/// Checks the workspace of `manifest_path` (its root `Cargo.toml`, a member's, or the
/// directory holding one) against its layer table and returns the finished report.
///
/// `cargo metadata --offline` is the only process it starts. Errors are only what stops the
/// check from running; everything wrong with the workspace or the table is in the report.
pub fn check(manifest_path: impl AsRef<Path>, options: &Options) -> Result<Report, Error> {
    let manifest_path = manifest_path.as_ref();
    // Resolving the graph is most of a check's time (cargo reads the lock file and the index
    // for every package). The members alone (`--no-deps`) come in a tenth of it, and the
    // rules that read only the members and their sources run while cargo resolves the rest.
    std::thread::scope(|scope| {
        let resolving = scope.spawn(|| Metadata::load(manifest_path));
        let declared = Metadata::load_members(manifest_path)?;
        let members = Graph::new(&declared);
        let source = TableSource::find(&declared, options.config.as_deref())?;
        let table_file = declared.relative(source.path());
        let lines = TableLines::scan(source.text(), source.prefix());
        let mut report = Report::default();
        report.checked(Rule::InvalidTable, "");
        let invalid = |line: usize, message: String| {
            Violation::new(Rule::InvalidTable, "", "", (&table_file, line), message)
        };
        let table = match source.parse() {
            Ok(table) => table,
            Err(message) => {
                report.push(invalid(lines.table, message));
                report.sort();
                return Ok(report);
            }
        };
        let names: BTreeSet<&str> = members.members.keys().copied().collect();
        for (line, message) in table.problems(&names, &lines) {
            report.push(invalid(line, message));
        }
        let workspace = Workspace::load(&members, &table);
        run(&workspace, MEMBER_CHECKS, &[], &mut report);

        let resolved = match resolving.join() {
            Ok(resolved) => resolved?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let graph = Graph::new(&resolved);
        let workspace = Workspace {
            graph: &graph,
            sources: workspace.sources,
            ..Workspace::new(&graph, &table)
        };
        // Without a resolved graph (a dependency cycle) the graph rules cannot run.
        let mut skipped = Vec::new();
        if let Some(why) = &resolved.unresolved {
            if options.write_deny {
                return Err(Error::Config(format!(
                    "--write-deny needs the resolved dependency graph: {why}"
                )));
            }
            report.notes.push(format!(
                "cargo cannot resolve the dependency graph ({why}); forbidden-external and \
                 deny-sync did not run, the other rules ran on the declared dependencies"
            ));
            skipped = vec![Rule::ForbiddenExternal, Rule::DenySync];
        }
        if options.write_deny {
            deny::write(&workspace)?;
        }
        run(&workspace, GRAPH_CHECKS, &skipped, &mut report);

        // A switched-off rule's exceptions are not stale: they wait for the rule to return.
        skipped.extend(Rule::ALL.iter().copied().filter(|r| !table.enabled(*r)));
        exceptions::apply(
            &mut report,
            &table.exceptions,
            &skipped,
            &table_file,
            &lines,
        );
        report.retain_rules(|rule| table.enabled(rule));
        report.sort();
        Ok(report)
    })
}

/// The checks that read only the members and their sources, each with the rules it reports.
const MEMBER_CHECKS: &[(&[Rule], Check)] = &[
    (
        &[Rule::LayerEdge, Rule::UndeclaredCrate],
        rules::edges::check,
    ),
    (&[Rule::Reexport], rules::reexports::check),
    (&[Rule::LayerHeader], rules::headers::check),
    (&[Rule::BannedName], rules::names::check),
    (&[Rule::SourceRule], rules::backstops::check),
];

/// The checks that need the resolved graph: every package, not only the members (external
/// crates' library names, the owners of files outside a package, the forbidden crates).
const GRAPH_CHECKS: &[(&[Rule], Check)] = &[
    (&[Rule::ForbiddenExternal], rules::externals::check),
    (&[Rule::UnusedDependency], rules::unused::check),
    (&[Rule::ForeignSource], rules::foreign::check),
    (&[Rule::DenySync], deny::check),
];

/// Runs each check one of whose rules is switched on and could run.
fn run(
    workspace: &Workspace<'_>,
    checks: &[(&[Rule], Check)],
    skipped: &[Rule],
    report: &mut Report,
) {
    for (reported, check) in checks {
        let table = workspace.table;
        if reported
            .iter()
            .any(|rule| table.enabled(*rule) && !skipped.contains(rule))
        {
            check(workspace, report);
        }
    }
}
