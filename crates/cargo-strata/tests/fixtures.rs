//! The layer linter on fixture workspaces (one per rule, and one per way around a layer edge,
//! `escape-*`; each with its exact expected report) and on this workspace, which must be clean.
//!
//! Fixtures live in `tests/fixtures/<rule>/`: tiny workspaces of path crates; crates under a
//! fixture's `ext/` are path packages outside its members, so the linter treats them as
//! external crates. To change an expected report, run the linter on the fixture and review the
//! difference line by line before copying it into `expected.txt`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use cargo_strata::{Options, Rule, check};
use common::{Scratch, fixture_dirs, fixtures, report_for, strata};
use std::path::Path;

#[test]
fn every_fixture_reports_exactly_its_expected_output_and_exit_code() {
    let mut failures = Vec::new();
    let dirs = fixture_dirs();
    for dir in &dirs {
        let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
        let output = strata(&["--manifest-path", dir.to_str().expect("UTF-8 path")]);
        let actual = String::from_utf8_lossy(&output.stdout);
        let code = if expected.contains(" 0 broken") {
            0
        } else if expected.contains(": invalid-table: ")
            || expected.contains(": invalid-exception: ")
        {
            2
        } else {
            1
        };
        let code_ok = output.status.code() == Some(code);
        if actual != expected || !code_ok {
            failures.push(format!(
                "{} (exit {:?}):\n--- expected\n{expected}--- actual\n{actual}{}",
                dir.display(),
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(dirs.len() >= 16, "only {} fixtures found", dirs.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_rule_has_a_fixture_that_breaks_it() {
    let all: String = fixture_dirs()
        .iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join("expected.txt")).ok())
        .collect();
    for &rule in Rule::ALL {
        assert!(
            all.contains(&format!(": {rule}: ")),
            "no fixture breaks {rule}"
        );
    }
}

#[test]
fn a_driver_depending_on_engines_names_the_rule_and_the_manifest_line() {
    let text = report_for(&fixtures().join("layer-edge")).to_text();
    assert!(
        text.contains(
            "crates/fx-drivers/Cargo.toml:8: layer-edge: fx-drivers (L6 drivers) -> fx-engines (L5 engines) as a dependency: climbs the stack"
        ),
        "{text}"
    );
    let manifest =
        std::fs::read_to_string(fixtures().join("layer-edge/crates/fx-drivers/Cargo.toml"))
            .expect("manifest");
    assert!(
        manifest
            .lines()
            .nth(7)
            .expect("line 8")
            .starts_with("fx-engines")
    );
}

#[test]
fn a_dependency_cycle_between_layers_is_still_reported_as_a_layer_edge() {
    // Cargo cannot resolve a workspace where the drivers and the engines use each other; the
    // linter falls back to the declared dependencies and says what it could not check.
    let dir = fixtures().join("layer-edge-cycle");
    let report = report_for(&dir);
    let text = report.to_text();
    assert!(
        text.starts_with("crates/fx-drivers/Cargo.toml:8: layer-edge: fx-drivers (L6 drivers) -> fx-engines (L5 engines) as a dependency"),
        "{text}"
    );
    assert_eq!(report.notes.len(), 1);
    assert!(
        report.notes[0].contains("cyclic package dependency"),
        "{:?}",
        report.notes
    );
    let output = strata(&["--manifest-path", dir.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("warning: cargo cannot resolve"));
}

#[test]
fn a_commit_in_a_driver_names_the_rule_and_the_source_line() {
    let text = report_for(&fixtures().join("source-rule")).to_text();
    assert!(
        text.contains(
            "crates/fx-drivers/src/lib.rs:3: source-rule: transaction-control: `.commit()` call"
        ),
        "{text}"
    );
    // The commits in the #[cfg(test)] module and in the out-of-line test module, the comment
    // and the method definition are not reported.
    let driver_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("fx-drivers/src/"))
        .collect();
    assert_eq!(driver_lines.len(), 3, "{text}");
}

#[test]
fn usage_errors_and_unreadable_workspaces_exit_2() {
    let bad_option = strata(&["--frobnicate"]);
    assert_eq!(bad_option.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_option.stderr).contains("unexpected argument '--frobnicate'")
    );
    let missing = strata(&["--manifest-path", "/nonexistent/Cargo.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cargo metadata"));
}

#[test]
fn help_describes_options_and_every_rule() {
    let output = strata(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--manifest-path",
        "--format",
        "--write-deny",
        "external_parents",
    ] {
        assert!(help.contains(needle), "{needle}");
    }
    for &rule in Rule::ALL {
        assert!(help.contains(rule.id()), "{rule}");
    }
}

#[test]
fn write_deny_brings_deny_toml_in_line_with_the_table() {
    let scratch = Scratch::copy(&fixtures().join("deny-sync"), "deny-sync");
    let copy = scratch.path();
    let before = report_for(copy);
    assert!(before.violations.iter().any(|v| v.rule == Rule::DenySync));

    let written = check(
        copy.join("Cargo.toml"),
        &Options::default().with_write_deny(true),
    )
    .expect("the linter runs");
    assert!(written.violations.is_empty(), "{}", written.to_text());
    let deny = std::fs::read_to_string(copy.join("deny.toml")).expect("deny.toml");
    assert!(
        deny.starts_with("[bans]\nmultiple-versions = \"allow\"\n"),
        "{deny}"
    );
    assert!(deny.contains(
        "{ crate = \"fx-drivers\", wrappers = [\"fx-engines\"], reason = \"layer L6 drivers: only the layers the table allows may depend on it\" },"
    ), "{deny}");
    assert!(deny.ends_with("]\n# END generated\n"), "{deny}");
}

#[test]
fn this_workspace_keeps_every_contract() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let report = check(&root, &Options::default()).expect("the linter runs");
    assert!(report.violations.is_empty(), "{}", report.to_text());
    assert!(report.kept() > 40, "{}", report.to_text());
}
