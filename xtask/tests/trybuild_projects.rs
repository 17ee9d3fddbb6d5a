//! The compile-fail suites of drivers and engines share trybuild's target directory
//! (`target/tests/trybuild`), and share its build of the dependency graph only when both
//! projects resolve the same features. trybuild builds each from its crate's dependencies and
//! dev-dependencies, so drivers declares every external crate engines does (as
//! dev-dependencies named in its `tests/compile_fail.rs`), and engines reaches every one
//! drivers declares. A crate added to one side alone fails here instead of silently compiling
//! sea-orm and everything below it twice per cold run.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::collections::BTreeMap;
use std::path::Path;

/// External dependencies (normal and dev) of a crate: name -> extra features it asks for.
fn externals(krate: &str) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates")
        .join(krate)
        .join("Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(&path)
        .expect("readable manifest")
        .parse()
        .expect("valid manifest");
    let table = |key: &str| -> BTreeMap<String, Vec<String>> {
        manifest
            .get(key)
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
            .filter(|(name, _)| !name.starts_with("account-"))
            .map(|(name, spec)| {
                let features = spec
                    .get("features")
                    .and_then(toml::Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect();
                (name.clone(), features)
            })
            .collect()
    };
    (table("dependencies"), table("dev-dependencies"))
}

#[test]
fn drivers_and_engines_trybuild_projects_declare_the_same_external_crates() {
    let (drivers_normal, drivers_dev) = externals("account-drivers");
    let (engines_normal, engines_dev) = externals("account-engines");
    let mut drivers = drivers_dev.clone();
    drivers.extend(drivers_normal.clone());
    let mut engines = engines_dev;
    engines.extend(engines_normal);

    let missing_in_drivers: Vec<&String> = engines
        .keys()
        .filter(|n| !drivers.contains_key(*n))
        .collect();
    assert!(
        missing_in_drivers.is_empty(),
        "add {missing_in_drivers:?} to account-drivers' [dev-dependencies] and name them in its \
         tests/compile_fail.rs"
    );
    // Engines reaches drivers' normal dependencies through account-drivers itself.
    let missing_in_engines: Vec<&String> = drivers_dev
        .keys()
        .filter(|n| !engines.contains_key(*n) && !drivers_normal.contains_key(*n))
        .collect();
    assert!(
        missing_in_engines.is_empty(),
        "account-drivers' dev-dependencies {missing_in_engines:?} are not reached by \
         account-engines' trybuild project"
    );
    for (name, features) in &engines {
        assert_eq!(
            &drivers[name], features,
            "`{name}` asks for different features in account-drivers and account-engines"
        );
    }
}
