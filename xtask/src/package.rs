//! `cargo xtask package`: `cargo package` of every published crate, each one then checked from
//! its `.crate` file alone against the others' `.crate` files, as a crates.io user builds it (a
//! step of `cargo xtask ci`).
//!
//! `cargo package` would verify each crate with a full build of its dependency tree under its
//! own features: five different trees here (models, drivers and engines, spine and api,
//! migrations, the linter), fourteen minutes cold on 2 cores. So the crates are packaged
//! without that build, unpacked into `package/check/` in the target directory, and each is
//! `cargo check`ed there with its default features, the others' unpacked crates patched in for
//! crates.io (`[patch.crates-io]` given on the command line) and this workspace's lock file:
//! what catches a file left out of a package, a manifest that does not stand alone, or a crate
//! that compiles only with a feature some crate above it turns on. Checking, not building, is
//! about a third of the work; the build of the binaries is the debug build step's.
//!
//! The checks share the workspace's target directory and its debug-info settings
//! ([`PROFILE_CONFIG`]; a packaged manifest carries no workspace profile), and path
//! dependencies are fingerprinted by their files, so a warm run re-checks only this
//! workspace's crates.

use crate::util::{cargo, cargo_command, run_command, target_dir, workspace_root};
use anyhow::{Context, Result, bail};
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

/// `cargo package` of every published crate, each checked from its `.crate` file; uncommitted
/// changes are included (CI checks the tree as it is). Offline: CI's first step fetched every
/// package of the lock file.
pub fn verify() -> Result<()> {
    let packages = target_dir()?.join("package");
    // Only this run's files are unpacked below (older versions would be too).
    for old in crate_files(&packages)? {
        std::fs::remove_file(old)?;
    }
    let mut args = vec![
        "package",
        "--workspace",
        "--locked",
        "--offline",
        "--allow-dirty",
        "--no-verify",
    ];
    for name in UNPUBLISHED {
        args.extend(["--exclude", name]);
    }
    cargo(&args)?;
    let root = workspace_root()?;
    let check = packages.join("check");
    let published = published_crates(&packages)?;
    if check.exists() {
        std::fs::remove_dir_all(&check)?;
    }
    std::fs::create_dir_all(&check)?;
    let mut patches = Vec::new();
    for (name, file) in &published {
        let dir = unpack(file, &check)?;
        // A root of its own: cargo would otherwise take it for a stray member of ours.
        let manifest = dir.join("Cargo.toml");
        let mut text = std::fs::read_to_string(&manifest)?;
        text.push_str("\n[workspace]\n");
        std::fs::write(&manifest, text)?;
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
        patches.push(format!(
            "patch.crates-io.{name}.path={}",
            toml_string(&dir.to_string_lossy())
        ));
    }
    for (name, file) in &published {
        let dir = check.join(package_stem(file)?);
        #[allow(clippy::print_stdout)] // progress, for the CI log
        {
            println!("    checking {name} from its .crate file");
        }
        let manifest = dir.join("Cargo.toml");
        let mut command = cargo_command(&["check", "--offline", "--quiet", "--manifest-path"]);
        command
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", target_dir()?);
        for setting in PROFILE_CONFIG
            .iter()
            .map(|s| (*s).to_owned())
            .chain(patches.clone())
        {
            command.arg("--config").arg(setting);
        }
        run_command(&mut command)
            .with_context(|| format!("{name} does not build from its .crate file"))?;
    }
    Ok(())
}

/// The `.crate` files in `packages`, by crate name.
fn published_crates(packages: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for path in crate_files(packages)? {
        let stem = package_stem(&path)?;
        let (name, _version) = stem
            .rsplit_once('-')
            .with_context(|| format!("{} names no version", path.display()))?;
        found.push((name.to_owned(), path.clone()));
    }
    found.sort();
    if found.is_empty() {
        bail!("cargo package wrote no .crate file");
    }
    Ok(found)
}

/// The `.crate` files in `packages` (none when it does not exist yet).
fn crate_files(packages: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(packages) else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "crate") {
            files.push(path);
        }
    }
    Ok(files)
}

/// `name-version` of a `.crate` file, the directory it unpacks to.
fn package_stem(file: &Path) -> Result<String> {
    file.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".crate"))
        .map(str::to_owned)
        .with_context(|| format!("{} is no .crate file", file.display()))
}

/// Unpacks a `.crate` file (a gzipped tar of `name-version/`) into `into`, every file dated
/// now (`-m`): `cargo package` stamps files with one fixed old date, so the shared target
/// directory's fingerprints would take the previous run's build of the same version as
/// fresh and check the new sources against stale dependencies.
fn unpack(file: &Path, into: &Path) -> Result<PathBuf> {
    let mut tar = std::process::Command::new("tar");
    tar.arg("-xzmf").arg(file).arg("-C").arg(into);
    run_command(&mut tar)?;
    Ok(into.join(package_stem(file)?))
}

/// `text` as a TOML basic string, for a `--config` value (JSON's escapes are TOML's).
fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
