//! `undeclared-crate` and `layer-edge`: every member sits in a layer, and every dependency
//! between members is one the table allows.
//!
//! The policy, in the order it is applied to an edge `from -> to`:
//! 1. nothing enters or leaves an isolated layer;
//! 2. a dev-only layer is reachable from `[dev-dependencies]` only, by any layer;
//! 3. crates of one layer are independent unless the layer sets `siblings_may_depend`;
//! 4. a layer may use what its `also_uses` lists;
//! 5. a side layer uses nothing else and is used by nothing else;
//! 6. on the stack, an edge goes down (to a higher `L` number) and never past a closed layer
//!    that has crates (an empty level, like the L3 this workspace does not have, is no
//!    obstacle).
//!
//! Dev and build dependencies follow the same policy as normal ones: a test that needs a
//! higher layer belongs in that layer.

use super::Rule;
use crate::Workspace;
use crate::metadata::EdgeKind;
use crate::report::{Report, Violation};
use crate::table::{Layer, LayerTable};

/// Checks layer assignment and every workspace-to-workspace edge.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    for (name, package) in &ws.graph.members {
        report.checked(Rule::UndeclaredCrate, name);
        let Some(from) = ws.table.layer_of(name) else {
            report.push(Violation {
                chain: Vec::new(),
                file: ws.relative(&package.manifest_path),
                line: ws.manifests.package_name_line(&package.manifest_path),
                rule: Rule::UndeclaredCrate,
                krate: (*name).to_owned(),
                target: (*name).to_owned(),
                message: format!(
                    "crate `{name}` is in no layer; add it to a layer's crates in [workspace.metadata.layers]"
                ),
            });
            continue;
        };
        report.checked(Rule::LayerEdge, name);
        for dependency in &package.dependencies {
            if !ws.graph.is_member(&dependency.name) || dependency.name == *name {
                continue;
            }
            let Some(to) = ws.table.layer_of(&dependency.name) else {
                continue; // reported as undeclared on the dependency itself
            };
            let kind = dependency.kind;
            let Some(why) = refusal(ws.table, from, to, kind) else {
                continue;
            };
            let key = dependency.rename.as_deref().unwrap_or(&dependency.name);
            // A rename or a platform section changes how the edge reads in the manifest, not
            // what it is; say both, so the line found is the line meant.
            let mut declared = String::new();
            if let Some(rename) = &dependency.rename {
                declared.push_str(&format!(" renamed `{rename}`"));
            }
            if let Some(platform) = &dependency.platform {
                declared.push_str(&format!(" for `{platform}`"));
            }
            let file = ws.relative(&package.manifest_path);
            let line = ws
                .manifests
                .dependency_line(&package.manifest_path, key, kind);
            report.push(
                Violation::new(
                    Rule::LayerEdge,
                    name,
                    &dependency.name,
                    (&file, line),
                    format!(
                        "{name} ({}) -> {} ({}) as a {}{declared}: {why}",
                        from.describe(),
                        dependency.name,
                        to.describe(),
                        kind.label()
                    ),
                )
                .with_chain(vec![format!("{file}:{line}"), dependency.name.clone()]),
            );
        }
    }
}

/// Why the table refuses the edge `from -> to` of this kind, or `None` when it allows it.
pub(crate) fn refusal(
    table: &LayerTable,
    from: &Layer,
    to: &Layer,
    kind: EdgeKind,
) -> Option<String> {
    if from.isolated {
        return Some(format!(
            "layer `{}` is isolated and may not depend on workspace crates",
            from.name
        ));
    }
    if to.isolated {
        return Some(format!(
            "layer `{}` is isolated; nothing may depend on it",
            to.name
        ));
    }
    if to.dev_only {
        return (kind != EdgeKind::Dev).then(|| {
            format!(
                "layer `{}` is dev-only: use it from [dev-dependencies] only",
                to.name
            )
        });
    }
    if from.name == to.name {
        return (!from.siblings_may_depend).then(|| {
            format!(
                "crates of layer `{}` are independent (set siblings_may_depend to allow this)",
                from.name
            )
        });
    }
    if from.also_uses.contains(&to.name) {
        return None;
    }
    if from.side {
        return Some(format!(
            "`{}` is a side layer: it may use only the layers in its also_uses",
            from.name
        ));
    }
    if to.side {
        return Some(format!(
            "`{}` is a side layer: only layers listing it in also_uses may use it",
            to.name
        ));
    }
    let (Some(from_rank), Some(to_rank)) = (from.rank(), to.rank()) else {
        return Some("a layer level is not `L<number>` (see invalid-table)".to_owned());
    };
    if to_rank < from_rank {
        return Some(format!(
            "climbs the stack: {} may not depend on {} above it",
            from.level, to.level
        ));
    }
    let skipped: Vec<String> = table
        .layers
        .iter()
        .filter(|l| l.closed && !l.side && !l.crates.is_empty())
        .filter(|l| l.rank().is_some_and(|r| r > from_rank && r < to_rank))
        .map(|l| format!("`{}`", l.describe()))
        .collect();
    if !skipped.is_empty() {
        return Some(format!(
            "skips closed layer {}; go through it",
            skipped.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, level: &str) -> Layer {
        Layer {
            name: name.to_owned(),
            level: level.to_owned(),
            crates: vec![format!("x-{name}")],
            closed: true,
            side: false,
            dev_only: false,
            isolated: false,
            siblings_may_depend: false,
            also_uses: Vec::new(),
            forbidden_external: Vec::new(),
            reexports: Vec::new(),
            source_rules: Vec::new(),
        }
    }

    fn table() -> LayerTable {
        let mut kit = layer("kit", "dev");
        kit.side = true;
        kit.dev_only = true;
        let mut migrations = layer("migrations", "L7");
        migrations.side = true;
        let mut spine = layer("spine", "L4");
        spine.also_uses = vec!["migrations".to_owned()];
        let mut empty = layer("empty", "L3");
        empty.crates.clear();
        LayerTable {
            layers: vec![
                layer("api", "L2"),
                empty,
                spine,
                layer("engines", "L5"),
                layer("drivers", "L6"),
                migrations,
                kit,
            ],
            ..LayerTable::default()
        }
    }

    fn allowed(from: &str, to: &str, kind: EdgeKind) -> bool {
        let table = table();
        let (Some(from), Some(to)) = (table.layer(from), table.layer(to)) else {
            panic!("unknown layer");
        };
        refusal(&table, from, to, kind).is_none()
    }

    #[test]
    fn the_stack_goes_down_one_closed_layer_at_a_time() {
        assert!(allowed("api", "spine", EdgeKind::Normal)); // across the empty L3
        assert!(allowed("spine", "engines", EdgeKind::Normal));
        assert!(allowed("engines", "drivers", EdgeKind::Build));
        assert!(!allowed("spine", "drivers", EdgeKind::Normal));
        assert!(!allowed("spine", "drivers", EdgeKind::Dev));
        assert!(!allowed("drivers", "engines", EdgeKind::Normal));
        assert!(!allowed("drivers", "drivers", EdgeKind::Normal));
    }

    #[test]
    fn side_and_dev_only_layers() {
        assert!(allowed("spine", "migrations", EdgeKind::Normal));
        assert!(!allowed("api", "migrations", EdgeKind::Normal));
        assert!(!allowed("migrations", "drivers", EdgeKind::Normal));
        assert!(allowed("drivers", "kit", EdgeKind::Dev));
        assert!(allowed("migrations", "kit", EdgeKind::Dev));
        assert!(!allowed("drivers", "kit", EdgeKind::Normal));
        assert!(!allowed("drivers", "kit", EdgeKind::Build));
    }
}
