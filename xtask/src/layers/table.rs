//! The layer table: `[workspace.metadata.layers]` in the root `Cargo.toml`, the one place that
//! says which crate sits in which layer and what each layer may use.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerTable {
    /// The layers, any order.
    #[serde(default, rename = "layer")]
    pub layers: Vec<Layer>,
    /// Name suffixes no crate, module, fn or type may carry (e.g. `_service`).
    #[serde(default)]
    pub banned_name_suffixes: Vec<String>,
    /// External crates allowed to depend on a forbidden crate, keyed by the forbidden crate.
    #[serde(default)]
    pub external_parents: BTreeMap<String, Vec<String>>,
    /// Accepted violations, each with its reason.
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

/// One layer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Short name, used in headers and messages (`drivers`).
    pub name: String,
    /// `L2`..`L9` for the stack; any other word (`dev`, `tooling`) for an off-stack layer.
    pub level: String,
    /// The workspace crates in this layer.
    pub crates: Vec<String>,
    /// Closed: crates above may not skip it to reach below it.
    #[serde(default)]
    pub closed: bool,
    /// Side layer: off the main stack; reachable only by layers that list it in `also_uses`.
    #[serde(default)]
    pub side: bool,
    /// May only be a dev-dependency.
    #[serde(default)]
    pub dev_only: bool,
    /// Neither depends on nor is depended on by any other workspace crate.
    #[serde(default)]
    pub isolated: bool,
    /// Side layers this layer may use besides the next one down.
    #[serde(default)]
    pub also_uses: Vec<String>,
    /// External crates this layer must not reach.
    #[serde(default)]
    pub forbidden_external: Vec<String>,
    /// Source-level backstops: `transaction-control`, `raw-sql`.
    #[serde(default)]
    pub source_rules: Vec<String>,
}

/// One accepted violation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The rule id as printed in the report.
    pub rule: String,
    /// The crate the violation is reported on.
    #[serde(rename = "crate")]
    pub krate: String,
    /// The dependency, chain end or file the violation names.
    pub target: String,
    /// Why this is acceptable; required.
    #[serde(default)]
    pub reason: String,
}

/// The source rules the linter knows.
pub const SOURCE_RULES: &[&str] = &["transaction-control", "raw-sql"];

impl Layer {
    /// The stack position (`L5` → 5), or `None` for off-stack layers.
    pub fn rank(&self) -> Option<u32> {
        self.level.strip_prefix('L')?.parse().ok()
    }
}

impl LayerTable {
    /// Reads the table out of `[workspace.metadata]`.
    pub fn from_metadata(metadata: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = metadata.and_then(|m| m.get("layers")) else {
            return Err("the root Cargo.toml has no [workspace.metadata.layers] table".into());
        };
        serde_json::from_value(value.clone())
            .map_err(|e| format!("[workspace.metadata.layers] is malformed: {e}"))
    }

    /// The layer holding `krate`, if any.
    pub fn layer_of(&self, krate: &str) -> Option<&Layer> {
        self.layers
            .iter()
            .find(|l| l.crates.iter().any(|c| c == krate))
    }

    /// The layer named `name`.
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Problems with the table itself, as messages.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen_names = BTreeMap::new();
        let mut seen_crates: BTreeMap<&str, &str> = BTreeMap::new();
        for layer in &self.layers {
            if seen_names.insert(layer.name.as_str(), ()).is_some() {
                problems.push(format!("layer `{}` is declared twice", layer.name));
            }
            for krate in &layer.crates {
                if let Some(other) = seen_crates.insert(krate, &layer.name) {
                    problems.push(format!(
                        "crate `{krate}` is in two layers: `{other}` and `{}`",
                        layer.name
                    ));
                }
            }
            for used in &layer.also_uses {
                match self.layer(used) {
                    None => problems.push(format!(
                        "layer `{}` lists unknown layer `{used}` in also_uses",
                        layer.name
                    )),
                    Some(target) if !target.side => problems.push(format!(
                        "layer `{}` lists `{used}` in also_uses, but `{used}` is not a side layer",
                        layer.name
                    )),
                    Some(_) => {}
                }
            }
            for rule in &layer.source_rules {
                if !SOURCE_RULES.contains(&rule.as_str()) {
                    problems.push(format!(
                        "layer `{}` names unknown source rule `{rule}` (known: {})",
                        layer.name,
                        SOURCE_RULES.join(", ")
                    ));
                }
            }
            if layer.rank().is_none() && !layer.side {
                problems.push(format!(
                    "layer `{}` has off-stack level `{}` but is not a side layer",
                    layer.name, layer.level
                ));
            }
        }
        problems
    }
}
