//! Violations, contracts and the two output formats.

use super::table::Exception;
use serde_json::json;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One broken rule, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// File relative to the workspace root.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Rule id (`layer-edge`, `forbidden-external`, ...).
    pub rule: &'static str,
    /// The crate the violation belongs to (empty for table-wide problems).
    pub krate: String,
    /// What it names: a dependency, a chain end or a file; what exceptions match on.
    pub target: String,
    /// The explanation.
    pub message: String,
}

/// Everything one run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Every violation, in report order once [`Report::finish`] ran.
    pub violations: Vec<Violation>,
    /// Contracts checked, as (rule, crate) pairs.
    contracts: BTreeSet<(&'static str, String)>,
}

impl Report {
    /// Records that `rule` was checked on `krate`.
    pub fn checked(&mut self, rule: &'static str, krate: &str) {
        self.contracts.insert((rule, krate.to_owned()));
    }

    /// Records a violation (and the contract it breaks).
    pub fn push(&mut self, violation: Violation) {
        self.contracts
            .insert((violation.rule, violation.krate.clone()));
        self.violations.push(violation);
    }

    /// Drops violations an exception accepts and reports exceptions that are invalid or
    /// match nothing; then sorts.
    pub fn finish(&mut self, exceptions: &[Exception], table_file: &str, table_line: usize) {
        let mut used = vec![false; exceptions.len()];
        self.violations.retain(|v| {
            let accepted = exceptions.iter().enumerate().find(|(_, e)| {
                !e.reason.trim().is_empty()
                    && e.rule == v.rule
                    && e.krate == v.krate
                    && e.target == v.target
            });
            match accepted {
                Some((index, _)) => {
                    used[index] = true;
                    false
                }
                None => true,
            }
        });
        for (exception, used) in exceptions.iter().zip(used) {
            let label = format!(
                "exception {{ rule = {}, crate = {}, target = {} }}",
                exception.rule, exception.krate, exception.target
            );
            if exception.reason.trim().is_empty() {
                self.push(Violation {
                    file: table_file.to_owned(),
                    line: table_line,
                    rule: "invalid-exception",
                    krate: exception.krate.clone(),
                    target: exception.target.clone(),
                    message: format!("{label} has no reason"),
                });
            } else if !used {
                self.push(Violation {
                    file: table_file.to_owned(),
                    line: table_line,
                    rule: "stale-exception",
                    krate: exception.krate.clone(),
                    target: exception.target.clone(),
                    message: format!("{label} matches no violation; remove it"),
                });
            }
        }
        self.violations.sort();
        self.violations.dedup();
    }

    /// Contracts with no violation.
    pub fn kept(&self) -> usize {
        self.contracts.len() - self.broken()
    }

    /// Contracts with at least one violation.
    pub fn broken(&self) -> usize {
        self.violations
            .iter()
            .map(|v| (v.rule, v.krate.as_str()))
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// One line per violation, `file:line: rule: message`, then the summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(out, "{}:{}: {}: {}", v.file, v.line, v.rule, v.message);
        }
        let _ = writeln!(
            out,
            "{} contracts kept, {} broken ({} violations)",
            self.kept(),
            self.broken(),
            self.violations.len()
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
                    "file": v.file, "line": v.line, "rule": v.rule, "crate": v.krate,
                    "target": v.target, "message": v.message,
                })
            })
            .collect();
        let value = json!({
            "kept": self.kept(),
            "broken": self.broken(),
            "violations": violations,
        });
        format!("{value:#}\n")
    }
}
