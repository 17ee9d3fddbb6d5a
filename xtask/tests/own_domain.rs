//! The own-domain example (`examples/own-domain`): a host's workspace with its own layer
//! table and its own xtask, which runs our linter as the host's CI would (`cargo xtask
//! layers` there). Clean as committed; an engine of it that reaches the ORM is caught.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use cargo_strata::{Options, Rule, check};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    xtask::util::workspace_root().unwrap()
}

fn own_domain() -> PathBuf {
    root().join("examples/own-domain")
}

#[test]
fn the_own_domain_example_keeps_its_own_layer_table() {
    // As its README says to run it: `cargo xtask layers` inside it, its own xtask (built on
    // first use: it needs only cargo-strata).
    let output = xtask::util::own_domain_xtask(&["layers"])
        .unwrap()
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.ends_with(" broken (0 violations)\n"), "{stdout}");
    let kept: usize = stdout.split_whitespace().next().unwrap().parse().unwrap();
    assert!(kept >= 20, "{stdout}");
    // Its help names it as the host runs it.
    let help = xtask::util::own_domain_xtask(&["layers", "--help"])
        .unwrap()
        .output()
        .expect("cargo runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: cargo xtask layers"), "{help}");
}

#[test]
fn an_own_domain_engine_reaching_the_orm_is_caught() {
    let copy = std::env::temp_dir().join(format!("xtask-own-domain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(&own_domain(), &copy);
    // The copy's path dependencies on the account crates point back into this repository.
    let manifest = copy.join("Cargo.toml");
    let table = std::fs::read_to_string(&manifest).unwrap();
    let account_crates = format!("path = \"{}/", root().display());
    let table = table.replace("path = \"../../", &account_crates);
    std::fs::write(&manifest, table).unwrap();
    // The engines crate depends on sea-orm itself, and uses it.
    let engines = copy.join("crates/shop-engines");
    let cargo = std::fs::read_to_string(engines.join("Cargo.toml")).unwrap();
    let cargo = cargo.replace(
        "[dependencies]\n",
        "[dependencies]\nsea-orm.workspace = true\n",
    );
    std::fs::write(engines.join("Cargo.toml"), cargo).unwrap();
    let lib = std::fs::read_to_string(engines.join("src/lib.rs")).unwrap();
    let leak = "\n/// The ORM's error, in an engine.\npub type Leak = sea_orm::DbErr;\n";
    std::fs::write(engines.join("src/lib.rs"), lib + leak).unwrap();

    let report = check(&manifest, &Options::default()).expect("the linter runs");
    std::fs::remove_dir_all(&copy).unwrap();
    let text = report.to_text();
    let broken: Vec<_> = report
        .violations
        .iter()
        .map(|v| (v.rule, v.krate.as_str(), v.target.as_str()))
        .collect();
    // The ORM, and what it brings along, each a violation of its own.
    let forbidden = |target| (Rule::ForbiddenExternal, "shop-engines", target);
    assert_eq!(
        broken,
        ["sea-orm", "sea-query", "sqlx", "tokio"].map(forbidden),
        "{text}"
    );
    assert!(
        text.starts_with(
            "crates/shop-engines/Cargo.toml:11: forbidden-external: layer `engines` must not \
             depend on `sea-orm`: shop-engines -> sea-orm\n"
        ),
        "{text}"
    );
}

/// Copies the workspace, leaving out build output.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        let target = to.join(name);
        if path.is_dir() {
            if name != "target" {
                copy_dir(&path, &target);
            }
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
