//! `cargo strata init` on real workspaces: every fixture (its own table taken out) and a
//! generated workspace. The table it writes must leave `check` with no `layer-edge`,
//! `undeclared-crate` or `invalid-table` violation on the same workspace, and init must never
//! write over a table the workspace has.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

#[path = "../benches/check/synthetic.rs"]
mod synthetic;

mod common;

use cargo_strata::{Options, Rule, check, init};
use common::{copy_dir, fixture_dirs, fixtures, strata};
use std::path::{Path, PathBuf};

/// A fresh scratch directory for `name`, under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("init")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The manifest without its `[workspace.metadata.layers…]` tables.
fn without_table(manifest: &str) -> String {
    let mut keep = true;
    let mut out = String::new();
    for line in manifest.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            keep = !trimmed
                .trim_start_matches('[')
                .starts_with("workspace.metadata.layers");
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs `init` on the workspace in `dir` (which has no table) as a user would, then `check`;
/// returns the written table. Panics on any violation of the graph rules.
fn init_then_check(dir: &Path) -> String {
    let output = strata(&["init", "--manifest-path", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}: {stdout}{stderr}",
        dir.display()
    );
    assert!(stdout.starts_with("wrote "), "{stdout}");
    let table = std::fs::read_to_string(dir.join("layers.toml")).expect("layers.toml written");
    assert_eq!(
        table,
        init(dir).expect("init runs"),
        "the library drafts the same"
    );

    let report = check(dir, &Options::default()).expect("the linter runs");
    let graph_rules = [Rule::LayerEdge, Rule::UndeclaredCrate, Rule::InvalidTable];
    let broken: Vec<_> = report
        .violations
        .iter()
        .filter(|v| graph_rules.contains(&v.rule))
        .collect();
    assert!(
        broken.is_empty(),
        "{}:\n{}\n{table}",
        dir.display(),
        report.to_text()
    );
    assert!(report.kept() > 0);

    // A second init would write over the table: refused.
    let again = strata(&["init", "--manifest-path", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(
        message.contains("already has a layer table") && message.contains("layers.toml"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("layers.toml")).unwrap(),
        table
    );
    table
}

#[test]
fn every_fixture_gets_a_table_its_graph_keeps() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 11, "only {} fixtures", dirs.len());
    for fixture in dirs {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let dir = scratch(&name);
        copy_dir(&fixture, &dir);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), without_table(&manifest)).unwrap();
        let _ = std::fs::remove_file(dir.join("layers.toml"));
        let table = init_then_check(&dir);
        match name.as_str() {
            // fx-api dev-depends on fx-drivers, whose build script uses fx-api: nothing else
            // uses fx-drivers, so it is dev-only, using the layers of what it uses.
            "layer-edge" => assert!(
                table.contains("crates = [\"fx-drivers\"]\nalso_uses = [\"level1\", \"level2\", \"migrations\"]"),
                "{table}"
            ),
            // fx-drivers and fx-engines use each other: cargo resolves nothing, init still
            // drafts from the declared dependencies.
            "layer-edge-cycle" => {
                assert!(table.contains("cargo cannot resolve"), "{table}");
                assert!(table.contains("Cargo cannot build"), "{table}");
                assert!(table.contains("siblings_may_depend = true"), "{table}");
            }
            // Only a dev-dependency of the others.
            "clean" => assert!(
                table.contains("name = \"kit\"\nlevel = \"dev\"\nside = true\ndev_only = true\n"),
                "{table}"
            ),
            _ => {}
        }
    }
}

#[test]
fn a_generated_workspace_gets_a_table_its_graph_keeps() {
    let dir = scratch("generated");
    let shape = synthetic::Shape {
        crates: 34,
        files: 2,
        table: false,
    };
    synthetic::write(&dir, &shape).unwrap();
    let table = init_then_check(&dir);
    // The test kit is dev-only, the lone binary isolated; `app` skips `api` to reach `flows`,
    // so that layer's closed hint says what closing it would refuse; a base crate whose tests
    // use the values crate above (which uses it) shares its layer.
    assert!(table.contains("crates = [\"syn-testkit\"]"), "{table}");
    assert!(
        table.contains("isolated = true\ncrates = [\"syn-report\"]"),
        "{table}"
    );
    assert!(table.contains("today it would refuse syn-app-"), "{table}");
    assert!(table.contains("siblings_may_depend = true"), "{table}");
    assert!(table.contains("depend on each other"), "{table}");
    assert!(!table.contains("Cargo cannot build"), "{table}");
}

#[test]
fn init_prints_with_stdout_and_never_writes_over_a_table() {
    // The fixture keeps its table in Cargo.toml: --stdout prints the draft anyway and writes
    // nothing; without it, init refuses.
    let dir = scratch("refuse");
    copy_dir(&fixtures().join("clean"), &dir);
    let printed = strata(&["init", "--stdout", "--manifest-path", dir.to_str().unwrap()]);
    assert_eq!(printed.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        init(dir.join("Cargo.toml")).unwrap()
    );
    assert!(String::from_utf8_lossy(&printed.stderr).contains("already has a layer table"));
    let refused = strata(&["init", "--manifest-path", dir.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("[workspace.metadata.layers] in ") && message.contains("--stdout"),
        "{message}"
    );
    assert!(!dir.join("layers.toml").exists());
    // A workspace cargo cannot read is a configuration error too.
    let missing = strata(&["init", "--manifest-path", "/nonexistent/Cargo.toml"]);
    assert_eq!(missing.status.code(), Some(2));
}
