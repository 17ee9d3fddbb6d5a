//! The slice of `cargo metadata` the linter reads: packages, their declared dependencies and
//! targets, workspace membership and the resolved dependency graph. `cargo_metadata` runs and
//! parses the command; this module keeps what the rules need, in the shape they read it.

use crate::Error;
use cargo_metadata::{DependencyKind, MetadataCommand, TargetKind};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// `cargo metadata --format-version 1` output, reduced to what the rules need.
#[derive(Debug)]
pub(crate) struct Metadata {
    /// Every package in the graph: members, path packages and registry crates.
    pub(crate) packages: Vec<Package>,
    /// Package ids of the workspace members.
    pub(crate) workspace_members: Vec<String>,
    /// The resolved graph (absent when cargo could not resolve it).
    pub(crate) resolve: Option<Resolve>,
    /// The workspace root directory.
    pub(crate) workspace_root: PathBuf,
    /// `[workspace.metadata]` of the root manifest.
    pub(crate) metadata: Option<serde_json::Value>,
    /// Why cargo could not resolve the graph, when it could not (a dependency cycle): the
    /// metadata then holds the declared dependencies only, and `resolve` is absent.
    pub(crate) unresolved: Option<String>,
}

/// One package.
#[derive(Debug)]
pub(crate) struct Package {
    /// Package name, e.g. `account-drivers`.
    pub(crate) name: String,
    /// Package id, unique in the graph.
    pub(crate) id: String,
    /// Path of its `Cargo.toml`.
    pub(crate) manifest_path: PathBuf,
    /// Declared dependencies, one entry per declaration (a crate may be both normal and dev).
    pub(crate) dependencies: Vec<Dependency>,
    /// Build targets (lib, bin, test, bench, example, custom-build).
    pub(crate) targets: Vec<Target>,
}

/// One declared dependency.
#[derive(Debug)]
pub(crate) struct Dependency {
    /// The depended-on package's name.
    pub(crate) name: String,
    /// Which section declares it.
    pub(crate) kind: EdgeKind,
    /// The key it is declared under, when that differs from the package name
    /// (`db = { package = "sea-orm" }`).
    pub(crate) rename: Option<String>,
    /// The platform a `[target.'cfg(…)'.dependencies]` section limits it to.
    pub(crate) platform: Option<String>,
}

/// One build target of a package.
#[derive(Debug)]
pub(crate) struct Target {
    /// Kinds, e.g. `["lib"]`, `["bin"]`, `["test"]`, `["custom-build"]`.
    pub(crate) kind: Vec<String>,
    /// Crate name of the target (`-` already replaced by `_` for libs).
    pub(crate) name: String,
    /// Root source file.
    pub(crate) src_path: PathBuf,
}

/// The resolved graph.
#[derive(Debug)]
pub(crate) struct Resolve {
    /// One node per package.
    pub(crate) nodes: Vec<Node>,
}

/// A package's resolved dependencies.
#[derive(Debug)]
pub(crate) struct Node {
    /// Package id.
    pub(crate) id: String,
    /// Resolved dependencies.
    pub(crate) deps: Vec<NodeDep>,
}

/// One resolved dependency edge.
#[derive(Debug)]
pub(crate) struct NodeDep {
    /// Package id of the dependency.
    pub(crate) pkg: String,
    /// Whether the edge exists for normal (linked) code; dev and build edges are not.
    pub(crate) normal: bool,
}

impl From<cargo_metadata::Package> for Package {
    fn from(package: cargo_metadata::Package) -> Self {
        Package {
            name: package.name.to_string(),
            id: package.id.repr,
            manifest_path: package.manifest_path.into_std_path_buf(),
            dependencies: package
                .dependencies
                .into_iter()
                .map(|d| Dependency {
                    name: d.name,
                    kind: EdgeKind::from_cargo(d.kind),
                    rename: d.rename,
                    platform: d.target.map(|p| p.to_string()),
                })
                .collect(),
            targets: package
                .targets
                .into_iter()
                .map(|t| Target {
                    kind: t.kind.iter().map(target_kind).collect(),
                    name: t.name,
                    src_path: t.src_path.into_std_path_buf(),
                })
                .collect(),
        }
    }
}

/// Cargo's own word for a target kind (`lib`, `proc-macro`, `custom-build`, …).
fn target_kind(kind: &TargetKind) -> String {
    match kind {
        TargetKind::Lib => "lib".into(),
        TargetKind::Bin => "bin".into(),
        TargetKind::Test => "test".into(),
        TargetKind::Bench => "bench".into(),
        TargetKind::Example => "example".into(),
        TargetKind::CustomBuild => "custom-build".into(),
        TargetKind::ProcMacro => "proc-macro".into(),
        other => other.to_string(),
    }
}

/// Which section a dependency is declared in; the rules report each kind separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EdgeKind {
    /// `[dependencies]`
    Normal,
    /// `[dev-dependencies]`
    Dev,
    /// `[build-dependencies]`
    Build,
}

impl EdgeKind {
    /// Cargo's kind of a declared or resolved dependency.
    pub(crate) fn from_cargo(kind: DependencyKind) -> Self {
        match kind {
            DependencyKind::Development => EdgeKind::Dev,
            DependencyKind::Build => EdgeKind::Build,
            _ => EdgeKind::Normal,
        }
    }

    /// How the report names a dependency of this kind.
    pub(crate) fn label(self) -> &'static str {
        match self {
            EdgeKind::Normal => "dependency",
            EdgeKind::Dev => "dev-dependency",
            EdgeKind::Build => "build-dependency",
        }
    }

    /// The last word of the manifest section (`[target.'cfg(unix)'.dev-dependencies]`).
    pub(crate) fn section(self) -> &'static str {
        match self {
            EdgeKind::Normal => "dependencies",
            EdgeKind::Dev => "dev-dependencies",
            EdgeKind::Build => "build-dependencies",
        }
    }
}

impl Metadata {
    /// Runs `cargo metadata --offline` on the workspace of `manifest_path` (a `Cargo.toml`
    /// or the directory holding one).
    ///
    /// A dependency cycle makes cargo refuse to resolve the graph, yet a cycle between layers
    /// is exactly what the linter should explain; so on a cycle it falls back to the declared
    /// dependencies (`--no-deps`) and records why in [`Metadata::unresolved`].
    pub(crate) fn load(manifest_path: &Path) -> Result<Self, Error> {
        let manifest = manifest_file(manifest_path);
        let manifest = manifest.as_path();
        match cargo_metadata(manifest, false) {
            Err(cargo_metadata::Error::CargoMetadata { stderr })
                if stderr.contains("cyclic package dependency") =>
            {
                let mut metadata = cargo_metadata(manifest, true).map_err(Error::metadata)?;
                // cargo may print progress first ("Blocking waiting for file lock ...").
                let summary = stderr
                    .lines()
                    .find(|line| line.contains("cyclic package dependency"))
                    .unwrap_or_default();
                let summary = summary
                    .trim_start_matches("error: ")
                    .trim_end_matches(" Cycle:");
                metadata.unresolved = Some(summary.to_owned());
                Ok(metadata)
            }
            other => other.map_err(Error::metadata),
        }
    }

    /// The workspace members alone, their declared dependencies and targets
    /// (`cargo metadata --no-deps`): no resolved graph, no other package.
    pub(crate) fn load_members(manifest_path: &Path) -> Result<Self, Error> {
        cargo_metadata(&manifest_file(manifest_path), true).map_err(Error::metadata)
    }

    /// A path relative to the workspace root, with `/` separators, for the report.
    pub(crate) fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.workspace_root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/")
    }
}

/// The manifest `path` names: itself, or the `Cargo.toml` in the directory it names.
fn manifest_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("Cargo.toml")
    } else {
        path.to_path_buf()
    }
}

/// Runs `cargo metadata` (cargo's own, from `$CARGO` under cargo) and keeps what the rules
/// read.
fn cargo_metadata(manifest: &Path, no_deps: bool) -> Result<Metadata, cargo_metadata::Error> {
    let mut command = MetadataCommand::new();
    command
        .manifest_path(manifest)
        .other_options(vec!["--offline".to_owned()]);
    if no_deps {
        command.no_deps();
    }
    let metadata = command.exec()?;
    let workspace_metadata =
        (!metadata.workspace_metadata.is_null()).then_some(metadata.workspace_metadata);
    Ok(Metadata {
        workspace_members: metadata
            .workspace_members
            .into_iter()
            .map(|id| id.repr)
            .collect(),
        resolve: metadata.resolve.map(|resolve| Resolve {
            nodes: resolve
                .nodes
                .into_iter()
                .map(|node| Node {
                    id: node.id.repr,
                    deps: node
                        .deps
                        .into_iter()
                        .map(|dep| NodeDep {
                            normal: dep
                                .dep_kinds
                                .iter()
                                .any(|k| k.kind == DependencyKind::Normal),
                            pkg: dep.pkg.repr,
                        })
                        .collect(),
                })
                .collect(),
        }),
        packages: metadata.packages.into_iter().map(Package::from).collect(),
        workspace_root: metadata.workspace_root.into_std_path_buf(),
        metadata: workspace_metadata,
        unresolved: None,
    })
}

/// Lookups over [`Metadata`] that the rules share, built once.
pub(crate) struct Graph<'m> {
    /// The metadata itself.
    pub(crate) metadata: &'m Metadata,
    /// Workspace members by name, in name order.
    pub(crate) members: BTreeMap<&'m str, &'m Package>,
    by_id: HashMap<&'m str, &'m Package>,
    lib_names: HashMap<&'m str, &'m str>,
}

impl<'m> Graph<'m> {
    /// Indexes `metadata`.
    pub(crate) fn new(metadata: &'m Metadata) -> Self {
        let by_id: HashMap<&str, &Package> = metadata
            .packages
            .iter()
            .map(|p| (p.id.as_str(), p))
            .collect();
        let members = metadata
            .workspace_members
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|p| (p.name.as_str(), *p))
            .collect();
        let lib_names = metadata
            .packages
            .iter()
            .filter_map(|p| p.library().map(|lib| (p.name.as_str(), lib.name.as_str())))
            .collect();
        Graph {
            metadata,
            members,
            by_id,
            lib_names,
        }
    }

    /// The package with this id.
    pub(crate) fn package(&self, id: &str) -> Option<&'m Package> {
        self.by_id.get(id).copied()
    }

    /// Whether `name` is a workspace member.
    pub(crate) fn is_member(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// The identifier code uses for `dependency`: its rename, else the library name of the
    /// package (which may differ from the package name), else the name with `-` as `_`.
    pub(crate) fn code_name(&self, dependency: &Dependency) -> String {
        if let Some(rename) = &dependency.rename {
            return rename.replace('-', "_");
        }
        self.lib_names.get(dependency.name.as_str()).map_or_else(
            || dependency.name.replace('-', "_"),
            |lib| (*lib).to_owned(),
        )
    }

    /// Normal-kind (linked) dependencies of each package id, in name order so searches over
    /// them are deterministic.
    pub(crate) fn normal_edges(&self) -> HashMap<&'m str, Vec<&'m str>> {
        let Some(resolve) = &self.metadata.resolve else {
            return HashMap::new();
        };
        resolve
            .nodes
            .iter()
            .map(|node| {
                let mut deps: Vec<&str> = node
                    .deps
                    .iter()
                    .filter(|d| d.normal)
                    .map(|d| d.pkg.as_str())
                    .collect();
                deps.sort_by_key(|id| (self.package(id).map(|p| p.name.as_str()), *id));
                (node.id.as_str(), deps)
            })
            .collect()
    }

    /// Every edge of the resolved graph, whatever its kind, as (parent, child, whether it is
    /// a normal edge).
    pub(crate) fn all_edges(&self) -> impl Iterator<Item = (&'m Package, &'m Package, bool)> + '_ {
        self.metadata
            .resolve
            .iter()
            .flat_map(|r| &r.nodes)
            .filter_map(|node| Some((self.package(&node.id)?, &node.deps)))
            .flat_map(move |(parent, deps)| {
                deps.iter()
                    .filter_map(move |d| Some((parent, self.package(&d.pkg)?, d.normal)))
            })
    }
}

impl Package {
    /// The directory holding the package's `Cargo.toml`.
    pub(crate) fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }

    /// The library (or proc-macro) target, if the package has one.
    pub(crate) fn library(&self) -> Option<&Target> {
        self.targets.iter().find(|t| {
            t.kind
                .iter()
                .any(|k| k == "lib" || k == "proc-macro" || k.ends_with("lib"))
        })
    }

    /// Whether the package is a procedural macro: its own dependencies run in the compiler,
    /// never in the program that uses it.
    pub(crate) fn is_proc_macro(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.kind.iter().any(|k| k == "proc-macro"))
    }

    /// The crate roots that must carry the layer header: the library's, or when there is
    /// none, each binary's. A binary next to a library is that library's shell.
    pub(crate) fn header_roots(&self) -> Vec<&Path> {
        if let Some(lib) = self.library() {
            return vec![lib.src_path.as_path()];
        }
        self.targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
            .map(|t| t.src_path.as_path())
            .collect()
    }
}
