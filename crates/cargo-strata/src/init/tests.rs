//! The drafting on hand-made graphs: where each crate goes, and that the table accepts every
//! edge of the graph it was drafted from (the integration tests prove the same through
//! `check` on real workspaces).

use super::*;
use crate::rules::Rule;
use crate::rules::edges::refusal;
use crate::table::{LayerTable, TableLines};

/// A graph of crates `names` (all libraries but those starting with `bin-`) and edges
/// `(from, to, kind)` by name.
fn graph(names: &[&str], edges: &[(&str, &str, EdgeKind)]) -> Crates {
    let mut names = names.to_vec();
    names.sort_unstable();
    let at = |name: &str| names.iter().position(|n| *n == name).expect("known crate");
    Crates {
        members: names
            .iter()
            .map(|name| Member {
                name: (*name).to_owned(),
                has_lib: !name.starts_with("bin-"),
                root_file: Some(format!("crates/{name}/src/lib.rs")),
            })
            .collect(),
        edges: edges
            .iter()
            .map(|(from, to, kind)| Edge {
                from: at(from),
                to: at(to),
                kind: *kind,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        unresolved: None,
    }
}

/// The rendered table, parsed; asserts it is well-formed and accepts every edge.
fn accepted(crates: &Crates) -> (LayerTable, String) {
    let text = render::table(crates, &Plan::derive(crates));
    let table = toml::from_str::<LayerTable>(&text)
        .map(LayerTable::with_builtins)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let members: BTreeSet<&str> = crates.members.iter().map(|m| m.name.as_str()).collect();
    let problems = table.problems(&members, &TableLines::scan(&text, ""));
    assert!(problems.is_empty(), "{problems:?}\n{text}");
    for member in &members {
        assert!(table.layer_of(member).is_some(), "{member} in no layer");
    }
    for edge in &crates.edges {
        let (Some(from), Some(to)) = (
            table.layer_of(crates.name(edge.from)),
            table.layer_of(crates.name(edge.to)),
        ) else {
            panic!("unplaced edge");
        };
        let refused = refusal(&table, from, to, edge.kind);
        assert!(refused.is_none(), "{edge:?}: {refused:?}\n{text}");
    }
    (table, text)
}

fn layer_of<'t>(table: &'t LayerTable, krate: &str) -> (&'t str, &'t str) {
    let layer = table.layer_of(krate).expect("placed");
    (layer.name.as_str(), layer.level.as_str())
}

#[test]
fn levels_follow_the_longest_path_from_the_top() {
    use EdgeKind::{Build, Dev, Normal};
    let crates = graph(
        &[
            "shop-app",
            "shop-engines",
            "shop-drivers",
            "shop-values",
            "shop-cli",
        ],
        &[
            ("shop-app", "shop-engines", Normal),
            ("shop-app", "shop-values", Normal), // skips two levels
            ("shop-engines", "shop-drivers", Build),
            ("shop-drivers", "shop-values", Normal),
            ("shop-cli", "shop-app", Normal),
            // A test of the drivers that uses the engines (above them) lifts the engines.
            ("shop-values", "shop-engines", Dev),
        ],
    );
    let (table, text) = accepted(&crates);
    // shop-values -> shop-engines (dev) closes a cycle with engines -> drivers -> values.
    assert_eq!(layer_of(&table, "shop-cli"), ("cli", "L1"));
    assert_eq!(layer_of(&table, "shop-app"), ("app", "L2"));
    let (cycle, level) = layer_of(&table, "shop-engines");
    assert_eq!(level, "L3");
    assert_eq!(layer_of(&table, "shop-values"), (cycle, "L3"));
    assert!(table.layer(cycle).expect("layer").siblings_may_depend);
    assert!(!table.layers.iter().any(|l| l.closed), "{text}");
    assert!(
        text.contains("shop-drivers, shop-engines and shop-values depend on each other"),
        "{text}"
    );
    // A dev edge closes it: cargo accepts that.
    assert!(!text.contains("Cargo cannot build"), "{text}");
}

#[test]
fn dev_only_crates_and_lone_binaries_go_to_side_layers() {
    use EdgeKind::{Dev, Normal};
    let crates = graph(
        &[
            "acme-api",
            "acme-core",
            "acme-testkit",
            "bin-report",
            "acme-lone",
        ],
        &[
            ("acme-api", "acme-core", Normal),
            ("acme-api", "acme-testkit", Dev),
            ("acme-core", "acme-testkit", Dev),
            ("acme-testkit", "acme-core", Normal),
        ],
    );
    let (table, text) = accepted(&crates);
    let kit = table.layer_of("acme-testkit").expect("placed");
    assert!(kit.side && kit.dev_only && kit.name == "testkit" && kit.level == "dev");
    assert_eq!(kit.also_uses, ["core"]);
    let tools = table.layer_of("bin-report").expect("placed");
    assert!(tools.side && tools.isolated && tools.name == "bin-report");
    // A library nobody uses yet stays on the stack, at the top.
    assert_eq!(layer_of(&table, "acme-lone").1, "L1");
    assert_eq!(layer_of(&table, "acme-api").1, "L1");
    assert_eq!(
        table.layer_of("acme-api").map(|l| l.name.as_str()),
        Some("level1")
    );
    assert!(
        text.contains("#   acme-core: used by acme-api (L1)\n"),
        "{text}"
    );
    assert!(
        text.contains("#   acme-testkit: dev-dependency of acme-api and acme-core\n"),
        "{text}"
    );
    // Every rule is switched, all on but the header rule.
    for &rule in Rule::ALL {
        assert_eq!(table.enabled(rule), rule != Rule::LayerHeader, "{rule}");
    }
    assert!(text.contains("crates/acme-api/src/lib.rs: `//! Layer: L1 — level1.`"));
}

#[test]
fn the_closed_hint_says_what_closing_would_refuse() {
    use EdgeKind::Normal;
    let crates = graph(
        &["a", "b", "c", "d"],
        &[
            ("a", "b", Normal),
            ("b", "c", Normal),
            ("c", "d", Normal),
            ("a", "c", Normal),
        ],
    );
    let (_, text) = accepted(&crates);
    assert!(
        text.contains(
            "# closed = true (layers above may not skip it; today it would refuse a -> c)\n"
        ),
        "{text}"
    );
    assert!(text.contains("no dependency skips it today"), "{text}");
    // Nothing can skip the top or the bottom layer: no hint there.
    assert_eq!(text.matches("# closed = true").count(), 2, "{text}");
}

#[test]
fn a_cycle_cargo_refuses_shares_one_layer() {
    use EdgeKind::Normal;
    let mut crates = graph(
        &["x-top", "x-left", "x-right"],
        &[
            ("x-top", "x-left", Normal),
            ("x-left", "x-right", Normal),
            ("x-right", "x-left", Normal),
        ],
    );
    crates.unresolved = Some("cyclic package dependency".to_owned());
    let (table, text) = accepted(&crates);
    let (shared, level) = layer_of(&table, "x-left");
    assert_eq!((shared, level), layer_of(&table, "x-right"));
    assert_eq!(level, "L2");
    assert!(text.contains("Cargo cannot build"), "{text}");
    assert!(text.contains("cargo cannot resolve this workspace's dependency graph"));
}

#[test]
fn names_drop_the_workspace_prefix_and_stay_unique() {
    let noise = BTreeSet::from(["acme".to_owned()]);
    assert_eq!(shared_name(&["acme-api"], &noise).as_deref(), Some("api"));
    assert_eq!(shared_name(&["acme"], &noise).as_deref(), Some("acme"));
    assert_eq!(
        shared_name(&["acme-store-pg", "acme-store-sqlite"], &noise).as_deref(),
        Some("store")
    );
    assert_eq!(shared_name(&["acme-a", "acme-b"], &noise), None);
    let crates = graph(
        &["acme-api", "acme-api-core", "other"],
        &[("acme-api", "acme-api-core", EdgeKind::Normal)],
    );
    assert_eq!(
        noise_words(&crates),
        BTreeSet::from(["acme".to_owned(), "api".to_owned()])
    );
    let plan = Plan::derive(&crates);
    let names: Vec<&str> = plan.layers.iter().map(|l| l.name.as_str()).collect();
    // `other` (a library nobody uses) shares the top with acme-api.
    assert_eq!(names, ["level1", "core"]);
    assert_eq!(plan.summary(3), "2 stack layers for 3 crates".to_owned());
}

#[test]
fn an_empty_workspace_gets_an_empty_but_valid_table() {
    let (table, _) = accepted(&graph(&[], &[]));
    assert!(table.layers.is_empty());
}
