//! The report's output formats: lines for people, JSON for tools, SARIF for code-scanning
//! dashboards, and GitHub Actions workflow commands for annotations on a pull request.
//!
//! SARIF is written with `serde_json` rather than a SARIF crate: the report uses seven of the
//! format's fields, and `serde-sarif` (its runner-up) would add a generated type per schema
//! object and a builder crate to every host's xtask build.

use crate::report::{Report, Violation};
use crate::rules::Rule;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// The version of the JSON report's schema (`"version"` in it). It changes only when a field
/// changes meaning or disappears; new fields may appear within a version.
pub const JSON_VERSION: u32 = 1;

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// One line per violation, `file:line: rule: message`, then the summary line.
    #[default]
    Text,
    /// One JSON document (schema version [`JSON_VERSION`]), described in the README.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards (GitHub, GitLab, Azure DevOps).
    Sarif,
    /// GitHub Actions workflow commands (`::error file=…,line=…,title=…::message`): an
    /// annotation per violation on the pull request, then the summary line.
    Github,
}

impl Format {
    /// Every format, with the name the command line takes.
    pub const ALL: [(Format, &'static str); 4] = [
        (Format::Text, "text"),
        (Format::Json, "json"),
        (Format::Sarif, "sarif"),
        (Format::Github, "github"),
    ];

    /// The format named `name` (`text`, `json`, `sarif`, `github`).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|(_, n)| *n == name)
            .map(|(format, _)| format)
    }
}

impl Report {
    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.to_text(),
            Format::Json => self.to_json(),
            Format::Sarif => self.to_sarif(),
            Format::Github => self.to_github(),
        }
    }

    /// One line per violation, `file:line: rule: message`, then the summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(out, "{}:{}: {}: {}", v.file, v.line, v.rule, v.message);
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// `N contracts kept, M broken (K violations)`.
    pub fn summary(&self) -> String {
        format!(
            "{} contracts kept, {} broken ({} {})",
            self.kept(),
            self.broken(),
            self.violations.len(),
            if self.violations.len() == 1 {
                "violation"
            } else {
                "violations"
            }
        )
    }

    /// The report as one JSON document:
    /// `{"version": 1, "tool": {"name", "version"}, "contracts": {"kept", "broken"},
    /// "violations": [{"file", "line", "rule", "crate", "target", "message", "chain"}],
    /// "notes": [...]}`.
    pub fn to_json(&self) -> String {
        let violations: Vec<Value> = self.violations.iter().map(violation_json).collect();
        let value = json!({
            "version": JSON_VERSION,
            "tool": { "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") },
            "contracts": { "kept": self.kept(), "broken": self.broken() },
            "violations": violations,
            "notes": self.notes,
        });
        format!("{value:#}\n")
    }

    /// The report as a SARIF 2.1.0 log: one run, every rule described, one result per
    /// violation located relative to the workspace root (`%SRCROOT%`), notes as
    /// notifications.
    pub fn to_sarif(&self) -> String {
        let rules: Vec<Value> = Rule::ALL
            .iter()
            .map(|rule| {
                json!({
                    "id": rule.id(),
                    "shortDescription": { "text": rule.summary() },
                    "defaultConfiguration": { "level": "error" },
                })
            })
            .collect();
        let results: Vec<Value> = self
            .violations
            .iter()
            .map(|v| {
                let index = Rule::ALL.iter().position(|r| *r == v.rule).unwrap_or(0);
                let mut message = v.message.clone();
                if !v.chain.is_empty() {
                    let _ = write!(message, " (chain: {})", v.chain.join(" -> "));
                }
                json!({
                    "ruleId": v.rule.id(),
                    "ruleIndex": index,
                    "level": "error",
                    "message": { "text": message },
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": { "uri": located_file(v), "uriBaseId": "%SRCROOT%" },
                            "region": { "startLine": v.line.max(1) },
                        }
                    }],
                    "properties": { "crate": v.krate, "target": v.target, "chain": v.chain },
                })
            })
            .collect();
        let notifications: Vec<Value> = self
            .notes
            .iter()
            .map(|note| json!({ "level": "warning", "message": { "text": note } }))
            .collect();
        let value = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": {
                    "name": env!("CARGO_PKG_NAME"),
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "rules": rules,
                }},
                "results": results,
                "invocations": [{
                    "executionSuccessful": self.notes.is_empty(),
                    "toolExecutionNotifications": notifications,
                }],
            }],
        });
        format!("{value:#}\n")
    }

    /// GitHub Actions workflow commands: an `::error` per violation, a `::warning` per note,
    /// then the summary line.
    pub fn to_github(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(
                out,
                "::error file={},line={},title={}::{}",
                escape_property(located_file(v)),
                v.line.max(1),
                escape_property(v.rule.id()),
                escape_data(&v.message)
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "::warning title=cargo-strata::{}", escape_data(note));
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }
}

fn violation_json(v: &Violation) -> Value {
    json!({
        "file": v.file,
        "line": v.line,
        "rule": v.rule.id(),
        "crate": v.krate,
        "target": v.target,
        "message": v.message,
        "chain": v.chain,
    })
}

/// The file a dashboard shows a violation on: workspace-wide problems sit on the root
/// manifest.
fn located_file(v: &Violation) -> &str {
    if v.file.is_empty() {
        "Cargo.toml"
    } else {
        &v.file
    }
}

/// A workflow command's message: `%`, CR and LF escaped, as the runner expects.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: the message escapes plus `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_what_the_runner_parses() {
        assert_eq!(escape_data("50% of a\nb"), "50%25 of a%0Ab");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn every_format_has_a_name() {
        for (format, name) in Format::ALL {
            assert_eq!(Format::from_name(name), Some(format));
        }
        assert_eq!(Format::from_name("xml"), None);
    }
}
