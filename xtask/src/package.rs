//! `cargo xtask package`: `cargo package` of every published crate, each one verified by
//! building it from its `.crate` file alone, as crates.io users will (a step of `cargo xtask ci`).
//!
//! cargo verifies crates that depend on each other through a temporary local registry standing
//! in for crates.io (`package/tmp-registry` in the target directory). It takes a registry crate
//! of a given version to be immutable: it reuses the copy it once unpacked into
//! `$CARGO_HOME/registry/src/-<hash>/` and its build in the target directory, whatever the new
//! `.crate` file holds, and every commit here is version 0.1.0. Left alone, a second run would
//! verify `account-drivers` against the `account-models` of the first. So each run first
//! forgets those builds and copies ([`forget_local_registry_builds`]); the builds of crates.io
//! dependencies stay, and a warm run compiles only this workspace's crates.
//!
//! A packaged manifest carries no workspace profile, so the verify builds get the workspace's
//! debug-info settings on the command line ([`PROFILE_CONFIG`]): less to compile and link, and
//! dependencies whose features agree are shared with the workspace's own debug build.

use crate::util::{cargo, target_dir, workspace_root};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The workspace members that are not published (`publish = false` in their manifests).
pub const UNPUBLISHED: [&str; 5] = [
    "account-bench",
    "account-testkit",
    "example-embed-axum",
    "example-host-transaction",
    "xtask",
];

/// The root manifest's `[profile.dev]` debug-info settings, as `--config` values.
pub const PROFILE_CONFIG: [&str; 2] = [
    r#"profile.dev.debug="line-tables-only""#,
    r#"profile.dev.package."*".debug=false"#,
];

/// Runs the packaging check on its own.
pub fn run(args: &[String]) -> Result<u8> {
    if let Some(unknown) = args.first() {
        #[allow(clippy::print_stderr)] // a usage error, for the terminal
        {
            eprintln!("cargo xtask package takes no arguments (got `{unknown}`)");
        }
        return Ok(2);
    }
    std::env::set_current_dir(workspace_root()?)?;
    verify()?;
    Ok(0)
}

/// `cargo package` of every published crate, verified; uncommitted changes are included (CI
/// checks the tree as it is). Offline: CI's first step fetched every package of the lock file.
pub fn verify() -> Result<()> {
    forget_local_registry_builds(&target_dir()?.join("debug"))?;
    let mut args = vec![
        "package",
        "--workspace",
        "--locked",
        "--offline",
        "--allow-dirty",
    ];
    for name in UNPUBLISHED {
        args.extend(["--exclude", name]);
    }
    for setting in PROFILE_CONFIG {
        args.extend(["--config", setting]);
    }
    cargo(&args)
}

/// Removes from `profile_dir` (e.g. `target/debug`) the builds of this workspace's crates that
/// cargo took from a local registry, and the unpacked sources they were built from; returns how
/// many builds it removed. cargo rebuilds them from the current `.crate` files.
///
/// A build is recognised by its dep-info file (`deps/account_*-<hash>.d`), whose sources lie
/// under `registry/src/-<hash>/` for a local registry (cargo names a registry's directory after
/// its URL's host, and a `file://` URL has none).
pub fn forget_local_registry_builds(profile_dir: &Path) -> Result<usize> {
    let deps = profile_dir.join("deps");
    let Ok(entries) = std::fs::read_dir(&deps) else {
        return Ok(0); // nothing built yet
    };
    let mut unpacked = BTreeSet::new();
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        let Some(stem) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".d"))
            .filter(|stem| stem.starts_with("account_"))
        else {
            continue;
        };
        let dep_info = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let Some(source) = local_registry_package(&dep_info) else {
            continue;
        };
        unpacked.insert(source);
        for output in [
            format!("lib{stem}.rlib"),
            format!("lib{stem}.rmeta"),
            format!("{stem}.d"),
        ] {
            remove_if_present(&deps.join(output))?;
        }
        if let Some((crate_name, hash)) = stem.rsplit_once('-') {
            let package = crate_name.replace('_', "-");
            remove_if_present(
                &profile_dir
                    .join(".fingerprint")
                    .join(format!("{package}-{hash}")),
            )?;
        }
        removed += 1;
    }
    for dir in unpacked {
        remove_if_present(&dir)?;
    }
    Ok(removed)
}

/// The unpacked package directory (`<cargo home>/registry/src/-<hash>/<name>-<version>`) that
/// a dep-info file's first source lies in, when that is a local registry's.
fn local_registry_package(dep_info: &str) -> Option<PathBuf> {
    let (_, sources) = dep_info.lines().next()?.split_once(": ")?;
    let source = sources.split_whitespace().next()?;
    let (home, rest) = source.split_once("/registry/src/")?;
    let mut parts = rest.split('/');
    let registry = parts.next().filter(|name| name.starts_with('-'))?;
    let package = parts.next()?;
    Some(PathBuf::from(format!(
        "{home}/registry/src/{registry}/{package}"
    )))
}

fn remove_if_present(path: &Path) -> Result<()> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_registry_build_names_its_unpacked_package() {
        let dep_info = "/t/debug/deps/account_values-af8a.d: \
            /home/u/.cargo/registry/src/-6a5c94240bcafe26/account-values-0.1.0/src/lib.rs \
            /home/u/.cargo/registry/src/-6a5c94240bcafe26/account-values-0.1.0/src/email.rs\n\n";
        assert_eq!(
            local_registry_package(dep_info),
            Some(PathBuf::from(
                "/home/u/.cargo/registry/src/-6a5c94240bcafe26/account-values-0.1.0"
            ))
        );
    }

    #[test]
    fn workspace_and_crates_io_builds_are_left_alone() {
        for dep_info in [
            "/t/debug/deps/account_values-1.d: /work/crates/account-values/src/lib.rs\n",
            "/t/debug/deps/account_values-2.d: /t/package/account-values-0.1.0/src/lib.rs\n",
            "/t/debug/deps/serde-3.d: /h/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.228/src/lib.rs\n",
        ] {
            assert_eq!(local_registry_package(dep_info), None, "{dep_info}");
        }
    }

    #[test]
    fn forgetting_removes_the_build_its_fingerprint_and_its_sources_only() {
        let root = std::env::temp_dir().join(format!("xtask-package-{}", std::process::id()));
        let profile = root.join("debug");
        let unpacked = root.join("home/registry/src/-abc/account-models-0.1.0");
        let deps = profile.join("deps");
        for dir in [
            &deps,
            &unpacked,
            &profile.join(".fingerprint/account-models-11"),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::create_dir_all(profile.join(".fingerprint/account-models-22")).unwrap();
        let overlay = format!("x: {}/src/lib.rs\n", unpacked.display());
        std::fs::write(deps.join("account_models-11.d"), overlay).unwrap();
        std::fs::write(deps.join("libaccount_models-11.rlib"), "").unwrap();
        std::fs::write(deps.join("account_models-22.d"), "x: /work/src/lib.rs\n").unwrap();
        std::fs::write(deps.join("libaccount_models-22.rlib"), "").unwrap();

        assert_eq!(forget_local_registry_builds(&profile).unwrap(), 1);
        assert!(!deps.join("libaccount_models-11.rlib").exists());
        assert!(!deps.join("account_models-11.d").exists());
        assert!(!profile.join(".fingerprint/account-models-11").exists());
        assert!(!unpacked.exists());
        assert!(deps.join("libaccount_models-22.rlib").exists());
        assert!(profile.join(".fingerprint/account-models-22").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// [`UNPUBLISHED`] and [`PROFILE_CONFIG`] restate the manifests; this keeps them equal.
    #[test]
    fn the_constants_agree_with_the_manifests() {
        let root = workspace_root().unwrap();
        let read = |path: PathBuf| -> toml::Table {
            std::fs::read_to_string(&path).unwrap().parse().unwrap()
        };
        let workspace = read(root.join("Cargo.toml"));
        let members = workspace["workspace"]["members"].as_array().unwrap();
        let mut unpublished = Vec::new();
        for member in members {
            let manifest = read(root.join(member.as_str().unwrap()).join("Cargo.toml"));
            let package = &manifest["package"];
            if package.get("publish").and_then(toml::Value::as_bool) == Some(false) {
                unpublished.push(package["name"].as_str().unwrap().to_owned());
            }
        }
        unpublished.sort();
        assert_eq!(unpublished, UNPUBLISHED);

        let dev = &workspace["profile"]["dev"];
        let debug = dev["debug"].as_str().unwrap();
        let dependencies_debug = dev["package"]["*"]["debug"].as_bool().unwrap();
        assert_eq!(
            PROFILE_CONFIG,
            [
                format!(r#"profile.dev.debug="{debug}""#),
                format!(r#"profile.dev.package."*".debug={dependencies_debug}"#),
            ]
        );
    }
}
