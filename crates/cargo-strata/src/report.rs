//! Violations, contracts and the exit code; `output` renders them.
//!
//! A contract is one rule applied to one crate (or to the workspace, for the table-wide
//! rules); it is broken when that pair has at least one violation.

use crate::rules::Rule;
use std::collections::BTreeSet;

/// One broken rule, located in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The steps that show it, first to last: crates (`fx-engines`, `orm`) and file
    /// locations (`crates/fx-engines/src/lib.rs:3`). Empty when the location says it all.
    pub chain: Vec<String>,
}

impl Violation {
    /// A violation of `rule` by `krate`, naming `target`, at `(file, line)`.
    pub(crate) fn new(
        rule: Rule,
        krate: &str,
        target: &str,
        (file, line): (&str, usize),
        message: String,
    ) -> Self {
        Violation {
            file: file.to_owned(),
            line,
            rule,
            krate: krate.to_owned(),
            target: target.to_owned(),
            message,
            chain: Vec::new(),
        }
    }

    /// The same, with the chain that shows it.
    pub(crate) fn with_chain(mut self, chain: Vec<String>) -> Self {
        self.chain = chain;
        self
    }

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

    /// Drops the violations and contracts of the rules `keep` refuses (rules switched off).
    pub(crate) fn retain_rules(&mut self, keep: impl Fn(Rule) -> bool) {
        self.violations.retain(|v| keep(v.rule));
        self.contracts.retain(|(rule, _)| keep(*rule));
    }

    /// Whether every contract is kept and every rule could run.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.notes.is_empty()
    }

    /// The process exit code for this report: 0 clean; 2 when the table or its exceptions
    /// are wrong (`invalid-table`, `invalid-exception`), since the check then says little;
    /// else 1 for violations, or for rules that could not run (an incomplete check is not a
    /// clean one).
    pub fn exit_code(&self) -> u8 {
        let configuration = self
            .violations
            .iter()
            .any(|v| matches!(v.rule, Rule::InvalidTable | Rule::InvalidException));
        if configuration {
            2
        } else if self.is_clean() {
            0
        } else {
            1
        }
    }
}
