//! The table as data: every rule switches off, the table may live in `layers.toml` (or a file
//! `--config` names) but not in two places, and source rules are defined by the table.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use cargo_strata::{Error, Options, Rule, check};
use common::{Scratch, fixture_dirs, fixtures, report_for, strata};
use std::collections::BTreeSet;
use std::path::Path;

/// Switches `rule` off in the workspace at `dir`, wherever its table is.
fn switch_off(dir: &Path, rule: Rule) {
    let (file, header) = if dir.join("layers.toml").exists() {
        (dir.join("layers.toml"), "[rules]")
    } else {
        (dir.join("Cargo.toml"), "[workspace.metadata.layers.rules]")
    };
    let text = std::fs::read_to_string(&file).unwrap();
    let switch = format!("{} = false", rule.id());
    let text = match text.find(header) {
        Some(at) => {
            let end = at + header.len();
            format!("{}\n{switch}{}", &text[..end], &text[end..])
        }
        None => format!("{text}\n{header}\n{switch}\n"),
    };
    std::fs::write(&file, text).unwrap();
}

#[test]
fn every_rule_a_fixture_breaks_can_be_switched_off_alone() {
    let mut switched = BTreeSet::new();
    for dir in fixture_dirs() {
        let before = report_for(&dir);
        let broken: BTreeSet<Rule> = before.violations.iter().map(|v| v.rule).collect();
        for rule in broken {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let scratch = Scratch::copy(&dir, &format!("off-{name}-{rule}"));
            switch_off(scratch.path(), rule);
            let after = report_for(scratch.path());
            // An exception for a switched-off rule waits for it rather than going stale.
            let waiting = format!("rule = \"{}\"", rule.id());
            let left = |r: &cargo_strata::Report| {
                r.violations
                    .iter()
                    .filter(|v| v.rule != rule)
                    .filter(|v| !(v.rule == Rule::StaleException && v.message.contains(&waiting)))
                    .map(|v| (v.file.clone(), v.line, v.rule, v.message.clone()))
                    .collect::<Vec<_>>()
            };
            assert!(
                after.violations.iter().all(|v| v.rule != rule),
                "{name}: {rule} still reported:\n{}",
                after.to_text()
            );
            // The other rules report what they did before, unless the switch was the
            // table's own check (then the table's problems are no longer reported at all).
            if rule != Rule::InvalidTable {
                assert_eq!(left(&after), left(&before), "{name} without {rule}");
            }
            switched.insert(rule);
        }
    }
    let unswitched: Vec<Rule> = Rule::ALL
        .iter()
        .copied()
        .filter(|r| !switched.contains(r))
        .collect();
    assert!(unswitched.is_empty(), "no fixture breaks {unswitched:?}");
}

#[test]
fn the_rules_off_fixture_switches_off_every_rule() {
    let manifest = std::fs::read_to_string(fixtures().join("rules-off/Cargo.toml")).unwrap();
    for &rule in Rule::ALL {
        assert!(
            manifest.contains(&format!("\n{} = false\n", rule.id())),
            "rules-off does not switch off {rule}"
        );
    }
    // With the switches gone, it breaks every rule.
    let scratch = Scratch::copy(&fixtures().join("rules-off"), "rules-on");
    let manifest = scratch.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        "[workspace.metadata.layers.rules]",
        "[workspace.metadata.ignored]",
    );
    std::fs::write(&manifest, text).unwrap();
    let report = report_for(scratch.path());
    let broken: BTreeSet<Rule> = report.violations.iter().map(|v| v.rule).collect();
    assert_eq!(
        broken,
        Rule::ALL.iter().copied().collect(),
        "{}",
        report.to_text()
    );
}

#[test]
fn an_unknown_rule_switch_is_a_table_problem() {
    let scratch = Scratch::copy(&fixtures().join("clean"), "unknown-switch");
    let manifest = scratch.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[workspace.metadata.layers.rules]\nlayer-edges = false\n"),
    )
    .unwrap();
    let report = report_for(scratch.path());
    assert_eq!(report.exit_code(), 2);
    assert!(
        report
            .to_text()
            .contains("invalid-table: [rules] names unknown rule `layer-edges`"),
        "{}",
        report.to_text()
    );
}

#[test]
fn a_table_in_layers_toml_is_read_and_located_there() {
    let report = report_for(&fixtures().join("layers-toml"));
    let stale = report
        .violations
        .iter()
        .find(|v| v.rule == Rule::StaleException)
        .expect("the stale exception");
    assert_eq!((stale.file.as_str(), stale.line), ("layers.toml", 23));
}

#[test]
fn a_table_in_two_places_is_a_configuration_error() {
    let scratch = Scratch::copy(&fixtures().join("clean"), "two-tables");
    std::fs::write(scratch.path().join("layers.toml"), "[[layer]]\n").unwrap();
    let error = check(scratch.path(), &Options::default()).unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(error.to_string().contains("two places"), "{error}");
    let output = strata(&["--manifest-path", scratch.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_config_file_replaces_the_workspace_table() {
    // The clean fixture's workspace, checked against the layers-toml fixture's table: its
    // crates are not the table's, so the table is wrong for it.
    let config = fixtures().join("layers-toml/layers.toml");
    let report = check(
        fixtures().join("clean"),
        &Options::default().with_config(&config),
    )
    .unwrap();
    let text = report.to_text();
    assert!(
        text.contains("layers.toml") && text.contains("undeclared-crate"),
        "{text}"
    );
    let missing = check(
        fixtures().join("clean"),
        &Options::default().with_config("/nonexistent/layers.toml"),
    )
    .unwrap_err();
    assert!(matches!(missing, Error::Config(_)), "{missing}");
}

#[test]
fn source_rules_defined_by_the_table_run_everywhere_but_only_in() {
    let report = report_for(&fixtures().join("source-rule-only-in"));
    let hits: Vec<(&str, usize)> = report
        .violations
        .iter()
        .map(|v| (v.file.as_str(), v.line))
        .collect();
    // The api's SQL and process start; never the drivers' SQL, the tool's process, prose or
    // test code.
    assert_eq!(
        hits,
        [
            ("crates/fx-api/src/lib.rs", 3),
            ("crates/fx-api/src/lib.rs", 5),
            ("crates/fx-api/src/lib.rs", 5)
        ],
        "{}",
        report.to_text()
    );
}
