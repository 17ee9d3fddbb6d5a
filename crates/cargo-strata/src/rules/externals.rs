//! `forbidden-external`: a crate must not reach the external crates its layer forbids,
//! directly or through other external crates.
//!
//! The search is breadth-first over the resolved graph's normal (linked) edges, so the chain
//! it prints is a shortest one. It does not go through:
//! - workspace members: a lower layer may own a crate this layer forbids (the drivers own
//!   sea-orm so the engines need not), and each member is checked against its own layer;
//! - the forbidden crate's `external_parents`: sanctioned owners (sqlx only through sea-orm).
//!   A layer that must not reach an owner either lists the owner in its own
//!   `forbidden_external`;
//! - procedural macros: their dependencies run in the compiler, not in the program. A
//!   macro that uses `syn` links `syn` into the compiler process only; nothing of it reaches
//!   the user's binary. What the macro emits can name only crates the user itself resolves
//!   (its own dependencies, or a runtime crate the macro's docs tell it to depend on), so
//!   every crate the emitted code links is already an edge of the user's and checked here.
//!   The emitted code itself is text in the macro's source: the source rules
//!   (`source-rule`) follow it into workspace proc-macro crates instead.
//!
//! Dev and build dependencies are not followed: tests may use a runtime, a build script may
//! use anything.

use super::Rule;
use crate::Workspace;
use crate::metadata::EdgeKind;
use crate::report::{Report, Violation};
use std::collections::{HashMap, VecDeque};

/// Checks every layer's forbidden list, reporting one shortest chain per forbidden crate.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    let edges = ws.graph.normal_edges();
    for (name, package) in &ws.graph.members {
        let Some(layer) = ws.table.layer_of(name) else {
            continue;
        };
        if layer.forbidden_external.is_empty() {
            continue;
        }
        report.checked(Rule::ForbiddenExternal, name);
        for forbidden in &layer.forbidden_external {
            let owners = ws
                .table
                .external_parents
                .get(forbidden)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let Some(chain) = shortest_chain(ws, &edges, &package.id, forbidden, owners) else {
                continue;
            };
            let first_hop = chain.get(1).cloned().unwrap_or_default();
            let declaration = package
                .dependencies
                .iter()
                .find(|d| d.name == first_hop && d.kind == EdgeKind::Normal);
            let key = declaration.map_or(first_hop.as_str(), |d| {
                d.rename.as_deref().unwrap_or(&d.name)
            });
            let mut shown = chain.clone();
            // A renamed dependency hides the crate's name in code: show both.
            if let (Some(rename), Some(hop)) = (
                declaration.and_then(|d| d.rename.as_deref()),
                shown.get_mut(1),
            ) {
                *hop = format!("{first_hop} (renamed `{rename}`)");
            }
            let file = ws.relative(&package.manifest_path);
            let line = ws
                .manifests
                .dependency_line(&package.manifest_path, key, EdgeKind::Normal);
            report.push(
                Violation::new(
                    Rule::ForbiddenExternal,
                    name,
                    forbidden,
                    (&file, line),
                    format!(
                        "layer `{}` must not {} `{forbidden}`: {}",
                        layer.name,
                        if chain.len() == 2 {
                            "depend on"
                        } else {
                            "reach"
                        },
                        shown.join(" -> ")
                    ),
                )
                .with_chain(chain),
            );
        }
    }
}

/// The package names on a shortest path from `start` to a package named `forbidden`.
fn shortest_chain(
    ws: &Workspace<'_>,
    edges: &HashMap<&str, Vec<&str>>,
    start: &str,
    forbidden: &str,
    owners: &[String],
) -> Option<Vec<String>> {
    let name_of = |id: &str| {
        ws.graph
            .package(id)
            .map_or_else(|| id.to_owned(), |p| p.name.clone())
    };
    let passable = |id: &str| {
        ws.graph.package(id).is_some_and(|p| {
            !ws.graph.is_member(&p.name) && !p.is_proc_macro() && !owners.contains(&p.name)
        })
    };
    let mut came_from: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        if current != start && !passable(current) {
            continue;
        }
        for &next in edges.get(current).map(Vec::as_slice).unwrap_or_default() {
            if next == start || came_from.contains_key(next) {
                continue;
            }
            came_from.insert(next, current);
            if name_of(next) == forbidden {
                let mut chain = vec![name_of(next)];
                let mut at = next;
                while let Some(&previous) = came_from.get(at) {
                    chain.push(name_of(previous));
                    at = previous;
                }
                chain.reverse();
                return Some(chain);
            }
            queue.push_back(next);
        }
    }
    None
}
