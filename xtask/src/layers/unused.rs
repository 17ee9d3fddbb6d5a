//! `unused-dependency`: a declared dependency whose crate name never appears in the sources
//! that could use it. Unused edges hide the real shape of the graph and slow every build.

use super::Context;
use super::metadata::{EdgeKind, Package};
use super::report::Violation;
use super::sources::rust_files;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Checks every member's declared dependencies against the identifiers in its sources.
pub(super) fn check(cx: &mut Context<'_>) {
    for (name, package) in cx.metadata.members() {
        cx.report.checked("unused-dependency", name);
        let library = identifiers(&source_dirs(package, EdgeKind::Normal));
        let dev = identifiers(&source_dirs(package, EdgeKind::Dev));
        let build = identifiers(&source_dirs(package, EdgeKind::Build));
        for dependency in &package.dependencies {
            let kind = EdgeKind::from_cargo(dependency.kind.as_deref());
            let ident = dependency
                .rename
                .clone()
                .unwrap_or_else(|| dependency.name.clone())
                .replace('-', "_");
            let used = match kind {
                EdgeKind::Normal => library.contains(&ident) || dev.contains(&ident),
                EdgeKind::Dev => dev.contains(&ident) || library.contains(&ident),
                EdgeKind::Build => build.contains(&ident),
            };
            if !used {
                cx.report.push(Violation {
                    file: cx.metadata.relative(&package.manifest_path),
                    line: package.dependency_line(&dependency.name, kind),
                    rule: "unused-dependency",
                    krate: name.to_owned(),
                    target: dependency.name.clone(),
                    message: format!(
                        "{name} declares {} `{}` but never names `{ident}`; remove it",
                        kind.label(),
                        dependency.name
                    ),
                });
            }
        }
    }
}

/// Where a dependency of this kind may be used.
fn source_dirs(package: &Package, kind: EdgeKind) -> Vec<PathBuf> {
    let dir = package.dir();
    match kind {
        EdgeKind::Normal => vec![dir.join("src")],
        EdgeKind::Dev => ["tests", "benches", "examples"]
            .iter()
            .map(|d| dir.join(d))
            .collect(),
        EdgeKind::Build => vec![dir.join("build.rs")],
    }
}

/// Every identifier-like word in the Rust files under `paths`.
fn identifiers(paths: &[PathBuf]) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for path in paths {
        for file in rust_files(path) {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            words.extend(
                text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    words
}
