//! A synthetic workspace: the benchmark's 200 crates in 8 layers with 10 files each, and a
//! smaller one for the `init` tests (shared through `#[path]`, so both read the same kind of
//! workspace).
//!
//! Stack layers `app` (L1) down to `base` (L8), each crate depending on a few crates of the
//! layer below and, from `app`, on one of `flows` (skipping the open `api` layer); a
//! `testkit` crate every crate uses from `[dev-dependencies]`; a `report` binary that uses
//! nothing; `ext/orm`, a path package outside the members that the drivers use and the
//! engines must not reach. Files hold what real ones do: `use` statements of the crate's
//! dependencies, documented types and functions with loops and string literals (SQL in the
//! drivers), and a `#[cfg(test)]` module. The code is never compiled, only read.

use std::fmt::Write as _;
use std::path::Path;

/// The stack layers, top to bottom.
const LAYERS: [&str; 8] = [
    "app", "api", "flows", "engines", "drivers", "models", "values", "base",
];

/// How big a workspace to write.
pub(crate) struct Shape {
    /// Workspace crates in all, the test kit and the tool included.
    pub(crate) crates: usize,
    /// Rust files per stack crate (`lib.rs` and `m1.rs`…).
    pub(crate) files: usize,
    /// Whether the root `Cargo.toml` carries a layer table.
    pub(crate) table: bool,
}

/// A small deterministic generator (xorshift), so every run writes the same workspace.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Writes the workspace into `dir` (replacing what was there); returns its file count.
pub(crate) fn write(dir: &Path, shape: &Shape) -> std::io::Result<usize> {
    let _ = std::fs::remove_dir_all(dir);
    let stack = shape.crates.saturating_sub(2);
    // Crates of layer i: syn-<layer>-<k>, the stack split evenly.
    let per_layer: Vec<usize> = (0..LAYERS.len())
        .map(|i| stack / LAYERS.len() + usize::from(i < stack % LAYERS.len()))
        .collect();
    let name = |layer: usize, k: usize| format!("syn-{}-{k:02}", LAYERS[layer]);
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    // (crate, layer, dependencies), top to bottom.
    let mut crates = Vec::new();
    for (layer, &count) in per_layer.iter().enumerate() {
        for k in 0..count {
            let mut deps = Vec::new();
            if layer + 1 < LAYERS.len() && per_layer[layer + 1] > 0 {
                for _ in 0..2 + dice.below(3) {
                    deps.push(name(layer + 1, dice.below(per_layer[layer + 1])));
                }
            }
            if layer == 0 && per_layer[2] > 0 {
                deps.push(name(2, dice.below(per_layer[2])));
            }
            deps.sort();
            deps.dedup();
            crates.push((name(layer, k), layer, deps));
        }
    }
    // The tests of one base crate use the values crate above it that uses it: a cycle
    // through a dev-dependency, which cargo accepts (the table names it as an exception).
    let cycle = crates
        .iter()
        .find(|(krate, _, _)| krate == "syn-values-00")
        .and_then(|(krate, _, deps)| Some((deps.first()?.clone(), krate.clone())));
    let mut members = Vec::new();
    let mut files = 0;
    for (krate, layer, deps) in crates {
        let up = cycle
            .as_ref()
            .filter(|(below, _)| *below == krate)
            .map(|(_, above)| above.as_str());
        files += write_crate(dir, &krate, LAYERS[layer], &deps, up, shape.files)?;
        members.push(krate);
    }
    files += write_testkit(dir, per_layer[LAYERS.len() - 1].min(3))?;
    files += write_tool(dir)?;
    members.push("syn-testkit".to_owned());
    members.push("syn-report".to_owned());
    write_file(&dir.join("ext/orm/Cargo.toml"), &manifest("orm", &[], &[]))?;
    write_file(
        &dir.join("ext/orm/src/lib.rs"),
        "//! The ORM the drivers use.\n\n/// A connection.\npub struct Connection;\n",
    )?;
    let mut root = String::from("[workspace]\nresolver = \"3\"\nmembers = [\n");
    for member in &members {
        let _ = writeln!(root, "    \"crates/{member}\",");
    }
    root.push_str("]\nexclude = [\"ext\"]\n");
    if shape.table {
        root.push_str(&table(&per_layer, &name, cycle.as_ref()));
    }
    write_file(&dir.join("Cargo.toml"), &root)?;
    Ok(files)
}

/// The layer table: closed layers but `api`, which `app` skips; source rules on the
/// engines and drivers; the ORM forbidden to the engines; the dev-dependency `cycle`
/// (below, above) accepted.
fn table(
    per_layer: &[usize],
    name: &dyn Fn(usize, usize) -> String,
    cycle: Option<&(String, String)>,
) -> String {
    let mut out =
        String::from("\n[workspace.metadata.layers]\nbanned_name_suffixes = [\"_service\"]\n");
    for (i, layer) in LAYERS.iter().enumerate() {
        let crates: Vec<String> = (0..per_layer[i])
            .map(|k| format!("\"{}\"", name(i, k)))
            .collect();
        let _ = write!(
            out,
            "\n[[workspace.metadata.layers.layer]]\nname = \"{layer}\"\nlevel = \"L{}\"\n\
             crates = [{}]\nclosed = {}\n",
            i + 1,
            crates.join(", "),
            *layer != "api"
        );
        match *layer {
            "engines" => out.push_str(
                "forbidden_external = [\"orm\"]\nsource_rules = [\"transaction-control\", \"raw-sql\"]\n",
            ),
            "drivers" => out.push_str("source_rules = [\"transaction-control\"]\n"),
            _ => {}
        }
    }
    out.push_str(
        "\n[[workspace.metadata.layers.layer]]\nname = \"testkit\"\nlevel = \"dev\"\nside = true\n\
         dev_only = true\nalso_uses = [\"base\"]\ncrates = [\"syn-testkit\"]\n\
         \n[[workspace.metadata.layers.layer]]\nname = \"tools\"\nlevel = \"tooling\"\nside = true\n\
         isolated = true\ncrates = [\"syn-report\"]\n",
    );
    if let Some((below, above)) = cycle {
        let _ = write!(
            out,
            "\n[[workspace.metadata.layers.exceptions]]\nrule = \"layer-edge\"\ncrate = \"{below}\"\n\
             target = \"{above}\"\nreason = \"its tests build records through the layer above\"\n"
        );
    }
    out
}

/// A `Cargo.toml` with path dependencies on `deps`, and `dev` as dev-dependencies.
fn manifest(name: &str, deps: &[String], dev: &[&str]) -> String {
    let mut out = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\n"
    );
    for dep in deps {
        let path = if dep == "orm" {
            "../../ext/orm".to_owned()
        } else {
            format!("../{dep}")
        };
        let _ = writeln!(out, "{dep} = {{ path = \"{path}\" }}");
    }
    if !dev.is_empty() {
        out.push_str("\n[dev-dependencies]\n");
    }
    for dep in dev {
        let _ = writeln!(out, "{dep} = {{ path = \"../{dep}\" }}");
    }
    out
}

/// One stack crate: its manifest, `lib.rs` and `files - 1` modules; returns its file count.
/// `up` is a crate above that its tests use.
fn write_crate(
    dir: &Path,
    krate: &str,
    layer: &str,
    deps: &[String],
    up: Option<&str>,
    files: usize,
) -> std::io::Result<usize> {
    let root = dir.join("crates").join(krate);
    let mut all_deps = deps.to_vec();
    if layer == "drivers" {
        all_deps.push("orm".to_owned());
    }
    let mut dev = vec!["syn-testkit"];
    dev.extend(up);
    write_file(&root.join("Cargo.toml"), &manifest(krate, &all_deps, &dev))?;
    let modules = files.max(1) - 1;
    let level = 1 + LAYERS.iter().position(|l| *l == layer).unwrap_or(0);
    let mut lib =
        format!("//! Layer: L{level} — {layer}. {krate}, generated for the benchmark.\n\n");
    for m in 1..=modules {
        let _ = writeln!(lib, "pub mod m{m};");
    }
    // Every dependency is used: each module names some of them, lib.rs the rest.
    let mut uses: Vec<Vec<&str>> = vec![Vec::new(); modules + 1];
    for (i, dep) in all_deps.iter().enumerate() {
        uses[if modules == 0 { 0 } else { 1 + i % modules }].push(dep);
    }
    lib.push_str(&module_body(krate, layer, 0, &uses[0], up));
    write_file(&root.join("src/lib.rs"), &lib)?;
    for (m, used) in uses.iter().enumerate().skip(1) {
        let text = format!(
            "//! Module m{m} of {krate}.\n\n{}",
            module_body(krate, layer, m, used, None)
        );
        write_file(&root.join(format!("src/m{m}.rs")), &text)?;
    }
    Ok(modules + 1)
}

/// The code of one module: `use` lines, a type, functions, and a test module (which uses
/// `up` too).
fn module_body(krate: &str, layer: &str, m: usize, deps: &[&str], up: Option<&str>) -> String {
    let mut out = String::from("use std::collections::BTreeMap;\n");
    for (i, dep) in deps.iter().enumerate() {
        if *dep == "orm" {
            out.push_str("use orm::Connection;\n");
        } else {
            let _ = writeln!(
                out,
                "use {}::Record0 as Upstream{i};",
                dep.replace('-', "_")
            );
        }
    }
    let _ = write!(
        out,
        "\n/// A record of {krate}.\n#[derive(Debug, Clone, Default, PartialEq)]\npub struct Record{m} {{\n    \
         /// Its id.\n    pub id: u64,\n    /// Its name.\n    pub name: String,\n    \
         /// Its tags, by key.\n    pub tags: BTreeMap<String, String>,\n}}\n"
    );
    for f in 0..8 {
        let literal = match (layer, f) {
            ("drivers", 0) => {
                "SELECT id, name FROM records WHERE tenant_id = $1 ORDER BY id".to_owned()
            }
            ("drivers", 1) => "INSERT INTO records (id, name) VALUES ($1, $2)".to_owned(),
            _ => format!("{krate}: record {{}} of step {f} not found"),
        };
        let _ = write!(
            out,
            "\n/// Step {f} of module m{m}: folds the values into a total, skipping every third.\n\
             pub fn step_{m}_{f}(values: &[u64], record: &Record{m}) -> Result<u64, String> {{\n    \
             let mut total = record.id;\n    for (i, value) in values.iter().enumerate() {{\n        \
             if (i + {f}) % 3 == 0 {{\n            continue;\n        }}\n        \
             total = total.wrapping_mul(31).wrapping_add(*value);\n    }}\n    \
             if total == 0 {{\n        return Err(format!(\"{literal}\", record.id));\n    }}\n    \
             let label = \"{layer}/{f}\"; // a label, 'quoted' in a comment\n    \
             Ok(total ^ label.len() as u64)\n}}\n"
        );
    }
    let _ = write!(
        out,
        "\n#[cfg(test)]\nmod tests {{\n    use super::*;\n    use syn_testkit::fixture;\n\n    \
         {}#[test]\n    fn steps_fold() {{\n        let record = Record{m} {{ id: fixture(), ..Record{m}::default() }};\n        \
         assert_eq!(step_{m}_0(&[1, 2, 3], &record).is_ok(), true, \"step of {krate}\");\n    }}\n}}\n",
        up.map(|up| format!("use {}::Record0 as Above;\n\n    ", up.replace('-', "_")))
            .unwrap_or_default()
    );
    out
}

/// The dev-only test kit, using a few crates of the bottom layer.
fn write_testkit(dir: &Path, bottom: usize) -> std::io::Result<usize> {
    let root = dir.join("crates/syn-testkit");
    let deps: Vec<String> = (0..bottom).map(|k| format!("syn-base-{k:02}")).collect();
    write_file(
        &root.join("Cargo.toml"),
        &manifest("syn-testkit", &deps, &[]),
    )?;
    let mut lib =
        String::from("//! Layer: dev — testkit. Test support for the synthetic workspace.\n\n");
    for dep in &deps {
        let code = dep.replace('-', "_");
        let _ = writeln!(
            lib,
            "pub use {code} as {};",
            code.trim_start_matches("syn_")
        );
    }
    lib.push_str("\n/// An id for tests.\npub fn fixture() -> u64 {\n    7\n}\n");
    write_file(&root.join("src/lib.rs"), &lib)?;
    Ok(1)
}

/// The isolated tool: a binary using no workspace crate.
fn write_tool(dir: &Path) -> std::io::Result<usize> {
    let root = dir.join("crates/syn-report");
    write_file(&root.join("Cargo.toml"), &manifest("syn-report", &[], &[]))?;
    write_file(
        &root.join("src/main.rs"),
        "//! Layer: tooling — tools. Prints a report.\n\nfn main() {\n    println!(\"report\");\n}\n",
    )?;
    Ok(1)
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}
