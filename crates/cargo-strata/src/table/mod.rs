//! The layer table: `[workspace.metadata.layers]` in the root `Cargo.toml` (or `layers.toml`
//! beside it), the one place that says which crate sits in which layer, what each layer may
//! use, which source rules exist and which rules run. This module finds and reads it, and
//! finds what is wrong with the table itself (rule `invalid-table`).

mod source;

pub(crate) use source::{TableLines, TableSource};

use crate::rules::Rule;
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
    /// Rule switches by rule id (`layer-header = false`); a rule not named here runs.
    #[serde(default)]
    pub(crate) rules: BTreeMap<String, bool>,
    /// Source rules defined by the table, by name; they add to (or replace) the built-in
    /// `transaction-control` and `raw-sql`.
    #[serde(default)]
    pub(crate) source_rules: BTreeMap<String, SourceRule>,
    /// The first line every crate root must start with, `{level}` and `{name}` standing for
    /// its layer's (rule `layer-header`).
    #[serde(default = "default_header")]
    pub(crate) header: String,
}

/// The header `layer-header` wants when the table names none (`cargo strata init` shows it).
pub(crate) fn default_header() -> String {
    "//! Layer: {level} — {name}.".to_owned()
}

/// One source rule: what to look for in a layer's non-test code, and where.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceRule {
    /// Built-in detectors (see [`DETECTORS`]).
    #[serde(default)]
    pub(crate) detect: Vec<String>,
    /// Function or method names whose calls match (`execute_unprepared`).
    #[serde(default)]
    pub(crate) calls: Vec<String>,
    /// Paths whose use matches (`std::process::Command`), as written in code: a path matches
    /// where its segments appear in order joined by `::`, so `std::fs` matches `std::fs::read`.
    #[serde(default)]
    pub(crate) paths: Vec<String>,
    /// The layers allowed to do it; the rule then runs on every other layer. Without it, the
    /// rule runs on the layers listing it in their `source_rules`.
    #[serde(default)]
    pub(crate) only_in: Option<Vec<String>>,
    /// What the violation says the layer must not do (`must not run SQL`).
    #[serde(default)]
    pub(crate) message: String,
}

/// The built-in detectors a source rule's `detect` may name, and what each finds.
pub(crate) const DETECTORS: &[(&str, &str)] = &[
    (
        "transaction-calls",
        "calls of begin, commit, rollback, transaction, savepoint and their variants",
    ),
    (
        "transaction-statements",
        "string literals that are BEGIN/COMMIT/ROLLBACK/SAVEPOINT/START TRANSACTION statements",
    ),
    (
        "sql-statements",
        "string literals that read as SQL statements (`select … from`, `insert into`, …)",
    ),
    (
        "raw-sql-calls",
        "calls that hand a database a SQL string (execute_unprepared, Statement::from_string, …)",
    ),
];

/// The source rules every table has unless it redefines them.
pub(crate) fn builtin_source_rules() -> BTreeMap<String, SourceRule> {
    let rule = |detect: &[&str], message: &str| SourceRule {
        detect: detect.iter().map(|d| (*d).to_owned()).collect(),
        message: message.to_owned(),
        ..SourceRule::default()
    };
    BTreeMap::from([
        (
            "transaction-control".to_owned(),
            rule(
                &["transaction-calls", "transaction-statements"],
                "must not begin, commit or roll back transactions",
            ),
        ),
        (
            "raw-sql".to_owned(),
            rule(&["sql-statements", "raw-sql-calls"], "must not run SQL"),
        ),
    ])
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
    /// Lower layers whose items this layer may re-export to the layers above it (rule
    /// `reexport`): the vocabulary a facade layer hands up on purpose.
    #[serde(default)]
    pub(crate) reexports: Vec<String>,
    /// Source-level backstops to run on the layer's code (names from [`LayerTable::source_rules`]).
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

impl Layer {
    /// The stack position (`L5` → 5), or `None` for a side layer's level.
    pub(crate) fn rank(&self) -> Option<u32> {
        self.level.strip_prefix('L')?.parse().ok()
    }

    /// `L5 engines`, as messages name a layer.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.level, self.name)
    }
}

impl LayerTable {
    /// Reads the table out of `[workspace.metadata]`.
    pub(crate) fn from_metadata(metadata: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = metadata.and_then(|m| m.get("layers")) else {
            return Err(
                "the root Cargo.toml has no [workspace.metadata.layers] table, and \
                        there is no layers.toml beside it (`cargo strata init` writes one)"
                    .into(),
            );
        };
        serde_json::from_value(value.clone())
            .map_err(|e| format!("[workspace.metadata.layers] is malformed: {e}"))
            .map(LayerTable::with_builtins)
    }

    /// The table's own source rules over the built-in ones.
    pub(crate) fn with_builtins(mut self) -> Self {
        let mut rules = builtin_source_rules();
        rules.append(&mut self.source_rules);
        self.source_rules = rules;
        self
    }

    /// Whether `rule` runs (the table does not switch it off).
    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        self.rules.get(rule.id()).copied().unwrap_or(true)
    }

    /// The source rules that run on `layer`, by name, in name order.
    pub(crate) fn source_rules_of<'t>(
        &'t self,
        layer: &'t Layer,
    ) -> impl Iterator<Item = (&'t str, &'t SourceRule)> + 't {
        self.source_rules.iter().filter_map(move |(name, rule)| {
            let listed = layer.source_rules.iter().any(|r| r == name);
            let elsewhere = rule
                .only_in
                .as_ref()
                .is_some_and(|allowed| !allowed.contains(&layer.name));
            (listed || elsewhere).then_some((name.as_str(), rule))
        })
    }

    /// The header line `layer`'s crate roots must start with.
    pub(crate) fn header_of(&self, layer: &Layer) -> String {
        self.header
            .replace("{level}", &layer.level)
            .replace("{name}", &layer.name)
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
            for handed in &layer.reexports {
                if self.layer(handed).is_none() {
                    problem(
                        "reexports",
                        format!("layer `{name}` lists unknown layer `{handed}` in reexports"),
                    );
                }
            }
            for rule in &layer.source_rules {
                if !self.source_rules.contains_key(rule) {
                    let known: Vec<&str> = self.source_rules.keys().map(String::as_str).collect();
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
        for id in self.rules.keys() {
            if Rule::from_id(id).is_none() {
                let known: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
                problems.push((
                    lines.rules,
                    format!(
                        "[rules] names unknown rule `{id}` (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        for (name, rule) in &self.source_rules {
            for detector in &rule.detect {
                if !DETECTORS.iter().any(|(known, _)| known == detector) {
                    let known: Vec<&str> = DETECTORS.iter().map(|(id, _)| *id).collect();
                    problems.push((
                        lines.source_rule(name),
                        format!(
                            "source rule `{name}` names unknown detector `{detector}` (known: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
            if rule.detect.is_empty() && rule.calls.is_empty() && rule.paths.is_empty() {
                problems.push((
                    lines.source_rule(name),
                    format!(
                        "source rule `{name}` looks for nothing: give it detect, calls or paths"
                    ),
                ));
            }
            for layer in rule.only_in.iter().flatten() {
                match self.layer(layer) {
                    None => problems.push((
                        lines.source_rule(name),
                        format!("source rule `{name}` lists unknown layer `{layer}` in only_in"),
                    )),
                    Some(found) if found.source_rules.contains(name) => problems.push((
                        lines.source_rule(name),
                        format!(
                            "layer `{layer}` lists source rule `{name}`, whose only_in allows it there"
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "workspace.metadata.layers";

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
        let lines = TableLines::scan(MANIFEST, ROOT);
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
        let problems = table().problems(&members, &TableLines::scan(MANIFEST, ROOT));
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
