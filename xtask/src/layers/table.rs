//! The layer table: `[workspace.metadata.layers]` in the root `Cargo.toml`, the one place that
//! says which crate sits in which layer and what each layer may use. This module reads it and
//! finds what is wrong with the table itself (rule `invalid-table`).

use super::manifest::{header, key_of};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The whole table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayerTable {
    /// The layers, any order.
    #[serde(default, rename = "layer")]
    pub(crate) layers: Vec<Layer>,
    /// Name suffixes no crate, module, fn or type may carry (e.g. `_service`).
    #[serde(default)]
    pub(crate) banned_name_suffixes: Vec<String>,
    /// Sanctioned owners of forbidden crates: external crates allowed to depend on them,
    /// keyed by the forbidden crate.
    #[serde(default)]
    pub(crate) external_parents: BTreeMap<String, Vec<String>>,
    /// Accepted violations, each with its reason.
    #[serde(default)]
    pub(crate) exceptions: Vec<Exception>,
}

/// One layer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Layer {
    /// Short name, used in headers and messages (`drivers`).
    pub(crate) name: String,
    /// `L<n>` places the layer on the stack (lower numbers sit higher); any other word
    /// (`dev`, `tooling`) is the level of a side layer.
    pub(crate) level: String,
    /// The workspace crates in this layer.
    pub(crate) crates: Vec<String>,
    /// Crates above may not skip it to reach below it.
    #[serde(default)]
    pub(crate) closed: bool,
    /// Off the stack: reachable only by layers that list it in `also_uses`, and using only
    /// what its own `also_uses` lists.
    #[serde(default)]
    pub(crate) side: bool,
    /// May be depended on from `[dev-dependencies]` only, by any layer.
    #[serde(default)]
    pub(crate) dev_only: bool,
    /// Neither depends on nor is depended on by any other workspace crate.
    #[serde(default)]
    pub(crate) isolated: bool,
    /// Crates of this layer may depend on each other (default: they are independent).
    #[serde(default)]
    pub(crate) siblings_may_depend: bool,
    /// Side layers this layer may use besides the stack below it (a side layer may list any
    /// layer).
    #[serde(default)]
    pub(crate) also_uses: Vec<String>,
    /// External crates this layer must not reach through normal dependencies.
    #[serde(default)]
    pub(crate) forbidden_external: Vec<String>,
    /// Source-level backstops to run on the layer's code (see [`SOURCE_RULES`]).
    #[serde(default)]
    pub(crate) source_rules: Vec<String>,
}

/// One accepted violation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Exception {
    /// The rule id as printed in the report.
    pub(crate) rule: String,
    /// The crate the violation is reported on.
    #[serde(rename = "crate")]
    pub(crate) krate: String,
    /// What the violation names: the dependency, the forbidden crate, the file or the name.
    pub(crate) target: String,
    /// Why this is acceptable; required.
    #[serde(default)]
    pub(crate) reason: String,
}

/// The source rules the linter knows, and what each looks for.
pub(crate) const SOURCE_RULES: &[(&str, &str)] = &[
    (
        "transaction-control",
        "begin/commit/rollback calls, BEGIN/COMMIT/ROLLBACK strings",
    ),
    (
        "raw-sql",
        "SQL statements in string literals, calls that run raw SQL",
    ),
];

impl Layer {
    /// The stack position (`L5` → 5), or `None` for a side layer's level.
    pub(crate) fn rank(&self) -> Option<u32> {
        self.level.strip_prefix('L')?.parse().ok()
    }

    /// `L5 engines`, as messages name a layer.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.level, self.name)
    }

    /// Whether the layer runs the source rule `rule`.
    pub(crate) fn runs(&self, rule: &str) -> bool {
        self.source_rules.iter().any(|r| r == rule)
    }
}

impl LayerTable {
    /// Reads the table out of `[workspace.metadata]`.
    pub(crate) fn from_metadata(metadata: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = metadata.and_then(|m| m.get("layers")) else {
            return Err("the root Cargo.toml has no [workspace.metadata.layers] table".into());
        };
        serde_json::from_value(value.clone())
            .map_err(|e| format!("[workspace.metadata.layers] is malformed: {e}"))
    }

    /// The layer holding `krate`, if any.
    pub(crate) fn layer_of(&self, krate: &str) -> Option<&Layer> {
        self.layers
            .iter()
            .find(|l| l.crates.iter().any(|c| c == krate))
    }

    /// The layer named `name`.
    pub(crate) fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Problems with the table itself, each with the line of the entry at fault. `members`
    /// are the workspace's crate names: the table must not name crates that do not exist.
    pub(crate) fn problems(
        &self,
        members: &BTreeSet<&str>,
        lines: &TableLines,
    ) -> Vec<(usize, String)> {
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        let mut homes: BTreeMap<&str, &str> = BTreeMap::new();
        let mut ranks: BTreeMap<u32, &str> = BTreeMap::new();
        for (index, layer) in self.layers.iter().enumerate() {
            let at = |key: &str| lines.layer_key(index, key);
            let mut problem = |key: &str, message: String| problems.push((at(key), message));
            let name = &layer.name;
            if !names.insert(name.as_str()) {
                problem("name", format!("layer `{name}` is declared twice"));
            }
            match layer.rank() {
                Some(rank) if !layer.side => {
                    if let Some(other) = ranks.insert(rank, name) {
                        problem(
                            "level",
                            format!(
                                "layers `{other}` and `{name}` share level {}; a stack level holds one layer",
                                layer.level
                            ),
                        );
                    }
                }
                Some(_) => {}
                None if !layer.side => problem(
                    "level",
                    format!(
                        "layer `{name}` has level `{}`, which is not `L<number>`; only side layers (side = true) sit off the stack",
                        layer.level
                    ),
                ),
                None => {}
            }
            for krate in &layer.crates {
                if let Some(other) = homes.insert(krate, name) {
                    problem(
                        "crates",
                        format!("crate `{krate}` is in two layers: `{other}` and `{name}`"),
                    );
                }
                if !members.contains(krate.as_str()) {
                    problem(
                        "crates",
                        format!("layer `{name}` lists `{krate}`, which is not a workspace member"),
                    );
                }
            }
            if layer.isolated && !layer.also_uses.is_empty() {
                problem(
                    "also_uses",
                    format!("layer `{name}` is isolated, so it cannot have also_uses"),
                );
            }
            for used in &layer.also_uses {
                match self.layer(used) {
                    None => problem(
                        "also_uses",
                        format!("layer `{name}` lists unknown layer `{used}` in also_uses"),
                    ),
                    Some(target) if target.name == *name => problem(
                        "also_uses",
                        format!("layer `{name}` lists itself in also_uses"),
                    ),
                    Some(target) if target.isolated => problem(
                        "also_uses",
                        format!(
                            "layer `{name}` lists `{used}` in also_uses, but `{used}` is isolated"
                        ),
                    ),
                    Some(target) if !target.side && !layer.side => problem(
                        "also_uses",
                        format!(
                            "stack layer `{name}` lists stack layer `{used}` in also_uses; stack edges follow the levels (use an exception for a one-off)"
                        ),
                    ),
                    Some(_) => {}
                }
            }
            for rule in &layer.source_rules {
                if !SOURCE_RULES.iter().any(|(known, _)| known == rule) {
                    let known: Vec<&str> = SOURCE_RULES.iter().map(|(id, _)| *id).collect();
                    problem(
                        "source_rules",
                        format!(
                            "layer `{name}` names unknown source rule `{rule}` (known: {})",
                            known.join(", ")
                        ),
                    );
                }
            }
            for forbidden in &layer.forbidden_external {
                if members.contains(forbidden.as_str()) {
                    problem(
                        "forbidden_external",
                        format!(
                            "layer `{name}` lists workspace crate `{forbidden}` in forbidden_external; layer edges govern workspace crates"
                        ),
                    );
                }
            }
        }
        for suffix in &self.banned_name_suffixes {
            if suffix.trim_matches('_').is_empty() {
                problems.push((
                    lines.key("banned_name_suffixes"),
                    format!("banned name suffix `{suffix}` would ban every name"),
                ));
            }
        }
        let forbidden: BTreeSet<&str> = self
            .layers
            .iter()
            .flat_map(|l| &l.forbidden_external)
            .map(String::as_str)
            .collect();
        for banned in self.external_parents.keys() {
            if !forbidden.contains(banned.as_str()) {
                problems.push((
                    lines.external_parents,
                    format!("external_parents names `{banned}`, which no layer forbids"),
                ));
            }
        }
        problems
    }
}

/// Where the parts of the table sit in the root `Cargo.toml`, for the report.
#[derive(Debug, Default)]
pub(crate) struct TableLines {
    /// The `[workspace.metadata.layers]` header (1 when absent).
    pub(crate) table: usize,
    /// The `[workspace.metadata.layers.external_parents]` header (else the table's).
    pub(crate) external_parents: usize,
    /// Keys of the main table: (key, line).
    table_keys: Vec<(String, usize)>,
    /// Each `[[…layer]]` entry: its header line and its keys.
    layers: Vec<(usize, Vec<(String, usize)>)>,
    /// Each `[[…exceptions]]` entry's header line.
    exceptions: Vec<usize>,
}

impl TableLines {
    /// Scans the root manifest. Entries written in another shape (inline arrays) fall back to
    /// the table's header line.
    pub(crate) fn scan(manifest: &str) -> Self {
        const ROOT: &str = "workspace.metadata.layers";
        let mut lines = TableLines {
            table: 1,
            external_parents: 0,
            ..TableLines::default()
        };
        enum Section {
            Other,
            Table,
            Layer,
        }
        let mut section = Section::Other;
        for (index, text) in manifest.lines().enumerate() {
            let line = index + 1;
            let text = text.trim();
            if let Some(header) = header(text) {
                section = Section::Other;
                match header.strip_prefix(ROOT) {
                    Some("") => {
                        lines.table = line;
                        section = Section::Table;
                    }
                    Some(".layer") => {
                        lines.layers.push((line, Vec::new()));
                        section = Section::Layer;
                    }
                    Some(".exceptions") => lines.exceptions.push(line),
                    Some(".external_parents") => lines.external_parents = line,
                    _ => {}
                }
                continue;
            }
            let Some(key) = key_of(text) else { continue };
            match section {
                Section::Table => lines.table_keys.push((key.to_owned(), line)),
                Section::Layer => {
                    if let Some((_, keys)) = lines.layers.last_mut() {
                        keys.push((key.to_owned(), line));
                    }
                }
                Section::Other => {}
            }
        }
        if lines.external_parents == 0 {
            lines.external_parents = lines.table;
        }
        lines
    }

    /// The line of `key` in layer entry `index`, else the entry's header, else the table's.
    pub(crate) fn layer_key(&self, index: usize, key: &str) -> usize {
        self.layers.get(index).map_or(self.table, |(header, keys)| {
            keys.iter()
                .find(|(k, _)| k == key)
                .map_or(*header, |(_, line)| *line)
        })
    }

    /// The line of `key` in the main table, else the table's header.
    pub(crate) fn key(&self, key: &str) -> usize {
        self.table_keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or(self.table, |(_, line)| *line)
    }

    /// The header line of exception `index`, else the table's.
    pub(crate) fn exception(&self, index: usize) -> usize {
        self.exceptions.get(index).copied().unwrap_or(self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[workspace]
members = ["a"]

[workspace.metadata.layers]
banned_name_suffixes = ["_service"]

[[workspace.metadata.layers.layer]]
name = "top"
level = "L1"
crates = ["a"]

[[workspace.metadata.layers.layer]]
name = "kit"
level = "dev"
also_uses = ["ghost"]
crates = ["a", "b"]

[workspace.metadata.layers.external_parents]
nothing = ["x"]

[[workspace.metadata.layers.exceptions]]
rule = "layer-edge"
crate = "a"
target = "b"
"#;

    fn table() -> LayerTable {
        let value: toml::Value = toml::from_str(MANIFEST).expect("valid TOML");
        let json = serde_json::to_value(&value["workspace"]["metadata"]).expect("JSON");
        LayerTable::from_metadata(Some(&json)).expect("a well-formed table")
    }

    #[test]
    fn lines_of_entries_and_keys() {
        let lines = TableLines::scan(MANIFEST);
        assert_eq!(lines.table, 4);
        assert_eq!(lines.key("banned_name_suffixes"), 5);
        assert_eq!(lines.layer_key(0, "level"), 9);
        assert_eq!(lines.layer_key(1, "also_uses"), 15);
        assert_eq!(lines.layer_key(1, "closed"), 12);
        assert_eq!(lines.layer_key(7, "name"), 4);
        assert_eq!(lines.external_parents, 18);
        assert_eq!(lines.exception(0), 21);
        assert_eq!(lines.exception(1), 4);
    }

    #[test]
    fn problems_point_at_their_entries() {
        let members = BTreeSet::from(["a"]);
        let problems = table().problems(&members, &TableLines::scan(MANIFEST));
        let expected = [
            (
                14,
                "layer `kit` has level `dev`, which is not `L<number>`; only side layers (side = true) sit off the stack",
            ),
            (16, "crate `a` is in two layers: `top` and `kit`"),
            (16, "layer `kit` lists `b`, which is not a workspace member"),
            (15, "layer `kit` lists unknown layer `ghost` in also_uses"),
            (
                18,
                "external_parents names `nothing`, which no layer forbids",
            ),
        ];
        let problems: Vec<(usize, &str)> = problems
            .iter()
            .map(|(line, m)| (*line, m.as_str()))
            .collect();
        assert_eq!(problems, expected);
    }

    #[test]
    fn a_missing_or_malformed_table_is_an_error() {
        assert!(LayerTable::from_metadata(None).is_err());
        let unknown_key = serde_json::json!({ "layers": { "layer": [], "colour": "red" } });
        let message = LayerTable::from_metadata(Some(&unknown_key))
            .err()
            .unwrap_or_default();
        assert!(message.contains("unknown field `colour`"), "{message}");
    }
}
