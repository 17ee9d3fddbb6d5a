//! Violations, contracts and the two output formats.
//!
//! A contract is one rule applied to one crate (or to the workspace, for the table-wide
//! rules); it is broken when that pair has at least one violation.

use super::rules::Rule;
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One broken rule, located in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// File relative to the workspace root, `/`-separated.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The rule.
    pub rule: Rule,
    /// The crate the violation belongs to (empty for workspace-wide problems).
    pub krate: String,
    /// What it names, and what an exception matches on: the dependency, the forbidden crate,
    /// the file or the banned name.
    pub target: String,
    /// The explanation.
    pub message: String,
}

impl Violation {
    /// The report order: by file, line, rule id, then the rest.
    fn sort_key(&self) -> (&str, usize, &str, &str, &str, &str) {
        (
            &self.file,
            self.line,
            self.rule.id(),
            &self.krate,
            &self.target,
            &self.message,
        )
    }
}

/// Everything one run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Every violation, in report order once the run has finished.
    pub violations: Vec<Violation>,
    /// Why some rules could not run (printed as warnings, never in the violation lines).
    pub notes: Vec<String>,
    /// Contracts checked, as (rule, crate) pairs.
    contracts: BTreeSet<(Rule, String)>,
}

impl Report {
    /// Records that `rule` was checked on `krate` (empty for the whole workspace).
    pub(crate) fn checked(&mut self, rule: Rule, krate: &str) {
        self.contracts.insert((rule, krate.to_owned()));
    }

    /// Records a violation, and the contract it breaks.
    pub(crate) fn push(&mut self, violation: Violation) {
        self.checked(violation.rule, &violation.krate);
        self.violations.push(violation);
    }

    /// Puts the violations in report order and drops duplicates (a crate declared twice for
    /// two targets breaks the same rule once).
    pub(crate) fn sort(&mut self) {
        self.violations
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.violations.dedup();
    }

    /// The number of contracts checked.
    pub fn contracts(&self) -> usize {
        self.contracts.len()
    }

    /// Contracts with at least one violation.
    pub fn broken(&self) -> usize {
        self.violations
            .iter()
            .map(|v| (v.rule, v.krate.as_str()))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Contracts with no violation.
    pub fn kept(&self) -> usize {
        self.contracts().saturating_sub(self.broken())
    }

    /// One line per violation, `file:line: rule: message`, then the summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(out, "{}:{}: {}: {}", v.file, v.line, v.rule, v.message);
        }
        let _ = writeln!(
            out,
            "{} contracts kept, {} broken ({} {})",
            self.kept(),
            self.broken(),
            self.violations.len(),
            if self.violations.len() == 1 {
                "violation"
            } else {
                "violations"
            }
        );
        out
    }

    /// The same as JSON, for other tools.
    pub fn to_json(&self) -> String {
        let violations: Vec<_> = self
            .violations
            .iter()
            .map(|v| {
                json!({
                    "file": v.file,
                    "line": v.line,
                    "rule": v.rule.id(),
                    "crate": v.krate,
                    "target": v.target,
                    "message": v.message,
                })
            })
            .collect();
        let value = json!({
            "contracts": { "kept": self.kept(), "broken": self.broken() },
            "violations": violations,
            "notes": self.notes,
        });
        format!("{value:#}\n")
    }
}
