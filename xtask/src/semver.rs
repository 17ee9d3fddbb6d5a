//! `cargo xtask semver`: the public API of the published crates against the semver baseline.
//!
//! The baseline is one git revision, `baseline` of `[workspace.metadata.semver]` in the root
//! Cargo.toml, and nothing else names it. cargo-semver-checks compares the rustdoc (JSON) of
//! every published crate (the workspace members less that table's `unpublished`) at the
//! baseline with the working tree's, and fails on a change the version step between the two
//! does not allow: a breaking change needs a major bump (for 0.x crates, a minor one: 0.1 →
//! 0.2), so it is always a conscious version bump, never an accident.
//!
//! The baseline is the first commit at the current version (its public API as first set)
//! until that version is tagged; at a release it moves to the release's tag. The revision
//! must be in the clone's history (CI's clone is a full one).
//!
//! The rustdoc JSON is built here, not by the tool: one `cargo doc --workspace` per side, each
//! in a target directory of its own (`semver/baseline-target`, `semver/target`; see
//! `rustdoc_json` for why not one), so the dependencies are checked once per side for all
//! crates. The tool would build each crate on each side in a target directory of its own,
//! sixteen builds of the dependency tree cold. Features are what
//! `cargo doc --workspace` resolves: every published crate's defaults (no member turns on a
//! published crate's `testing` outside dev-dependencies, which doc builds leave out). The
//! baseline's JSON is kept by revision, so a warm run builds the working tree's only.
//!
//! The tool is no prebuilt download here: on first use, the pinned release is compiled with
//! `cargo install --locked` into the target directory's `ci-tools` (several minutes on 2
//! cores, once; `cargo xtask ci` starts it in the background at its first step, at the lowest
//! CPU priority); later runs with the same target directory reuse it, and a `cargo
//! semver-checks` of that release on the PATH is used as it is.

#![allow(clippy::print_stdout, clippy::print_stderr)] // progress output is this module's job

use crate::util::{cargo_command, run_command, target_dir, tools_dir, workspace_root};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
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

    /// The published crates among `members` that the baseline has: the ones to compare.
    pub fn compared<'m>(&self, members: &'m [String]) -> Vec<&'m String> {
        members
            .iter()
            .filter(|m| !self.unpublished.contains(m) && !self.new_since_baseline.contains(m))
            .collect()
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
    let crates = config.compared(&members);
    let tool = semver_checks()?;
    let commit = resolve(baseline)?;
    println!("    baseline {baseline} ({commit}, [workspace.metadata.semver])");
    let root = target_dir()?.join("semver");
    let baseline_json = root.join(format!("baseline-{commit}"));
    if !crates
        .iter()
        .all(|name| json_file(&baseline_json, name).exists())
    {
        let source = root.join("baseline-source");
        extract(&commit, &source)?;
        rustdoc_json(&source, &root.join("baseline-target"), &baseline_json)?;
    }
    let current_json = root.join("current");
    rustdoc_json(&workspace_root()?, &root.join("target"), &current_json)?;
    let mut failed = Vec::new();
    for name in crates {
        println!("    {name}");
        let mut compare = tool.command();
        compare
            .args(["check-release", "--baseline-rustdoc"])
            .arg(json_file(&baseline_json, name))
            .arg("--current-rustdoc")
            .arg(json_file(&current_json, name));
        if run_command(&mut compare).is_err() {
            failed.push(name.as_str());
        }
    }
    if !failed.is_empty() {
        bail!(
            "the public API of {} changed more than the version allows (see above)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// `rev` as a full commit id (the baseline's JSON is kept under it).
fn resolve(rev: &str) -> Result<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{rev}^{{commit}}"))
        .output()
        .context("running git rev-parse")?;
    if !output.status.success() {
        bail!("the semver baseline `{rev}` is no commit of this clone's history");
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The tree of `commit` into `dir` (replaced), from git's object store: no worktree to
/// register or clean up.
fn extract(commit: &str, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let mut archive = Command::new("git")
        .args(["archive", "--format=tar", commit])
        .stdout(Stdio::piped())
        .spawn()
        .context("running git archive")?;
    let tar = archive.stdout.take().context("git archive has no output")?;
    let unpacked = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(tar)
        .status()
        .context("running tar")?;
    let archived = archive.wait()?;
    if !archived.success() || !unpacked.success() {
        bail!("could not extract {commit} into {}", dir.display());
    }
    Ok(())
}

/// Builds the rustdoc JSON of every member of the workspace at `source` in `target` and keeps
/// the files in `into`. Each side needs a target directory of its own: cargo names a path
/// crate's build by its path inside the workspace, so the baseline's `account-models` 0.2.0
/// and the tree's share a file name, and when the tree's sources are older than the
/// baseline's build (a fresh clone), cargo takes that build as fresh.
fn rustdoc_json(source: &Path, target: &Path, into: &Path) -> Result<()> {
    let mut doc = cargo_command(&["doc", "--workspace", "--no-deps", "--locked"]);
    doc.current_dir(source)
        .env("CARGO_TARGET_DIR", target)
        // rustdoc's JSON output is unstable; cargo-semver-checks builds it the same way.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTDOCFLAGS", "-Z unstable-options --output-format json");
    run_command(&mut doc).with_context(|| format!("rustdoc JSON of {}", source.display()))?;
    if into.exists() {
        std::fs::remove_dir_all(into)?;
    }
    std::fs::create_dir_all(into)?;
    for entry in std::fs::read_dir(target.join("doc"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().context("a file name")?;
            std::fs::copy(&path, into.join(name))?;
        }
    }
    Ok(())
}

/// Where the rustdoc JSON of crate `name` is kept in `dir`.
fn json_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.json", name.replace('-', "_")))
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

/// cargo-semver-checks [`SEMVER_CHECKS_VERSION`], found or installed.
pub struct Tool {
    /// `None`: `cargo semver-checks` on the PATH; else the installed binary.
    binary: Option<PathBuf>,
}

impl Tool {
    /// A command to which `check-release ...` is added.
    fn command(&self) -> Command {
        match &self.binary {
            None => cargo_command(&["semver-checks"]),
            Some(binary) => {
                let mut command = Command::new(binary);
                crate::util::without_package_env(&mut command);
                command.arg("semver-checks");
                command
            }
        }
    }
}

/// The tool: the one on the PATH when it is that release, else the one in `ci-tools`,
/// installed there first when missing.
fn semver_checks() -> Result<Tool> {
    if reports_version(&mut cargo_command(&["semver-checks", "--version"])) {
        return Ok(Tool { binary: None });
    }
    let binary = installed_binary()?;
    if !binary.exists() {
        install(Priority::Normal)?;
    }
    if !reports_version(Command::new(&binary).arg("--version")) {
        bail!(
            "{} is not cargo-semver-checks {SEMVER_CHECKS_VERSION}; remove it to reinstall",
            binary.display()
        );
    }
    Ok(Tool {
        binary: Some(binary),
    })
}

fn installed_binary() -> Result<PathBuf> {
    Ok(tools_dir()?
        .join("cargo-semver-checks")
        .join("bin")
        .join("cargo-semver-checks"))
}

/// Installs the tool unless it is there, at the lowest CPU priority, its output in a log
/// file (printed if it fails): for `cargo xtask ci` to start beside its first steps.
pub fn prepare_in_background() -> Result<()> {
    if reports_version(&mut cargo_command(&["semver-checks", "--version"]))
        || installed_binary()?.exists()
    {
        return Ok(());
    }
    install(Priority::Background)
}

/// How an install shares the machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Priority {
    Normal,
    Background,
}

/// Whether `command` (a `--version` call) answers with [`SEMVER_CHECKS_VERSION`].
fn reports_version(command: &mut Command) -> bool {
    command.stderr(Stdio::null()).output().is_ok_and(|out| {
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(SEMVER_CHECKS_VERSION)
    })
}

/// Compiles the pinned release into `ci-tools` (`bin/cargo-semver-checks`). Its build uses a
/// target directory of its own, which cargo removes afterwards: the workspace's stays as it
/// was.
fn install(priority: Priority) -> Result<()> {
    let root = tools_dir()?.join("cargo-semver-checks");
    let mut install = match priority {
        Priority::Normal => {
            println!(
                "    compiling cargo-semver-checks {SEMVER_CHECKS_VERSION} into {} (minutes, \
                 once per target directory)",
                root.display()
            );
            cargo_command(&[])
        }
        Priority::Background => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut nice = Command::new("nice");
            nice.args(["-n", "19", &cargo]);
            crate::util::without_package_env(&mut nice);
            nice
        }
    };
    install
        .args([
            "install",
            "cargo-semver-checks",
            "--locked",
            "--quiet",
            "--version",
            SEMVER_CHECKS_VERSION,
            "--root",
        ])
        .arg(&root)
        .env_remove("CARGO_TARGET_DIR");
    if priority == Priority::Normal {
        return run_command(&mut install);
    }
    std::fs::create_dir_all(tools_dir()?)?;
    let log_path = tools_dir()?.join("cargo-semver-checks-install.log");
    let log = std::fs::File::create(&log_path)?;
    install.stdout(log.try_clone()?).stderr(log);
    let status = install.status().context("running cargo install")?;
    if !status.success() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        bail!("installing cargo-semver-checks failed ({status}):\n{log}");
    }
    Ok(())
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
        assert_eq!(config.compared(&members), ["account-spine", "account-api"]);
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
