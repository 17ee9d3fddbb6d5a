//! `cargo strata init`: a starting layer table, derived from the workspace's dependency graph
//! as it stands, so `check` finds no `layer-edge` or `undeclared-crate` violation against it.
//!
//! The algorithm, over the dependencies declared between workspace crates (what the
//! `layer-edge` rule reads; cargo's resolve is not needed, so a dependency cycle that cargo
//! refuses is handled too):
//! 1. A crate without a library target (a binary, a tool) that has no workspace dependency in
//!    either direction goes into an isolated side layer: nothing can use a binary, and it
//!    uses nothing of ours. A library without edges stays on the stack (at the top): it exists
//!    to be used, and an isolated layer would refuse its first user.
//! 2. A crate that others depend on, but only from `[dev-dependencies]`, goes into a
//!    `dev_only` side layer (test support); that layer's `also_uses` lists the layers its
//!    crates use.
//! 3. Every other crate is on the stack. Its edges of every kind (normal, build and dev: the
//!    rule holds dev edges to the stack too) are grouped into strongly connected components;
//!    a component of several crates is a cycle (cargo allows one through dev-dependencies,
//!    and refuses others), whose crates share a layer with `siblings_may_depend = true`.
//! 4. A component that no other depends on sits on top, at L1; any other sits one level below
//!    the lowest component that depends on it (longest path from the top), so every edge
//!    points down and no two crates of one level depend on each other outside a cycle.
//! 5. Each level is one layer, open (`closed` is left to the user, with a hint saying whether
//!    any edge skips the layer today), named after what its crates' names share, else
//!    `level<n>`.
//!
//! `render` writes the table as the text of a `layers.toml`, with a comment per layer saying
//! why each crate is there.

mod render;

use crate::Error;
use crate::metadata::{EdgeKind, Graph, Metadata};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Derives a starting layer table for the workspace of `manifest_path` (its root
/// `Cargo.toml`, a member's, or the directory holding one) from its dependency graph, and
/// returns it as the text of a `layers.toml`.
///
/// Against that table, [`check`](crate::check) reports no `layer-edge` or `undeclared-crate`
/// violation on the same workspace. Nothing is written; `cargo strata init` writes the text
/// to `layers.toml` at the workspace root. Like `check`, it runs `cargo metadata --offline`
/// and no other process.
///
/// ```no_run
/// let table = cargo_strata::init("Cargo.toml")?;
/// std::fs::write("layers.toml", table).expect("writable");
/// # Ok::<(), cargo_strata::Error>(())
/// ```
pub fn init(manifest_path: impl AsRef<Path>) -> Result<String, Error> {
    Ok(start(manifest_path.as_ref())?.text)
}

/// What `cargo strata init` needs besides the text: where to write it, and whether the
/// workspace already has a table.
pub(crate) struct Started {
    /// The table's text.
    pub(crate) text: String,
    /// The workspace root, where `layers.toml` goes.
    pub(crate) root: PathBuf,
    /// Where the workspace's existing table is, when it has one.
    pub(crate) existing: Option<String>,
    /// What the table holds, in a line (`4 stack layers, …`).
    pub(crate) summary: String,
}

/// Reads the workspace of `manifest_path` and drafts its table.
pub(crate) fn start(manifest_path: &Path) -> Result<Started, Error> {
    let metadata = Metadata::load(manifest_path)?;
    let graph = Graph::new(&metadata);
    let crates = Crates::read(&graph);
    let plan = Plan::derive(&crates);
    let root = metadata.workspace_root.clone();
    let own_file = root.join("layers.toml");
    let existing = if own_file.is_file() {
        Some(own_file.display().to_string())
    } else if metadata
        .metadata
        .as_ref()
        .is_some_and(|m| m.get("layers").is_some())
    {
        Some(format!(
            "[workspace.metadata.layers] in {}",
            root.join("Cargo.toml").display()
        ))
    } else {
        None
    };
    Ok(Started {
        text: render::table(&crates, &plan),
        summary: plan.summary(crates.members.len()),
        root,
        existing,
    })
}

/// One workspace crate, as init sees it.
#[derive(Debug)]
struct Member {
    /// Its package name.
    name: String,
    /// Whether it has a library (or proc-macro) target others could use.
    has_lib: bool,
    /// Its first header root relative to the workspace root (`crates/a/src/lib.rs`), for
    /// the layer-header hint.
    root_file: Option<String>,
}

/// A declared dependency between two members, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: usize,
    to: usize,
    kind: EdgeKind,
}

/// The workspace crates and the dependencies between them.
#[derive(Debug, Default)]
struct Crates {
    /// In name order.
    members: Vec<Member>,
    /// Each (from, to, kind) once; a crate's dependency on itself is left out, as the
    /// `layer-edge` rule leaves it out.
    edges: Vec<Edge>,
    /// Why cargo could not resolve the graph (a cycle), when it could not.
    unresolved: Option<String>,
}

impl Crates {
    /// The members of `graph` and their declared dependencies on each other.
    fn read(graph: &Graph<'_>) -> Self {
        let index: BTreeMap<&str, usize> = graph
            .members
            .keys()
            .enumerate()
            .map(|(i, name)| (*name, i))
            .collect();
        let mut edges = BTreeSet::new();
        let members = graph
            .members
            .iter()
            .enumerate()
            .map(|(from, (name, package))| {
                for dependency in &package.dependencies {
                    match index.get(dependency.name.as_str()) {
                        Some(&to) if to != from => {
                            edges.insert(Edge {
                                from,
                                to,
                                kind: dependency.kind,
                            });
                        }
                        _ => {}
                    }
                }
                Member {
                    name: (*name).to_owned(),
                    has_lib: package.library().is_some(),
                    root_file: package
                        .header_roots()
                        .first()
                        .map(|p| graph.metadata.relative(p)),
                }
            })
            .collect();
        Crates {
            members,
            edges: edges.into_iter().collect(),
            unresolved: graph.metadata.unresolved.clone(),
        }
    }

    /// The edges into crate `to`.
    fn edges_into(&self, to: usize) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.to == to)
    }

    /// The name of crate `index`.
    fn name(&self, index: usize) -> &str {
        &self.members[index].name
    }
}

/// Where init puts a crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the stack, at this level (1 = top).
    Stack(u32),
    /// In the dev-only side layer.
    DevOnly,
    /// In the isolated side layer.
    Isolated,
}

/// The table to write: every crate's place, and the layers.
#[derive(Debug)]
struct Plan {
    /// Each crate's place, by index.
    places: Vec<Place>,
    /// The cycles: strongly connected components of more than one crate.
    cycles: Vec<Vec<usize>>,
    /// The layers, stack top to bottom, then the dev-only and the isolated layer.
    layers: Vec<Draft>,
}

/// One layer of the plan.
#[derive(Debug)]
struct Draft {
    /// Its name.
    name: String,
    /// `L<n>`, `dev` or `tooling`.
    level: String,
    /// Its place (`Place::Stack(n)` for a stack layer).
    place: Place,
    /// Its crates, by index, in name order.
    crates: Vec<usize>,
    /// Whether its crates may depend on each other (it holds a cycle).
    siblings: bool,
    /// The layers it uses besides the stack (the dev-only layer's).
    also_uses: Vec<String>,
}

impl Plan {
    /// Places every crate and forms the layers.
    fn derive(crates: &Crates) -> Self {
        let count = crates.members.len();
        let mut places: Vec<Place> = (0..count)
            .map(|i| {
                let mut incoming = crates.edges_into(i).peekable();
                let used = incoming.peek().is_some();
                let uses = crates.edges.iter().any(|e| e.from == i);
                if !used && !uses && !crates.members[i].has_lib {
                    Place::Isolated
                } else if used && incoming.all(|e| e.kind == EdgeKind::Dev) {
                    Place::DevOnly
                } else {
                    Place::Stack(0)
                }
            })
            .collect();
        let on_stack = |i: usize, places: &[Place]| matches!(places[i], Place::Stack(_));
        let mut adjacency = vec![Vec::new(); count];
        for edge in &crates.edges {
            if on_stack(edge.from, &places) && on_stack(edge.to, &places) {
                adjacency[edge.from].push(edge.to);
            }
        }
        let included: Vec<bool> = (0..count).map(|i| on_stack(i, &places)).collect();
        let components = components(&adjacency, &included);
        // Tarjan's order puts a component after every component it reaches; reversed, each
        // comes after every component that reaches it, so its level is final when reached.
        let mut component_of = vec![0; count];
        for (c, members) in components.iter().enumerate() {
            for &i in members {
                component_of[i] = c;
            }
        }
        let mut levels = vec![1u32; components.len()];
        for (c, members) in components.iter().enumerate().rev() {
            for &i in members {
                for &j in &adjacency[i] {
                    let d = component_of[j];
                    if d != c {
                        levels[d] = levels[d].max(levels[c] + 1);
                    }
                }
            }
        }
        for (c, members) in components.iter().enumerate() {
            for &i in members {
                places[i] = Place::Stack(levels[c]);
            }
        }
        let mut cycles: Vec<Vec<usize>> = components.into_iter().filter(|c| c.len() > 1).collect();
        for cycle in &mut cycles {
            cycle.sort_unstable();
        }
        cycles.sort();
        let mut plan = Plan {
            places,
            cycles,
            layers: Vec::new(),
        };
        plan.layers = plan.drafts(crates);
        plan
    }

    /// The layers: one per stack level, then the side layers, each named.
    fn drafts(&self, crates: &Crates) -> Vec<Draft> {
        let top = self
            .places
            .iter()
            .filter_map(|p| match p {
                Place::Stack(level) => Some(*level),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let of = |place: Place| -> Vec<usize> {
            (0..self.places.len())
                .filter(|&i| self.places[i] == place)
                .collect()
        };
        let mut layers: Vec<Draft> = (1..=top)
            .map(|level| {
                let members = of(Place::Stack(level));
                Draft {
                    siblings: self.cycles.iter().any(|cycle| members.contains(&cycle[0])),
                    name: String::new(),
                    level: format!("L{level}"),
                    place: Place::Stack(level),
                    crates: members,
                    also_uses: Vec::new(),
                }
            })
            .collect();
        for (place, level) in [(Place::DevOnly, "dev"), (Place::Isolated, "tooling")] {
            let members = of(place);
            if !members.is_empty() {
                layers.push(Draft {
                    name: String::new(),
                    level: level.to_owned(),
                    place,
                    crates: members,
                    siblings: false,
                    also_uses: Vec::new(),
                });
            }
        }
        let noise = noise_words(crates);
        let mut taken = BTreeSet::new();
        for layer in &mut layers {
            let names: Vec<&str> = layer.crates.iter().map(|&i| crates.name(i)).collect();
            let fallback = match layer.place {
                Place::Stack(level) => format!("level{level}"),
                Place::DevOnly => "dev".to_owned(),
                Place::Isolated => "tools".to_owned(),
            };
            let mut name = shared_name(&names, &noise).unwrap_or(fallback);
            let base = name.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            layer.name = name;
        }
        // The dev-only layer uses the stack layers its crates depend on, top to bottom.
        let used: BTreeSet<u32> = crates
            .edges
            .iter()
            .filter(|e| self.places[e.from] == Place::DevOnly)
            .filter_map(|e| match self.places[e.to] {
                Place::Stack(level) => Some(level),
                _ => None,
            })
            .collect();
        let also_uses: Vec<String> = used
            .iter()
            .map(|&level| layers[level as usize - 1].name.clone())
            .collect();
        if let Some(dev) = layers.iter_mut().find(|l| l.place == Place::DevOnly) {
            dev.also_uses = also_uses;
        }
        layers
    }

    /// The stack level of crate `index`, if it is on the stack.
    fn level(&self, index: usize) -> Option<u32> {
        match self.places[index] {
            Place::Stack(level) => Some(level),
            _ => None,
        }
    }

    /// `4 stack layers, a dev-only layer and an isolated layer for 12 crates`.
    fn summary(&self, crates: usize) -> String {
        let stack = self
            .layers
            .iter()
            .filter(|l| matches!(l.place, Place::Stack(_)))
            .count();
        let mut parts = vec![format!(
            "{stack} stack layer{}",
            if stack == 1 { "" } else { "s" }
        )];
        if self.layers.iter().any(|l| l.place == Place::DevOnly) {
            parts.push("a dev-only layer".to_owned());
        }
        if self.layers.iter().any(|l| l.place == Place::Isolated) {
            parts.push("an isolated layer".to_owned());
        }
        let last = parts.pop().unwrap_or_default();
        let list = if parts.is_empty() {
            last
        } else {
            format!("{} and {last}", parts.join(", "))
        };
        format!(
            "{list} for {crates} crate{}",
            if crates == 1 { "" } else { "s" }
        )
    }
}

/// Strongly connected components (Tarjan) of the graph `adjacency` restricted to the nodes
/// `included`, each component after every component it reaches.
fn components(adjacency: &[Vec<usize>], included: &[bool]) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        adjacency: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.adjacency[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(index) if self.on_stack[w] => self.low[v] = self.low[v].min(index),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.out.push(component);
            }
        }
    }
    let count = adjacency.len();
    let mut tarjan = Tarjan {
        adjacency,
        index: vec![None; count],
        low: vec![0; count],
        on_stack: vec![false; count],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in (0..count).filter(|&v| included[v]) {
        if tarjan.index[v].is_none() {
            tarjan.visit(v);
        }
    }
    tarjan.out
}

/// The words of a crate name (`account-api` → `account`, `api`).
fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split(['-', '_']).filter(|w| !w.is_empty())
}

/// Words in more than half of the crate names (a workspace prefix such as `account`): they
/// say nothing about a layer.
fn noise_words(crates: &Crates) -> BTreeSet<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for member in &crates.members {
        let distinct: BTreeSet<&str> = words(&member.name).collect();
        for word in distinct {
            *counts.entry(word).or_default() += 1;
        }
    }
    let total = crates.members.len();
    counts
        .into_iter()
        .filter(|(_, n)| total >= 2 && n * 2 > total)
        .map(|(word, _)| word.to_owned())
        .collect()
}

/// A layer's name from its crates' names: one crate's name without the noise words (or whole,
/// when nothing else is left); for several, the words all of them share, else `None`.
fn shared_name(names: &[&str], noise: &BTreeSet<String>) -> Option<String> {
    let (first, rest) = names.split_first()?;
    let own: Vec<&str> = words(first).filter(|w| !noise.contains(*w)).collect();
    if rest.is_empty() {
        return Some(if own.is_empty() {
            (*first).to_owned()
        } else {
            own.join("-")
        });
    }
    let shared: Vec<&str> = own
        .into_iter()
        .filter(|w| rest.iter().all(|name| words(name).any(|x| x == *w)))
        .collect();
    (!shared.is_empty()).then(|| shared.join("-"))
}

#[cfg(test)]
mod tests;
