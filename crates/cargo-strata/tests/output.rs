//! The output formats: JSON (versioned schema), SARIF 2.1.0 and GitHub annotations carry the
//! same violations as the text report, and the exit codes are the documented ones.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use cargo_strata::{Format, JSON_VERSION, Rule};
use common::{fixtures, report_for, strata};

fn run(fixture: &str, format: &str) -> (Option<i32>, String) {
    let dir = fixtures().join(fixture);
    let output = strata(&["--manifest-path", dir.to_str().unwrap(), "--format", format]);
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn json_is_versioned_and_carries_chains() {
    let (code, out) = run("forbidden-external", "json");
    assert_eq!(code, Some(1));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["version"], JSON_VERSION);
    assert_eq!(json["tool"]["name"], "cargo-strata");
    let violations = json["violations"].as_array().unwrap();
    let report = report_for(&fixtures().join("forbidden-external"));
    assert_eq!(violations.len(), report.violations.len());
    assert_eq!(json["contracts"]["broken"], 2);
    let engines = &violations[1];
    assert_eq!(engines["rule"], "forbidden-external");
    assert_eq!(engines["crate"], "fx-engines");
    assert_eq!(engines["target"], "orm");
    assert_eq!(engines["file"], "crates/fx-engines/Cargo.toml");
    assert_eq!(engines["line"], 9);
    assert_eq!(
        engines["chain"],
        serde_json::json!(["fx-engines", "wrapper", "middle", "orm"])
    );
}

#[test]
fn sarif_has_every_rule_and_one_located_result_per_violation() {
    let (code, out) = run("layer-edge", "sarif");
    assert_eq!(code, Some(1));
    let sarif: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, Rule::ALL.iter().map(|r| r.id()).collect::<Vec<_>>());
    let report = report_for(&fixtures().join("layer-edge"));
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report.violations.len());
    for (result, violation) in results.iter().zip(&report.violations) {
        assert_eq!(result["ruleId"], violation.rule.id());
        assert_eq!(
            rules[result["ruleIndex"].as_u64().unwrap() as usize]["id"],
            violation.rule.id()
        );
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], violation.file);
        assert_eq!(location["region"]["startLine"], violation.line);
    }
}

#[test]
fn github_annotations_point_at_the_manifest_line() {
    let (code, out) = run("forbidden-external", "github");
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "::error file=crates/fx-api/Cargo.toml,line=9,title=forbidden-external::layer `api` must not depend on `orm`: fx-api -> orm"
    );
    let summary = report_for(&fixtures().join("forbidden-external")).summary();
    assert_eq!(lines.last(), Some(&summary.as_str()));
}

#[test]
fn every_format_renders_a_clean_report_and_exit_codes_follow_the_report() {
    for (format, name) in Format::ALL {
        let (code, out) = run("clean", name);
        assert_eq!(code, Some(0), "{name}");
        assert_eq!(out, report_for(&fixtures().join("clean")).render(format));
    }
    assert_eq!(run("invalid-table", "text").0, Some(2));
    assert_eq!(report_for(&fixtures().join("invalid-table")).exit_code(), 2);
    assert_eq!(report_for(&fixtures().join("layer-edge")).exit_code(), 1);
}
