//! The slice of `cargo metadata` the linter reads: packages, their declared dependencies and
//! targets, workspace membership and the resolved dependency graph.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `cargo metadata --format-version 1` output, reduced to what the rules need.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    /// Every package in the graph: members, path packages and registry crates.
    pub packages: Vec<Package>,
    /// Package ids of the workspace members.
    pub workspace_members: Vec<String>,
    /// The resolved graph (absent with `--no-deps`).
    pub resolve: Option<Resolve>,
    /// The workspace root directory.
    pub workspace_root: PathBuf,
    /// `[workspace.metadata]` of the root manifest.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// One package.
#[derive(Debug, Deserialize)]
pub struct Package {
    /// Package name, e.g. `account-drivers`.
    pub name: String,
    /// Package id, unique in the graph.
    pub id: String,
    /// Path of its `Cargo.toml`.
    pub manifest_path: PathBuf,
    /// Declared dependencies, one entry per declaration (a crate may be both normal and dev).
    pub dependencies: Vec<Dependency>,
    /// Build targets (lib, bin, test, bench, example, custom-build).
    pub targets: Vec<Target>,
}

/// One declared dependency.
#[derive(Debug, Deserialize)]
pub struct Dependency {
    /// The depended-on package's name.
    pub name: String,
    /// `None` for normal, `dev` or `build`.
    pub kind: Option<String>,
    /// The name it is imported under, if renamed.
    pub rename: Option<String>,
}

/// One build target of a package.
#[derive(Debug, Deserialize)]
pub struct Target {
    /// Kinds, e.g. `["lib"]`, `["bin"]`, `["test"]`.
    pub kind: Vec<String>,
    /// Root source file.
    pub src_path: PathBuf,
}

/// The resolved graph.
#[derive(Debug, Deserialize)]
pub struct Resolve {
    /// One node per package.
    pub nodes: Vec<Node>,
}

/// A package's resolved dependencies.
#[derive(Debug, Deserialize)]
pub struct Node {
    /// Package id.
    pub id: String,
    /// Resolved dependencies.
    pub deps: Vec<NodeDep>,
}

/// One resolved dependency edge.
#[derive(Debug, Deserialize)]
pub struct NodeDep {
    /// Package id of the dependency.
    pub pkg: String,
    /// The kinds the edge exists for.
    pub dep_kinds: Vec<DepKind>,
}

/// The kind of a resolved edge.
#[derive(Debug, Deserialize)]
pub struct DepKind {
    /// `None` for normal, `dev` or `build`.
    pub kind: Option<String>,
}

/// Which section a dependency is declared in; reported separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// `[dependencies]`
    Normal,
    /// `[dev-dependencies]`
    Dev,
    /// `[build-dependencies]`
    Build,
}

impl EdgeKind {
    /// Parses cargo's `kind` field.
    pub fn from_cargo(kind: Option<&str>) -> Self {
        match kind {
            Some("dev") => EdgeKind::Dev,
            Some("build") => EdgeKind::Build,
            _ => EdgeKind::Normal,
        }
    }

    /// How the report names the edge.
    pub fn label(self) -> &'static str {
        match self {
            EdgeKind::Normal => "dependency",
            EdgeKind::Dev => "dev-dependency",
            EdgeKind::Build => "build-dependency",
        }
    }

    fn section_suffix(self) -> &'static str {
        match self {
            EdgeKind::Normal => "dependencies",
            EdgeKind::Dev => "dev-dependencies",
            EdgeKind::Build => "build-dependencies",
        }
    }
}

impl Metadata {
    /// Runs `cargo metadata` offline on the workspace of `manifest_path` (or the current one).
    pub fn load(manifest_path: Option<&Path>) -> Result<Self> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["metadata", "--format-version", "1", "--offline"]);
        if let Some(path) = manifest_path {
            command.arg("--manifest-path").arg(path);
        }
        let output = command.output().context("running cargo metadata")?;
        if !output.status.success() {
            bail!(
                "cargo metadata failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata output")
    }

    /// The workspace members, by name.
    pub fn members(&self) -> BTreeMap<&str, &Package> {
        self.packages
            .iter()
            .filter(|p| self.workspace_members.contains(&p.id))
            .map(|p| (p.name.as_str(), p))
            .collect()
    }

    /// The package with this id.
    pub fn package(&self, id: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.id == id)
    }

    /// A path relative to the workspace root, with `/` separators, for the report.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.workspace_root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/")
    }
}

impl Package {
    /// The directory holding the package's `Cargo.toml`.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }

    /// The crate root that carries the layer header: the lib target, else the first bin.
    pub fn root_source(&self) -> Option<&Path> {
        let by_kind = |kind: &str| {
            self.targets
                .iter()
                .find(|t| t.kind.iter().any(|k| k == kind))
                .map(|t| t.src_path.as_path())
        };
        by_kind("lib")
            .or_else(|| by_kind("proc-macro"))
            .or_else(|| by_kind("bin"))
    }

    /// The 1-based line declaring `dependency` in the section for `kind`, or 1 if not found
    /// (e.g. inherited through a shape this scanner does not know).
    pub fn dependency_line(&self, dependency: &str, kind: EdgeKind) -> usize {
        std::fs::read_to_string(&self.manifest_path)
            .map(|text| find_dependency_line(&text, dependency, kind))
            .unwrap_or(1)
    }
}

/// Finds `name = ...` / `name.workspace = true` under a `[..dependencies]` header of the right
/// kind (including `[target.'cfg(..)'.dependencies]`), or a `[dependencies.name]` table.
fn find_dependency_line(manifest: &str, dependency: &str, kind: EdgeKind) -> usize {
    let suffix = kind.section_suffix();
    let mut in_section = false;
    for (index, raw) in manifest.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            if header == format!("{suffix}.{dependency}")
                || header.ends_with(&format!(".{suffix}.{dependency}"))
            {
                return index + 1;
            }
            in_section = header.rsplit('.').next() == Some(suffix);
            continue;
        }
        if in_section {
            let key = line
                .split(|c: char| c == '=' || c == '.' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .trim_matches('"');
            if key == dependency {
                return index + 1;
            }
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[package]
name = "a"

[dependencies]
serde.workspace = true
"b" = { path = "../b" }

[dev-dependencies]
serde = "1"

[build-dependencies.cc]
version = "1"

[target.'cfg(unix)'.dependencies]
libc = "0.2"
"#;

    #[test]
    fn finds_the_declaring_line_by_kind() {
        assert_eq!(find_dependency_line(MANIFEST, "serde", EdgeKind::Normal), 5);
        assert_eq!(find_dependency_line(MANIFEST, "b", EdgeKind::Normal), 6);
        assert_eq!(find_dependency_line(MANIFEST, "serde", EdgeKind::Dev), 9);
        assert_eq!(find_dependency_line(MANIFEST, "cc", EdgeKind::Build), 11);
        assert_eq!(find_dependency_line(MANIFEST, "libc", EdgeKind::Normal), 15);
        assert_eq!(
            find_dependency_line(MANIFEST, "missing", EdgeKind::Normal),
            1
        );
    }
}
