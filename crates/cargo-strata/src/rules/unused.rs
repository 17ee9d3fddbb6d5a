//! `unused-dependency`: a declared dependency that the code never names. Unused edges hide
//! the real shape of the graph and slow every build; a normal dependency that only tests
//! name belongs in `[dev-dependencies]`, where it cannot leak into the product.
//!
//! "Names" means the dependency's identifier (its rename, else its library name) occurs as
//! an identifier token in code, not in comments or strings: `serde::`, `use serde`,
//! `#[serde(…)]`, `extern crate serde` all count. A dependency needed only for its features
//! or its linking side effects is what exceptions are for.

use super::Rule;
use crate::Workspace;
use crate::metadata::EdgeKind;
use crate::report::{Report, Violation};

/// Checks every member's declared dependencies against the identifiers in its code.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    for (name, package) in &ws.graph.members {
        let Some(sources) = ws.sources.get(name) else {
            continue;
        };
        report.checked(Rule::UnusedDependency, name);
        let names = sources.identifiers();
        for dependency in &package.dependencies {
            let kind = dependency.kind;
            let ident = ws.graph.code_name(dependency);
            let in_product = names.product.contains(ident.as_str());
            let in_tests = names.test.contains(ident.as_str());
            let problem = match kind {
                EdgeKind::Normal if in_product => continue,
                EdgeKind::Normal if in_tests => format!(
                    "only tests name `{ident}`; move `{}` to [dev-dependencies]",
                    dependency.name
                ),
                EdgeKind::Dev if in_product || in_tests => continue,
                EdgeKind::Build if names.build.contains(ident.as_str()) => continue,
                _ => format!("no code names `{ident}`; remove it"),
            };
            let key = dependency.rename.as_deref().unwrap_or(&dependency.name);
            report.push(Violation {
                chain: Vec::new(),
                file: ws.relative(&package.manifest_path),
                line: ws
                    .manifests
                    .dependency_line(&package.manifest_path, key, kind),
                rule: Rule::UnusedDependency,
                krate: (*name).to_owned(),
                target: dependency.name.clone(),
                message: format!(
                    "{name} declares {} `{}` but {problem}",
                    kind.label(),
                    dependency.name
                ),
            });
        }
    }
}
