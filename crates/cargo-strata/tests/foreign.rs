//! `foreign-source` through the library: each escape's violation carries the chain that shows
//! it, from the line that reaches out to the foreign file and its owner, and an exception
//! names the foreign file. The exact text reports are the fixtures' `expected.txt`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use cargo_strata::{Options, Report, Rule, Violation, check};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn report(name: &str, options: &Options) -> Report {
    check(fixture(name).join("Cargo.toml"), options).expect("the linter runs")
}

/// The fixture's violations, all of which must be `foreign-source`.
fn foreign(name: &str) -> Vec<Violation> {
    let report = report(name, &Options::default());
    assert!(
        report
            .violations
            .iter()
            .all(|v| v.rule == Rule::ForeignSource),
        "{}",
        report.to_text()
    );
    report.violations
}

#[test]
fn a_path_module_shows_the_attribute_and_the_owner_of_the_file() {
    let violations = foreign("foreign-source-path");
    assert_eq!(violations.len(), 1);
    let v = &violations[0];
    assert_eq!(v.krate, "fx-engines");
    assert_eq!(v.target, "crates/fx-drivers/src/db.rs");
    assert_eq!(
        (v.file.as_str(), v.line),
        ("crates/fx-engines/src/lib.rs", 3)
    );
    assert_eq!(
        v.message,
        "fx-engines compiles crates/fx-drivers/src/db.rs of fx-drivers (L6 drivers) through #[path]"
    );
    assert_eq!(
        v.chain,
        [
            "crates/fx-engines/src/lib.rs:3",
            "crates/fx-drivers/src/db.rs (fx-drivers)"
        ]
    );
}

#[test]
fn a_symlink_shows_the_module_declaration_the_link_and_the_file() {
    let violations = foreign("foreign-source-symlink");
    assert_eq!(
        violations.len(),
        1,
        "LICENSE-MIT is a symlink but no source"
    );
    assert_eq!(
        violations[0].chain,
        [
            "crates/fx-engines/src/lib.rs:3",
            "crates/fx-engines/src/db.rs (symlink)",
            "crates/fx-drivers/src/db.rs (fx-drivers)"
        ]
    );
}

#[test]
fn includes_in_product_and_test_code() {
    let violations = foreign("foreign-source-include");
    let chains: Vec<&[String]> = violations.iter().map(|v| v.chain.as_slice()).collect();
    assert_eq!(
        chains,
        [
            [
                "crates/fx-engines/src/lib.rs:5",
                "crates/fx-drivers/schema.sql (fx-drivers)"
            ],
            [
                "crates/fx-engines/src/lib.rs:11",
                "crates/fx-drivers/src/db.rs (fx-drivers)"
            ],
            [
                "crates/fx-engines/tests/connect.rs:3",
                "crates/fx-drivers/src/db.rs (fx-drivers)"
            ],
        ]
    );
    assert!(
        violations[2]
            .message
            .ends_with("through include! in test code")
    );
    assert!(!violations[1].message.contains("test code"));
}

#[test]
fn a_build_script_reading_through_the_manifest_directory() {
    let violations = foreign("foreign-source-build-script");
    assert_eq!(violations.len(), 2);
    assert_eq!(
        violations[1].chain,
        [
            "crates/fx-engines/build.rs:8",
            "crates/fx-drivers/schema.sql (fx-drivers)"
        ]
    );
    assert!(violations[1].message.ends_with("in its build script"));
}

#[test]
fn an_exception_names_the_foreign_file() {
    // One exception accepts both inclusions of the drivers' module (library and test).
    let table =
        std::env::temp_dir().join(format!("cargo-strata-foreign-{}.toml", std::process::id()));
    std::fs::write(
        &table,
        "[[layer]]\nname = \"engines\"\nlevel = \"L5\"\ncrates = [\"fx-engines\"]\nclosed = true\n\n\
         [[layer]]\nname = \"drivers\"\nlevel = \"L6\"\ncrates = [\"fx-drivers\"]\nclosed = true\n\n\
         [[exceptions]]\nrule = \"foreign-source\"\ncrate = \"fx-engines\"\n\
         target = \"crates/fx-drivers/src/db.rs\"\nreason = \"a fixture\"\n",
    )
    .expect("write the table");
    let report = report(
        "foreign-source-include",
        &Options::default().with_config(&table),
    );
    std::fs::remove_file(&table).expect("clean up");
    let left: Vec<&str> = report
        .violations
        .iter()
        .map(|v| v.target.as_str())
        .collect();
    assert_eq!(
        left,
        ["crates/fx-drivers/schema.sql"],
        "{}",
        report.to_text()
    );
}
