//! `layer-header`: each crate root starts with `//! Layer: <level> — <name>. <role>`, so a
//! reader of any crate sees where it sits before reading a line of code.
//!
//! The header belongs to the package's library root; a package without a library carries it
//! on each binary root. A binary next to a library is that library's shell and needs none.

use super::Rule;
use crate::Workspace;
use crate::report::{Report, Violation};

/// Checks the first line of every member's crate roots.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    for (name, package) in &ws.graph.members {
        let Some(layer) = ws.table.layer_of(name) else {
            continue;
        };
        report.checked(Rule::LayerHeader, name);
        let expected = ws.table.header_of(layer);
        for root in package.header_roots() {
            let text = std::fs::read_to_string(root).unwrap_or_default();
            let first = text.lines().next().unwrap_or_default();
            if first.starts_with(&expected) {
                continue;
            }
            let found = if first.trim().is_empty() {
                "an empty line".to_owned()
            } else {
                format!("`{}`", shorten(first))
            };
            report.push(Violation {
                chain: Vec::new(),
                file: ws.relative(root),
                line: 1,
                rule: Rule::LayerHeader,
                krate: (*name).to_owned(),
                target: ws.relative(root),
                message: format!(
                    "the crate root must start with `{expected} <role>`; found {found}"
                ),
            });
        }
    }
}

/// At most 60 characters of `line`, for a message.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}
