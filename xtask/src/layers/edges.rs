//! `undeclared-crate` and `layer-edge`: every member sits in a layer, and every dependency
//! between members points down the stack without skipping a closed layer.

use super::Context;
use super::metadata::EdgeKind;
use super::report::Violation;
use super::table::Layer;

/// Checks layer assignment and every workspace-to-workspace edge.
pub(super) fn check(cx: &mut Context<'_>) {
    let members = cx.metadata.members();
    for (name, package) in &members {
        let manifest = cx.metadata.relative(&package.manifest_path);
        cx.report.checked("undeclared-crate", name);
        let Some(from) = cx.table.layer_of(name) else {
            cx.report.push(Violation {
                file: manifest,
                line: 1,
                rule: "undeclared-crate",
                krate: (*name).to_owned(),
                target: (*name).to_owned(),
                message: format!(
                    "crate `{name}` is in no layer; add it to [workspace.metadata.layers]"
                ),
            });
            continue;
        };
        cx.report.checked("layer-edge", name);
        for dependency in &package.dependencies {
            if !members.contains_key(dependency.name.as_str()) {
                continue;
            }
            let kind = EdgeKind::from_cargo(dependency.kind.as_deref());
            let Some(to) = cx.table.layer_of(&dependency.name) else {
                continue; // reported as undeclared on the dependency itself
            };
            if let Some(why) = refusal(cx.table_layers(), from, to, kind) {
                cx.report.push(Violation {
                    file: manifest.clone(),
                    line: package.dependency_line(&dependency.name, kind),
                    rule: "layer-edge",
                    krate: (*name).to_owned(),
                    target: dependency.name.clone(),
                    message: format!(
                        "{name} ({}) -> {} ({}) as a {}: {why}",
                        describe(from),
                        dependency.name,
                        describe(to),
                        kind.label()
                    ),
                });
            }
        }
    }
}

fn describe(layer: &Layer) -> String {
    format!("{} {}", layer.level, layer.name)
}

/// Why the edge `from -> to` of this kind is not allowed, or `None` when it is.
pub(super) fn refusal(
    layers: &[Layer],
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
        return None;
    }
    if from.also_uses.contains(&to.name) {
        return None;
    }
    if from.side {
        return Some(format!(
            "`{}` is a side layer; it may use only the layers in its also_uses",
            from.name
        ));
    }
    if to.side {
        return Some(format!(
            "`{}` is a side layer; only layers listing it in also_uses may use it",
            to.name
        ));
    }
    let (Some(from_rank), Some(to_rank)) = (from.rank(), to.rank()) else {
        return Some(format!(
            "layer `{}` is off the stack and may only use the layers in its also_uses",
            from.name
        ));
    };
    if to_rank < from_rank {
        return Some(format!(
            "climbs the stack: {} may not depend on {} above it",
            from.level, to.level
        ));
    }
    let skipped: Vec<&str> = layers
        .iter()
        .filter(|l| l.closed && !l.side)
        .filter(|l| l.rank().is_some_and(|r| r > from_rank && r < to_rank))
        .map(|l| l.name.as_str())
        .collect();
    if !skipped.is_empty() {
        return Some(format!(
            "skips closed layer `{}`; go through it",
            skipped.join("`, `")
        ));
    }
    None
}
