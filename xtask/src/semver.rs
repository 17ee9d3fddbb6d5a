//! `cargo xtask semver`: the public API of the published crates against the semver baseline.
//!
//! The baseline is one git revision, `baseline` of `[workspace.metadata.semver]` in the root
//! Cargo.toml, and nothing else names it. cargo-semver-checks builds the rustdoc of every
//! published crate (the workspace members less that table's `unpublished`) at the baseline and
//! in the working tree, and fails on a change the version step between the two does not allow:
//! a breaking change needs a major bump (for 0.x crates, a minor one: 0.1 → 0.2), so it is
//! always a conscious version bump, never an accident.
//!
//! Until 0.1.0 is tagged the baseline is the commit that becomes 0.1.0; at the release it moves
//! to the `v0.1.0` tag, and after each release to that release's tag. The revision must be in
//! the clone's history (CI's clone is a full one).
//!
//! The tool is no prebuilt download here: on first use, the pinned release is compiled with
//! `cargo install --locked` into the target directory's `ci-tools` (several minutes on 2
//! cores, once); later runs with the same target directory reuse it, and a `cargo
//! semver-checks` of that release on the PATH is used as it is.

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::util::{cargo_command, run_command, tools_dir, workspace_root};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The cargo-semver-checks release CI installs when none is present.
pub const SEMVER_CHECKS_VERSION: &str = "0.51.0";

const USAGE: &str = "\
usage: cargo xtask semver [--baseline-rev REV]

Checks the public API of the published crates against the baseline revision with
cargo-semver-checks (installed into the target directory's ci-tools when missing).

  --baseline-rev REV   compare with REV instead of [workspace.metadata.semver] baseline
";

/// What `[workspace.metadata.semver]` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemverConfig {
    /// The git revision the published API is compared with.
    pub baseline: String,
    /// Workspace members that are never published (left out of the check).
    pub unpublished: Vec<String>,
    /// Published crates that the baseline does not have yet (`new_since_baseline`): nothing
    /// to compare them with until the baseline moves past their first release.
    pub new_since_baseline: Vec<String>,
}

impl SemverConfig {
    /// The table of `cargo metadata` output (`metadata` is its `metadata` object).
    pub fn from_workspace_metadata(metadata: &Value) -> Result<Self> {
        let table = metadata
            .get("semver")
            .context("the root Cargo.toml has no [workspace.metadata.semver]")?;
        let baseline = table
            .get("baseline")
            .and_then(Value::as_str)
            .filter(|rev| !rev.trim().is_empty())
            .context("[workspace.metadata.semver] has no `baseline` revision")?
            .trim()
            .to_owned();
        let list = |key: &str| -> Result<Vec<String>> {
            match table.get(key) {
                None => Ok(Vec::new()),
                Some(list) => list
                    .as_array()
                    .with_context(|| format!("[workspace.metadata.semver] `{key}` is not a list"))?
                    .iter()
                    .map(|name| {
                        name.as_str().map(str::to_owned).with_context(|| {
                            format!("[workspace.metadata.semver] `{key}` lists a non-string")
                        })
                    })
                    .collect(),
            }
        };
        Ok(Self {
            baseline,
            unpublished: list("unpublished")?,
            new_since_baseline: list("new_since_baseline")?,
        })
    }

    /// The arguments of `cargo semver-checks` comparing the published crates among `members`
    /// with `baseline`. Each is named with `--package`: `--workspace` skips every crate whose
    /// manifest says `publish = false`, which all of them do until the first release. Default
    /// features only: the tool otherwise turns on every feature, `testing` too, and the test
    /// hooks are no part of the API hosts are promised.
    pub fn check_args(&self, members: &[String], baseline: &str) -> Vec<String> {
        let mut args = ["semver-checks", "check-release", "--default-features"]
            .map(String::from)
            .to_vec();
        let skipped =
            |m: &String| self.unpublished.contains(m) || self.new_since_baseline.contains(m);
        for name in members.iter().filter(|m| !skipped(m)) {
            args.extend(["--package".to_owned(), name.clone()]);
        }
        args.extend(["--baseline-rev".to_owned(), baseline.to_owned()]);
        args
    }
}

/// `cargo xtask semver [--baseline-rev REV]`.
pub fn run(args: &[String]) -> Result<u8> {
    let baseline = match args {
        [] => None,
        [flag, rev] if flag == "--baseline-rev" => Some(rev.clone()),
        [help] if help == "-h" || help == "--help" => {
            println!("{USAGE}");
            return Ok(0);
        }
        _ => {
            eprintln!("{USAGE}");
            return Ok(2);
        }
    };
    std::env::set_current_dir(workspace_root()?)?;
    check(baseline.as_deref())?;
    Ok(0)
}

/// Runs the check against `baseline`, or the configured one: the CI step.
pub fn check(baseline: Option<&str>) -> Result<()> {
    let (config, members) = read_workspace()?;
    let baseline = baseline.unwrap_or(&config.baseline);
    let mut tool = semver_checks()?;
    println!("    baseline {baseline} ([workspace.metadata.semver])");
    run_command(tool.args(config.check_args(&members, baseline)))
}

/// `[workspace.metadata.semver]` of this workspace, and the names of its members.
fn read_workspace() -> Result<(SemverConfig, Vec<String>)> {
    let output = cargo_command(&[
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ])
    .stderr(Stdio::inherit())
    .output()
    .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata exited with {}", output.status);
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let config = SemverConfig::from_workspace_metadata(&metadata["metadata"])?;
    // `--no-deps`: the packages are the workspace's members.
    let members = metadata["packages"]
        .as_array()
        .context("cargo metadata lists no packages")?
        .iter()
        .filter_map(|package| package["name"].as_str().map(str::to_owned))
        .collect();
    Ok((config, members))
}

/// A command running cargo-semver-checks [`SEMVER_CHECKS_VERSION`]: the one on the PATH when it
/// is that release, else the one in `ci-tools`, installed there first when missing.
fn semver_checks() -> Result<Command> {
    if reports_version(&mut cargo_command(&["semver-checks", "--version"])) {
        return Ok(cargo_command(&[]));
    }
    let root = tools_dir()?.join("cargo-semver-checks");
    let binary = root.join("bin").join("cargo-semver-checks");
    if !binary.exists() {
        install(&root)?;
    }
    if !reports_version(Command::new(&binary).arg("--version")) {
        bail!(
            "{} is not cargo-semver-checks {SEMVER_CHECKS_VERSION}; remove it to reinstall",
            binary.display()
        );
    }
    let mut command = Command::new(binary);
    crate::util::without_package_env(&mut command);
    Ok(command)
}

/// Whether `command` (a `--version` call) answers with [`SEMVER_CHECKS_VERSION`].
fn reports_version(command: &mut Command) -> bool {
    command.stderr(Stdio::null()).output().is_ok_and(|out| {
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(SEMVER_CHECKS_VERSION)
    })
}

/// Compiles the pinned release into `root` (`root/bin/cargo-semver-checks`). Its build uses a
/// target directory of its own, which cargo removes afterwards: the workspace's stays as it
/// was.
fn install(root: &PathBuf) -> Result<()> {
    println!(
        "    compiling cargo-semver-checks {SEMVER_CHECKS_VERSION} into {} (minutes, once per \
         target directory)",
        root.display()
    );
    let mut install = cargo_command(&[
        "install",
        "cargo-semver-checks",
        "--locked",
        "--version",
        SEMVER_CHECKS_VERSION,
        "--root",
    ]);
    install.arg(root).env_remove("CARGO_TARGET_DIR");
    run_command(&mut install)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_baseline_and_the_unpublished_crates_come_from_the_table() {
        let metadata = json!({"semver": {
            "baseline": " 29c1c08 ",
            "unpublished": ["account-testkit", "xtask"],
            "new_since_baseline": ["cargo-strata"],
        }});
        let config = SemverConfig::from_workspace_metadata(&metadata).unwrap();
        assert_eq!(config.baseline, "29c1c08");
        let members = [
            "account-spine",
            "account-testkit",
            "account-api",
            "cargo-strata",
            "xtask",
        ]
        .map(String::from);
        assert_eq!(
            config.check_args(&members, "v0.1.0"),
            [
                "semver-checks",
                "check-release",
                "--default-features",
                "--package",
                "account-spine",
                "--package",
                "account-api",
                "--baseline-rev",
                "v0.1.0",
            ]
        );
    }

    #[test]
    fn a_missing_or_empty_baseline_is_an_error() {
        for metadata in [
            json!({}),
            json!({"semver": {}}),
            json!({"semver": {"baseline": ""}}),
        ] {
            assert!(SemverConfig::from_workspace_metadata(&metadata).is_err());
        }
        let bad = json!({"semver": {"baseline": "v1", "unpublished": "xtask"}});
        assert!(SemverConfig::from_workspace_metadata(&bad).is_err());
    }

    #[test]
    fn the_workspace_names_a_baseline_and_its_unpublished_crates() {
        let root = workspace_root().unwrap();
        let manifest: toml::Value =
            toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
        let metadata = &manifest["workspace"]["metadata"];
        let metadata = serde_json::to_value(metadata).unwrap();
        let config = SemverConfig::from_workspace_metadata(&metadata).unwrap();
        assert!(!config.baseline.is_empty());
        for name in ["account-testkit", "account-bench", "xtask"] {
            assert!(config.unpublished.iter().any(|n| n == name), "{name}");
        }
    }
}
