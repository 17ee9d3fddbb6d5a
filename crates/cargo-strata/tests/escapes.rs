//! The ways around a layer edge, each caught with the chain of files and crates that shows
//! it: re-exports (direct and through other crates' re-exports), code a proc-macro emits,
//! renamed dependencies, build, dev and platform-specific dependencies.
//!
//! `tests/fixtures.rs` checks each fixture's whole text report; these tests read the
//! library's report and pin the `chain` of each violation, which the text does not print.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use cargo_strata::{Options, Rule, Violation, check};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn violations(name: &str) -> Vec<Violation> {
    check(fixture(name), &Options::default())
        .expect("the linter runs")
        .violations
}

/// The one violation of `rule` on `krate` naming `target` at `line`.
fn find<'v>(
    found: &'v [Violation],
    rule: Rule,
    krate: &str,
    target: &str,
    line: usize,
) -> &'v Violation {
    let matching: Vec<&Violation> = found
        .iter()
        .filter(|v| v.rule == rule && v.krate == krate && v.target == target && v.line == line)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{rule} {krate} {target} {line}: {found:#?}"
    );
    matching[0]
}

/// Line `line` (1-based) of a file of fixture `name`, trimmed.
fn line_of(name: &str, file: &str, line: usize) -> String {
    let text = std::fs::read_to_string(fixture(name).join(file)).expect("file");
    text.lines()
        .nth(line - 1)
        .expect("the line exists")
        .trim()
        .to_owned()
}

fn chain(steps: &[&str]) -> Vec<String> {
    steps.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_direct_reexport_names_its_site_the_crate_and_what_it_hands_up() {
    let found = violations("reexport");
    let direct = find(&found, Rule::Reexport, "fx-engines", "fx-drivers", 2);
    assert_eq!(direct.file, "crates/fx-engines/src/lib.rs");
    assert_eq!(
        direct.chain,
        chain(&["crates/fx-engines/src/lib.rs:2", "fx-engines", "fx-drivers"])
    );
    assert_eq!(
        direct.message,
        "fx-engines (L5 engines) re-exports fx-drivers (L6 drivers) to L4 spine, which may not \
         use it: skips closed layer `L5 engines`; go through it"
    );
    // `store` is the drivers' rename in the engines' manifest.
    assert_eq!(
        line_of("reexport", "crates/fx-engines/src/lib.rs", 2),
        "pub use store::Row;"
    );
}

#[test]
fn reexports_chain_through_modules_names_and_globs() {
    let found = violations("reexport");
    // `pub use ::store::{…, types}` reaches the drivers' `types` module, whose
    // `pub use fx_models::values::Email` goes through the models' `pub use fx_values as values`.
    let module = find(&found, Rule::Reexport, "fx-engines", "fx-values", 3);
    assert_eq!(
        module.chain,
        chain(&[
            "crates/fx-engines/src/lib.rs:3",
            "fx-engines",
            "crates/fx-drivers/src/lib.rs:6",
            "fx-drivers",
            "crates/fx-models/src/lib.rs:2",
            "fx-models",
            "fx-values",
        ])
    );
    assert!(
        module
            .message
            .contains("re-exports fx-values (L8 values) through fx-drivers, fx-models to L4 spine"),
        "{}",
        module.message
    );
    // A glob of a crate reaches everything that crate re-exports.
    let glob = find(&found, Rule::Reexport, "fx-drivers", "fx-values", 2);
    assert_eq!(
        glob.chain,
        chain(&[
            "crates/fx-drivers/src/lib.rs:2",
            "fx-drivers",
            "crates/fx-models/src/lib.rs:2",
            "fx-models",
            "fx-values",
        ])
    );
    // So does a whole crate, here as `pub extern crate store as drivers`; the shortest chain
    // is the one reported.
    let whole = find(&found, Rule::Reexport, "fx-engines", "fx-models", 4);
    assert_eq!(
        whole.chain,
        chain(&[
            "crates/fx-engines/src/lib.rs:4",
            "fx-engines",
            "crates/fx-drivers/src/lib.rs:2",
            "fx-drivers",
            "fx-models",
        ])
    );
}

#[test]
fn restricted_test_and_excepted_reexports_are_not_reported() {
    let found = violations("reexport");
    let reexports: Vec<(&str, usize)> = found
        .iter()
        .filter(|v| v.rule == Rule::Reexport)
        .map(|v| (v.krate.as_str(), v.line))
        .collect();
    // pub(super), pub(crate) and #[cfg(test)] re-exports export nothing.
    assert!(
        reexports
            .iter()
            .all(|(krate, line)| *krate != "fx-engines" || *line <= 4),
        "{reexports:?}"
    );
    assert!(
        reexports
            .iter()
            .all(|(krate, line)| *krate != "fx-drivers" || *line != 5),
        "{reexports:?}"
    );
    // The models' own re-export of the values is excepted, and no layer may use the spine.
    assert!(
        !reexports
            .iter()
            .any(|(krate, _)| *krate == "fx-models" || *krate == "fx-spine"),
        "{reexports:?}"
    );
    assert!(
        found
            .iter()
            .all(|v| v.rule == Rule::Reexport && !v.chain.is_empty()),
        "{found:#?}"
    );
}

#[test]
fn a_proc_macros_code_answers_to_the_source_rules_of_its_users() {
    let found = violations("escape-proc-macro");
    // The engines (raw-sql) expand the macro; the drivers' layer may run SQL; the API expands
    // it in tests only; the SQL in the macro's own tests is not emitted.
    assert_eq!(found.len(), 1, "{found:#?}");
    let emitted = find(
        &found,
        Rule::SourceRule,
        "fx-engines",
        "crates/fx-macros/src/lib.rs",
        7,
    );
    assert_eq!(emitted.file, "crates/fx-macros/src/lib.rs");
    assert_eq!(
        emitted.chain,
        chain(&[
            "fx-engines",
            "fx-macros (proc-macro)",
            "crates/fx-macros/src/lib.rs:7"
        ])
    );
    assert!(
        emitted.message.starts_with(
            "raw-sql: SQL string \"SELECT id FROM tenants\" in proc-macro fx-macros, which \
             expands into fx-engines; layer `engines` must not run SQL"
        ),
        "{}",
        emitted.message
    );
}

#[test]
fn a_renamed_dependency_is_the_edge_it_renames() {
    let found = violations("escape-renamed");
    assert_eq!(found.len(), 3, "{found:#?}");
    let skip = find(&found, Rule::LayerEdge, "fx-api", "fx-drivers", 8);
    assert_eq!(
        skip.chain,
        chain(&["crates/fx-api/Cargo.toml:8", "fx-drivers"])
    );
    assert!(
        skip.message
            .contains("as a dependency renamed `db`: skips closed layer `L5 engines`"),
        "{}",
        skip.message
    );
    assert!(line_of("escape-renamed", "crates/fx-api/Cargo.toml", 8).starts_with("db = "));
    let climb = find(&found, Rule::LayerEdge, "fx-drivers", "fx-engines", 8);
    assert!(
        climb.message.contains("renamed `up`: climbs the stack"),
        "{}",
        climb.message
    );
    let forbidden = find(&found, Rule::ForbiddenExternal, "fx-engines", "orm", 8);
    assert_eq!(forbidden.chain, chain(&["fx-engines", "orm"]));
    assert!(
        forbidden
            .message
            .ends_with("fx-engines -> orm (renamed `store`)"),
        "{}",
        forbidden.message
    );
    assert!(line_of("escape-renamed", "crates/fx-engines/Cargo.toml", 8).starts_with("store = "));
}

#[test]
fn build_dependencies_follow_the_layers_but_may_use_any_external_crate() {
    let found = violations("escape-build-dependency");
    assert_eq!(found.len(), 2, "{found:#?}");
    let skip = find(&found, Rule::LayerEdge, "fx-api", "fx-drivers", 8);
    assert!(
        skip.message.contains("as a build-dependency: skips"),
        "{}",
        skip.message
    );
    assert_eq!(
        skip.chain,
        chain(&["crates/fx-api/Cargo.toml:8", "fx-drivers"])
    );
    let climb = find(&found, Rule::LayerEdge, "fx-drivers", "fx-engines", 8);
    assert!(
        climb.message.contains("as a build-dependency: climbs"),
        "{}",
        climb.message
    );
    assert_eq!(
        line_of("escape-build-dependency", "crates/fx-drivers/Cargo.toml", 7),
        "[build-dependencies]"
    );
}

#[test]
fn dev_dependencies_follow_the_layers_but_may_use_any_external_crate() {
    let found = violations("escape-dev-dependency");
    assert_eq!(found.len(), 2, "{found:#?}");
    let skip = find(&found, Rule::LayerEdge, "fx-api", "fx-drivers", 8);
    assert!(
        skip.message.contains("as a dev-dependency: skips"),
        "{}",
        skip.message
    );
    let climb = find(&found, Rule::LayerEdge, "fx-drivers", "fx-engines", 8);
    assert_eq!(
        climb.chain,
        chain(&["crates/fx-drivers/Cargo.toml:8", "fx-engines"])
    );
    assert!(
        climb.message.contains("as a dev-dependency: climbs"),
        "{}",
        climb.message
    );
    assert_eq!(
        line_of("escape-dev-dependency", "crates/fx-drivers/Cargo.toml", 7),
        "[dev-dependencies]"
    );
}

#[test]
fn a_platform_specific_dependency_counts_on_every_platform() {
    let found = violations("escape-target-dependency");
    assert_eq!(found.len(), 3, "{found:#?}");
    let unix = find(&found, Rule::LayerEdge, "fx-api", "fx-drivers", 8);
    assert!(
        unix.message
            .contains("as a dependency for `cfg(unix)`: skips closed layer `L5 engines`"),
        "{}",
        unix.message
    );
    assert_eq!(
        unix.chain,
        chain(&["crates/fx-api/Cargo.toml:8", "fx-drivers"])
    );
    let renamed_dev = find(&found, Rule::LayerEdge, "fx-drivers", "fx-engines", 8);
    assert!(
        renamed_dev
            .message
            .contains("as a dev-dependency renamed `up` for `cfg(unix)`: climbs"),
        "{}",
        renamed_dev.message
    );
    // A platform CI never builds (Windows here) still links the forbidden crate there.
    let windows = find(&found, Rule::ForbiddenExternal, "fx-engines", "orm", 8);
    assert_eq!(windows.chain, chain(&["fx-engines", "orm"]));
    assert_eq!(
        line_of(
            "escape-target-dependency",
            "crates/fx-engines/Cargo.toml",
            7
        ),
        "[target.'cfg(windows)'.dependencies]"
    );
}
