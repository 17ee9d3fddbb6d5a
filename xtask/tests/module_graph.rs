//! xtask's modules import each other without a cycle: commands share helpers through `util`,
//! never through another command (a cycle made every change to one command risk another).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> the top-level modules its code names through `crate::`.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src exists") {
        let path = entry.expect("entry").path();
        let (module, files) = if path.is_dir() {
            let mut files = Vec::new();
            sources_under(&path, &mut files);
            (file_name(&path), files)
        } else {
            (
                file_name(&path).trim_end_matches(".rs").to_owned(),
                vec![path],
            )
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let mut targets = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            targets.extend(referenced_modules(&text));
        }
        targets.remove(&module);
        graph.insert(module, targets);
    }
    graph
}

fn sources_under(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("module dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources_under(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The first segment after every `crate::` outside comments, including `crate::{a, b::c}`.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (index, _) in line.match_indices("crate::") {
            let rest = &line[index + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                found.extend(group.split(',').map(ident).filter(|m| !m.is_empty()));
            } else {
                found.insert(ident(rest));
            }
        }
    }
    found
}

/// A cycle through `node`, if any, as the modules on it.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|m| m == node) {
        let mut cycle = path[start..].to_vec();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    path.push(node.to_owned());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(cycle) = cycle_from(graph, next, path) {
            return Some(cycle);
        }
    }
    path.pop();
    None
}

#[test]
fn modules_import_each_other_without_a_cycle() {
    let graph = edges();
    assert!(graph.contains_key("util") && graph.contains_key("ci"));
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module, &mut Vec::new()) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
    assert!(graph["util"].is_empty(), "util imports {:?}", graph["util"]);
}

#[test]
fn grouped_and_plain_paths_are_both_seen() {
    let text = "use crate::util::{a, b};\nuse crate::{pg::Postgres, tidy};\n// crate::ci\n";
    let expected: BTreeSet<String> = ["util", "pg", "tidy"].map(String::from).into();
    assert_eq!(referenced_modules(text), expected);
}
