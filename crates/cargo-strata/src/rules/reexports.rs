//! `reexport`: a crate must not hand a lower layer's items up past a closed layer.
//!
//! A layer edge says who may depend on whom, but `pub use account_models::Tenant;` in a
//! driver lets every user of the drivers name a model type without depending on the models:
//! the table says the engines may not use the models, and the code gives them the models
//! anyway. So for each member `C` and each `pub use <dep>::…`, `pub use <dep> as x;`,
//! `pub use ::<dep>::{…}` or `pub extern crate <dep>` in its library's non-test code, where
//! `<dep>` is the code name of a workspace dependency `D` (a rename counts), the rule asks
//! every layer `U` that may use `C` whether it may use `D` too, and reports `C` when some `U`
//! may not.
//!
//! Re-exports chain: when `D` itself re-exports `E`, a path of `C`'s that reaches `D`'s
//! re-export hands up `E` as well, and is reported with the chain through `D`'s re-export
//! site. A whole crate (`pub use dep;`, `pub extern crate dep`) or a glob (`pub use dep::*`)
//! reaches everything `D` re-exports; a module path (`pub use dep::types;`) reaches what
//! `D` re-exports inside that module; a name (`pub use dep::values::Email`) reaches `D`'s
//! re-export of that name. A name that may come from a glob of `D`'s is not followed:
//! without resolving `D`'s items the linter cannot tell.
//!
//! A layer that hands a lower layer's items up on purpose says so in the table
//! (`reexports = ["values"]`): the re-exports of that layer's items are then its API.
//!
//! What it does not look at: `pub(crate)`, `pub(super)` and `pub(in …)` imports (they export
//! nothing), binaries (nothing can import them), module visibility (a `pub use` in a private
//! module counts) and `#[path]` attributes. A re-export over an edge the table refuses is
//! not reported again: `layer-edge` already reports that edge.

use super::Rule;
use super::edges::refusal;
use crate::Workspace;
use crate::lexer::{Token, TokenKind};
use crate::metadata::{Dependency, EdgeKind, Package};
use crate::report::{Report, Violation};
use crate::sources::SourceFile;
use crate::table::Layer;
use std::collections::BTreeMap;
use std::path::Path;

/// One `pub use` or `pub extern crate` item of non-test product code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Export {
    /// The line of its `pub`.
    pub(crate) line: usize,
    /// The module it sits in, from the crate root (`["types"]` inside `pub mod types {…}`).
    pub(crate) module: Vec<String>,
    /// Each path it exports.
    pub(crate) leaves: Vec<Leaf>,
}

/// One exported path of a use tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// The path as written, without a leading `::` (`["fx_models", "values", "Email"]`).
    pub(crate) path: Vec<String>,
    /// The name it is exported under (`Email`, or its `as` name); `None` for a glob.
    pub(crate) name: Option<String>,
}

/// Checks every member that some layer may use for re-exports its users may not reach.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    let reexports = Reexports::new(ws);
    for (name, package) in &ws.graph.members {
        let Some(layer) = ws.table.layer_of(name) else {
            continue;
        };
        let users = users_of(ws, layer);
        // Nothing above it, nothing handed up: a crate no layer may use has no contract here.
        if users.is_empty() || package.library().is_none() || package.is_proc_macro() {
            continue;
        }
        report.checked(Rule::Reexport, name);
        for (file, export) in reexports.of(name) {
            for chain in reexports.handed_up(name, file, export) {
                let site = (file.as_str(), export.line);
                if let Some(violation) = violation(ws, (name, layer), &users, site, chain) {
                    report.push(violation);
                }
            }
        }
    }
}

/// The layers that may use `layer` through a normal dependency, nearest first: stack layers
/// from the closest above, then side layers in table order. Layers without crates use
/// nothing.
fn users_of<'t>(ws: &Workspace<'t>, layer: &Layer) -> Vec<&'t Layer> {
    let mut users: Vec<&Layer> = ws
        .table
        .layers
        .iter()
        .filter(|u| !u.crates.is_empty())
        .filter(|u| refusal(ws.table, u, layer, EdgeKind::Normal).is_none())
        .collect();
    users.sort_by_key(|u| (u.side, std::cmp::Reverse(u.rank().filter(|_| !u.side))));
    users
}

/// The violation of crate `name` (in `layer`) handing up the last crate of `chain` at
/// `site`, if one of its users may not use that crate.
fn violation(
    ws: &Workspace<'_>,
    (name, layer): (&str, &Layer),
    users: &[&Layer],
    site: (&str, usize),
    chain: Vec<String>,
) -> Option<Violation> {
    let target = chain.last()?.clone();
    let handed = ws.table.layer_of(&target)?;
    // The table lets this layer hand that one up (a facade's vocabulary).
    if layer.reexports.contains(&handed.name) {
        return None;
    }
    let mut refused = users.iter().filter_map(|user| {
        refusal(ws.table, user, handed, EdgeKind::Normal).map(|why| (user.describe(), why))
    });
    let (first, why) = refused.next()?;
    let others: Vec<String> = refused.map(|(user, _)| user).collect();
    // chain = [site, C, (site, D)*, X]: the crates between C and X re-export it on the way.
    let through: Vec<&str> = chain
        .iter()
        .skip(3)
        .step_by(2)
        .map(String::as_str)
        .collect();
    let through = if through.is_empty() {
        String::new()
    } else {
        format!(" through {}", through.join(", "))
    };
    let more = if others.is_empty() {
        String::new()
    } else {
        format!(" (nor may {})", others.join(", "))
    };
    let message = format!(
        "{name} ({}) re-exports {target} ({}){through} to {first}, which may not use it: \
         {why}{more}",
        layer.describe(),
        handed.describe()
    );
    Some(Violation::new(Rule::Reexport, name, &target, site, message).with_chain(chain))
}

/// Every member's exports, read once, and the walk along them.
struct Reexports<'w> {
    ws: &'w Workspace<'w>,
    /// Each member's exports with the file (relative) they are in, by crate name.
    exports: BTreeMap<&'w str, Vec<(String, Export)>>,
}

impl<'w> Reexports<'w> {
    /// Reads the exports of every member's library.
    fn new(ws: &'w Workspace<'w>) -> Self {
        let mut exports = BTreeMap::new();
        for (name, package) in &ws.graph.members {
            let Some(sources) = ws.sources.get(name) else {
                continue;
            };
            let found: Vec<(String, Export)> = sources
                .files
                .iter()
                .filter_map(|file| Some((file, library_module(package, &file.path)?)))
                .flat_map(|(file, module)| {
                    let relative = ws.relative(&file.path);
                    exports_of(file, &module)
                        .into_iter()
                        .map(move |export| (relative.clone(), export))
                })
                .collect();
            exports.insert(*name, found);
        }
        Reexports { ws, exports }
    }

    /// The exports of `krate`, with their files.
    fn of(&self, krate: &str) -> &[(String, Export)] {
        self.exports.get(krate).map_or(&[], Vec::as_slice)
    }

    /// The normal workspace dependency of `krate` whose code name is `ident`, when the table
    /// allows the edge (a refused edge is layer-edge's to report).
    fn dependency(&self, krate: &str, ident: &str) -> Option<&'w Dependency> {
        let ws = self.ws;
        let package = ws.graph.members.get(krate)?;
        let from = ws.table.layer_of(krate)?;
        package.dependencies.iter().find(|d| {
            d.kind == EdgeKind::Normal
                && d.name != krate
                && ws.graph.is_member(&d.name)
                && ws.graph.code_name(d) == ident
                && ws
                    .table
                    .layer_of(&d.name)
                    .is_some_and(|to| refusal(ws.table, from, to, EdgeKind::Normal).is_none())
        })
    }

    /// The chains of each workspace crate that `export` of `krate` hands up, the shortest
    /// per crate: `[site, krate, dependency]`, and through the dependency's own re-exports
    /// `[site, krate, site, dependency, …, crate]`.
    fn handed_up(&self, krate: &str, file: &str, export: &Export) -> Vec<Vec<String>> {
        let mut shortest: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for leaf in &export.leaves {
            for chain in self.follow(krate, file, export, leaf, &[], &[]) {
                let Some(target) = chain.last() else {
                    continue;
                };
                let shorter = shortest.get(target).is_none_or(|c| chain.len() < c.len());
                if shorter {
                    shortest.insert(target.clone(), chain);
                }
            }
        }
        shortest.into_values().collect()
    }

    /// The chains from `leaf` of `krate`'s `export`, followed by `rest` (the part of a
    /// user's path past the name the leaf exports), to each crate it hands up. `seen` holds
    /// the crates already on the chain (a cycle of declared dependencies ends there).
    fn follow(
        &self,
        krate: &str,
        file: &str,
        export: &Export,
        leaf: &Leaf,
        rest: &[String],
        seen: &[&str],
    ) -> Vec<Vec<String>> {
        let Some(dependency) = leaf
            .path
            .first()
            .and_then(|ident| self.dependency(krate, ident))
        else {
            return Vec::new();
        };
        let target = dependency.name.as_str();
        if seen.contains(&target) {
            return Vec::new();
        }
        let head = vec![format!("{file}:{}", export.line), krate.to_owned()];
        let mut chains = vec![[head.clone(), vec![target.to_owned()]].concat()];
        let inside: Vec<String> = leaf.path[1..].iter().chain(rest).cloned().collect();
        let seen = [seen, &[krate]].concat();
        for (inner_file, inner) in self.of(target) {
            for inner_leaf in &inner.leaves {
                let Some(rest) = reaches(&inside, inner, inner_leaf) else {
                    continue;
                };
                for tail in self.follow(target, inner_file, inner, inner_leaf, &rest, &seen) {
                    chains.push([head.clone(), tail].concat());
                }
            }
        }
        chains
    }
}

/// Whether the path `path` inside a crate reaches `leaf` of that crate's `export`, and if so
/// what is left of the path past the leaf's name. An empty path is the whole crate; a path
/// reaches every export inside the module it names, and an export whose name it goes
/// through (`values::Email` goes through `pub use fx_values as values;`).
pub(crate) fn reaches(path: &[String], export: &Export, leaf: &Leaf) -> Option<Vec<String>> {
    if export.module.starts_with(path) {
        return Some(Vec::new());
    }
    let name = leaf.name.as_ref()?;
    (0..path.len())
        .find(|&k| export.module == path[..k] && path[k] == *name)
        .map(|k| path[k + 1..].to_vec())
}

/// The module a file of `package`'s library holds, from the crate root: `[]` for the root,
/// `["a", "b"]` for `a/b.rs` or `a/b/mod.rs`. `None` for files of its binaries.
pub(crate) fn library_module(package: &Package, file: &Path) -> Option<Vec<String>> {
    let library = package.library()?;
    if file == library.src_path {
        return Some(Vec::new());
    }
    let other_root = package
        .targets
        .iter()
        .any(|t| t.src_path == file && !std::ptr::eq(t, library));
    let dir = library.src_path.parent()?;
    let relative = file.strip_prefix(dir).ok()?;
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if other_root || parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    Some(parts)
}

/// The `pub use` and `pub extern crate` items of a file's non-test product code; `module` is
/// the module the file holds.
pub(crate) fn exports_of(file: &SourceFile, module: &[String]) -> Vec<Export> {
    let code: Vec<&Token> = file.product_tokens().map(|(_, t)| t).collect();
    exports_in(&code, module)
}

/// See [`exports_of`].
fn exports_in(code: &[&Token], module: &[String]) -> Vec<Export> {
    let mut exports = Vec::new();
    // Inline modules open here, with the brace depth inside them.
    let mut modules: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(token) = code.get(at) {
        let next = |n: usize| code.get(at + n);
        if token.is_punct('{') {
            depth += 1;
        } else if token.is_punct('}') {
            if modules.last().is_some_and(|(_, d)| *d == depth) {
                modules.pop();
            }
            depth = depth.saturating_sub(1);
        } else if token.is_ident("mod")
            && let Some(name) = next(1).filter(|t| t.kind == TokenKind::Ident)
            && next(2).is_some_and(|t| t.is_punct('{'))
        {
            modules.push((name.text.to_string(), depth + 1));
        } else if token.is_ident("pub") {
            let mut leaves = Vec::new();
            let end = if next(1).is_some_and(|t| t.is_ident("use")) {
                Some(use_tree(code, at + 2, &[], &mut leaves))
            } else if next(1).is_some_and(|t| t.is_ident("extern"))
                && next(2).is_some_and(|t| t.is_ident("crate"))
            {
                Some(extern_crate(code, at + 3, &mut leaves))
            } else {
                None // `pub fn`, `pub(crate) use`: not a re-export
            };
            if let Some(end) = end {
                let mut module = module.to_vec();
                module.extend(modules.iter().map(|(name, _)| name.clone()));
                exports.push(Export {
                    line: token.line,
                    module,
                    leaves,
                });
                at = end.max(at + 1);
                continue;
            }
        }
        at += 1;
    }
    exports
}

/// Whether `::` starts at `at`.
fn path_separator(code: &[&Token], at: usize) -> bool {
    code.get(at).is_some_and(|t| t.is_punct(':'))
        && code.get(at + 1).is_some_and(|t| t.is_punct(':'))
}

/// Reads the use tree starting at `at` under `prefix` into `leaves`, and returns the index
/// just past it. It never fails: what it cannot read ends the tree.
fn use_tree(code: &[&Token], mut at: usize, prefix: &[String], leaves: &mut Vec<Leaf>) -> usize {
    let mut path = prefix.to_vec();
    if path_separator(code, at) {
        at += 2;
    }
    loop {
        let Some(token) = code.get(at) else {
            return at;
        };
        if token.is_punct('*') {
            leaves.push(Leaf { path, name: None });
            return at + 1;
        }
        if token.is_punct('{') {
            at += 1;
            loop {
                match code.get(at) {
                    None => return at,
                    Some(t) if t.is_punct('}') => return at + 1,
                    Some(t) if t.is_punct(',') => at += 1,
                    Some(_) => at = use_tree(code, at, &path, leaves).max(at + 1),
                }
            }
        }
        if token.kind != TokenKind::Ident {
            return at;
        }
        at += 1;
        if path_separator(code, at) {
            path.push(token.text.to_string());
            at += 2;
            continue;
        }
        // `{self}` names the prefix itself.
        let mut name = if token.text == "self" && !path.is_empty() {
            path.last().cloned()
        } else {
            path.push(token.text.to_string());
            Some(token.text.to_string())
        };
        let alias = code.get(at + 1).filter(|t| t.kind == TokenKind::Ident);
        if let Some(alias) = alias.filter(|_| code[at].is_ident("as")) {
            name = Some(alias.text.to_string());
            at += 2;
        }
        leaves.push(Leaf { path, name });
        return at;
    }
}

/// Reads `name [as alias]` after `pub extern crate` into `leaves`; returns the index past it.
fn extern_crate(code: &[&Token], at: usize, leaves: &mut Vec<Leaf>) -> usize {
    let Some(krate) = code.get(at).filter(|t| t.kind == TokenKind::Ident) else {
        return at;
    };
    let alias = code
        .get(at + 2)
        .filter(|t| t.kind == TokenKind::Ident && code[at + 1].is_ident("as"));
    leaves.push(Leaf {
        path: vec![krate.text.to_string()],
        name: Some(alias.unwrap_or(krate).text.to_string()),
    });
    if alias.is_some() { at + 3 } else { at + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Role;
    use std::path::PathBuf;

    fn exports(source: &str) -> Vec<Export> {
        let file = SourceFile::lex(PathBuf::from("lib.rs"), Role::Product, source);
        exports_of(&file, &["root".to_owned()])
    }

    fn leaf(path: &str, name: Option<&str>) -> Leaf {
        Leaf {
            path: path.split("::").map(str::to_owned).collect(),
            name: name.map(str::to_owned),
        }
    }

    fn strings(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn use_trees_become_one_leaf_per_exported_path() {
        let found = exports(
            "pub use a::b;\npub use ::a::{b::{c as d, *}, self as e, f,};\npub use a as g;\n\
             pub use a::{self};\npub use a::T as _;",
        );
        let leaves: Vec<Vec<Leaf>> = found.iter().map(|e| e.leaves.clone()).collect();
        assert_eq!(
            leaves,
            [
                vec![leaf("a::b", Some("b"))],
                vec![
                    leaf("a::b::c", Some("d")),
                    leaf("a::b", None),
                    leaf("a", Some("e")),
                    leaf("a::f", Some("f")),
                ],
                vec![leaf("a", Some("g"))],
                vec![leaf("a", Some("a"))],
                vec![leaf("a::T", Some("_"))],
            ]
        );
        let lines: Vec<usize> = found.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn extern_crates_are_exports_too() {
        let found = exports("pub extern crate a;\npub extern crate b as c;\nextern crate d;");
        let leaves: Vec<Vec<Leaf>> = found.iter().map(|e| e.leaves.clone()).collect();
        assert_eq!(
            leaves,
            [vec![leaf("a", Some("a"))], vec![leaf("b", Some("c"))]]
        );
    }

    #[test]
    fn restricted_private_commented_and_test_imports_export_nothing() {
        let found = exports(
            "pub(crate) use a::b;\npub(super) use a::c;\npub(in crate::x) use a::d;\nuse a::e;\n\
             // pub use a::f;\n#[cfg(test)]\npub use a::g;\n#[cfg(test)]\nmod tests { pub use a::h; }\n\
             pub fn i() {}\npub struct J;",
        );
        assert_eq!(found, []);
    }

    #[test]
    fn inline_modules_give_the_module_path() {
        let found = exports(
            "pub mod types {\n    pub use a::*;\n    fn f() { if x {} }\n    pub mod deeper { pub use b::C; }\n}\n\
             pub use d::E;\nmod m;",
        );
        let modules: Vec<Vec<String>> = found.iter().map(|e| e.module.clone()).collect();
        assert_eq!(
            modules,
            [
                strings(&["root", "types"]),
                strings(&["root", "types", "deeper"]),
                strings(&["root"]),
            ]
        );
    }

    #[test]
    fn a_path_reaches_exports_inside_its_module_and_through_their_names() {
        let export = |module: &[&str]| Export {
            line: 1,
            module: strings(module),
            leaves: Vec::new(),
        };
        let values = leaf("fx_values", Some("values"));
        let glob = leaf("fx_values::inner", None);
        // The whole crate reaches everything.
        assert_eq!(reaches(&[], &export(&["types"]), &glob), Some(Vec::new()));
        // A module reaches what is inside it, not what is beside it.
        assert_eq!(
            reaches(&strings(&["types"]), &export(&["types", "x"]), &glob),
            Some(Vec::new())
        );
        assert_eq!(
            reaches(&strings(&["types"]), &export(&["other"]), &glob),
            None
        );
        // A name goes through the re-export it names, with the rest of the path.
        assert_eq!(
            reaches(&strings(&["values", "Email"]), &export(&[]), &values),
            Some(strings(&["Email"]))
        );
        assert_eq!(reaches(&strings(&["Email"]), &export(&[]), &values), None);
        // A glob has no name to go through.
        assert_eq!(
            reaches(&strings(&["x", "Email"]), &export(&["x"]), &glob),
            None
        );
    }
}
