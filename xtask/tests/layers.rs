//! The layer linter on fixture workspaces (one per rule, with the exact expected report) and
//! on this workspace, which must be clean.

#![allow(clippy::expect_used)] // a test that cannot set up should fail loudly

use std::path::{Path, PathBuf};
use xtask::layers::{Options, check};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn report_for(manifest: PathBuf) -> xtask::layers::report::Report {
    check(&Options {
        manifest_path: Some(manifest),
        ..Options::default()
    })
    .expect("the linter runs")
}

#[test]
fn every_fixture_reports_exactly_its_expected_output() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures())
        .expect("fixtures exist")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
        let actual = report_for(dir.join("Cargo.toml")).to_text();
        if actual != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                dir.display()
            ));
        }
        checked += 1;
    }
    assert!(checked >= 11, "only {checked} fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_rule_has_a_fixture_that_breaks_it() {
    let rules = [
        "undeclared-crate",
        "layer-edge",
        "forbidden-external",
        "unused-dependency",
        "layer-header",
        "banned-name",
        "source-rule",
        "deny-sync",
        "invalid-exception",
        "stale-exception",
        "invalid-table",
    ];
    let all: String = std::fs::read_dir(fixtures())
        .expect("fixtures exist")
        .map(|e| e.expect("entry").path().join("expected.txt"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    for rule in rules {
        assert!(
            all.contains(&format!(": {rule}: ")),
            "no fixture breaks {rule}"
        );
    }
}

#[test]
fn a_driver_depending_on_engines_names_the_rule_and_the_manifest_line() {
    let report = report_for(fixtures().join("layer-edge/Cargo.toml"));
    let text = report.to_text();
    assert!(text.contains(
        "crates/fx-drivers/Cargo.toml:8: layer-edge: fx-drivers (L6 drivers) -> fx-engines (L5 engines) as a dependency"
    ), "{text}");
}

#[test]
fn a_commit_in_a_driver_names_the_rule_and_the_source_line() {
    let text = report_for(fixtures().join("source-rule/Cargo.toml")).to_text();
    assert!(
        text.contains(
            "crates/fx-drivers/src/lib.rs:3: source-rule: transaction-control: `.commit(`"
        ),
        "{text}"
    );
    // The commit inside the #[cfg(test)] module is not reported.
    assert_eq!(text.matches("fx-drivers/src/lib.rs").count(), 1, "{text}");
}

#[test]
fn json_output_carries_the_same_violations() {
    let report = report_for(fixtures().join("forbidden-external/Cargo.toml"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    let violations = json["violations"].as_array().expect("array");
    assert_eq!(violations.len(), report.violations.len());
    assert_eq!(
        violations[1]["message"]
            .as_str()
            .map(|m| m.ends_with("fx-engines -> wrapper -> orm")),
        Some(true)
    );
    assert_eq!(json["broken"], 2);
}

#[test]
fn this_workspace_keeps_every_contract() {
    let report = check(&Options::default()).expect("the linter runs");
    assert!(report.violations.is_empty(), "{}", report.to_text());
}
