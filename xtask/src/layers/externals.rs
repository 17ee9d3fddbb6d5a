//! `forbidden-external`: a layer must not reach the external crates its table entry forbids,
//! directly or through other external crates.
//!
//! The search follows normal (linked) edges and stops at workspace members: a lower workspace
//! crate may own a crate this layer forbids (drivers own sea-orm for the engines), and is
//! checked against its own layer. An external crate listed in `external_parents` for the
//! forbidden crate is a sanctioned owner and is not followed either.

use super::Context;
use super::metadata::EdgeKind;
use super::report::Violation;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Checks every layer's forbidden list by breadth-first search, reporting the shortest chain.
pub(super) fn check(cx: &mut Context<'_>) {
    let Some(resolve) = &cx.metadata.resolve else {
        return;
    };
    let edges: BTreeMap<&str, Vec<&str>> = resolve
        .nodes
        .iter()
        .map(|node| {
            let normal = node
                .deps
                .iter()
                .filter(|d| d.dep_kinds.iter().any(|k| k.kind.is_none()))
                .map(|d| d.pkg.as_str())
                .collect();
            (node.id.as_str(), normal)
        })
        .collect();
    let members = cx.metadata.members();
    let member_ids: BTreeSet<&str> = members.values().map(|p| p.id.as_str()).collect();
    for (name, package) in &members {
        let Some(layer) = cx.table.layer_of(name) else {
            continue;
        };
        if layer.forbidden_external.is_empty() {
            continue;
        }
        cx.report.checked("forbidden-external", name);
        for forbidden in &layer.forbidden_external {
            let parents = cx
                .table
                .external_parents
                .get(forbidden)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let Some(chain) =
                shortest_chain(cx, &edges, &member_ids, &package.id, forbidden, parents)
            else {
                continue;
            };
            let direct = chain.len() == 2;
            let first_hop = chain.get(1).cloned().unwrap_or_default();
            cx.report.push(Violation {
                file: cx.metadata.relative(&package.manifest_path),
                line: package.dependency_line(&first_hop, EdgeKind::Normal),
                rule: "forbidden-external",
                krate: (*name).to_owned(),
                target: forbidden.clone(),
                message: format!(
                    "layer `{}` must not {} `{forbidden}`: {}",
                    layer.name,
                    if direct { "depend on" } else { "reach" },
                    chain.join(" -> ")
                ),
            });
        }
    }
}

/// The shortest chain of package names from `start` to a package named `forbidden`.
fn shortest_chain(
    cx: &Context<'_>,
    edges: &BTreeMap<&str, Vec<&str>>,
    members: &BTreeSet<&str>,
    start: &str,
    forbidden: &str,
    parents: &[String],
) -> Option<Vec<String>> {
    let name_of = |id: &str| cx.metadata.package(id).map(|p| p.name.clone());
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        let current_name = name_of(current)?;
        let expandable =
            current == start || (!members.contains(current) && !parents.contains(&current_name));
        if !expandable {
            continue;
        }
        for &next in edges.get(current).map(Vec::as_slice).unwrap_or_default() {
            if next == start || came_from.contains_key(next) {
                continue;
            }
            came_from.insert(next, current);
            if name_of(next).as_deref() == Some(forbidden) {
                let mut chain = vec![next];
                let mut at = next;
                while let Some(&previous) = came_from.get(at) {
                    chain.push(previous);
                    at = previous;
                    if at == start {
                        break;
                    }
                }
                chain.reverse();
                return chain.into_iter().map(name_of).collect();
            }
            queue.push_back(next);
        }
    }
    None
}
