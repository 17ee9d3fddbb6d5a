//! Rules read from the source text: `layer-header`, `banned-name` and the per-layer
//! `source-rule` backstops (`transaction-control`, `raw-sql`).
//!
//! The compiler already rejects most of what the backstops look for (engines cannot name
//! sea-orm; the drivers' handle has no `commit`); the text scan catches the rest, such as a
//! dependency added later that brings its own connection type.

use super::Context;
use super::report::Violation;
use std::path::{Path, PathBuf};

/// Calls that begin, commit or roll back a transaction.
const TRANSACTION_CONTROL: &[&str] = &[
    ".begin(",
    ".begin_with_config(",
    ".begin_with_options(",
    ".commit(",
    ".rollback(",
    ".transaction(",
    ".transaction_with_config(",
    "\"BEGIN",
    "\"COMMIT",
    "\"ROLLBACK",
];

/// Ways to hand the database a SQL string.
const RAW_SQL_CALLS: &[&str] = &[
    "Statement::from_string",
    "Statement::from_sql_and_values",
    "execute_unprepared",
    "query_all_raw",
    "query_one_raw",
    "execute_raw",
    "from_raw_sql",
];

/// Words that start a SQL statement inside a string literal.
const SQL_KEYWORDS: &[&str] = &[
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "DELETE ",
    "CREATE ",
    "ALTER ",
    "DROP ",
    "WITH ",
    "UPSERT ",
    "MERGE ",
    "TRUNCATE ",
];

/// Every `.rs` file under `path` (or `path` itself), sorted.
pub(super) fn rust_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.to_path_buf());
        }
        return files;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return files;
    };
    for entry in entries.flatten() {
        let child = entry.path();
        if child.is_dir() {
            files.extend(rust_files(&child));
        } else if child.extension().is_some_and(|e| e == "rs") {
            files.push(child);
        }
    }
    files.sort();
    files
}

/// Checks headers, banned names and the source backstops of every member.
pub(super) fn check(cx: &mut Context<'_>) {
    for (name, package) in cx.metadata.members() {
        let layer = cx.table.layer_of(name);
        if let (Some(layer), Some(root)) = (layer, package.root_source()) {
            cx.report.checked("layer-header", name);
            let expected = format!("//! Layer: {} — {}.", layer.level, layer.name);
            let first = std::fs::read_to_string(root)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_owned))
                .unwrap_or_default();
            if !first.starts_with(&expected) {
                cx.report.push(Violation {
                    file: cx.metadata.relative(root),
                    line: 1,
                    rule: "layer-header",
                    krate: name.to_owned(),
                    target: cx.metadata.relative(root),
                    message: format!("the crate root must start with `{expected} <role>`"),
                });
            }
        }

        cx.report.checked("banned-name", name);
        for suffix in &cx.table.banned_name_suffixes {
            if name.replace('-', "_").ends_with(suffix.as_str()) {
                cx.report.push(Violation {
                    file: cx.metadata.relative(&package.manifest_path),
                    line: 1,
                    rule: "banned-name",
                    krate: name.to_owned(),
                    target: name.to_owned(),
                    message: format!("crate name `{name}` ends with banned suffix `{suffix}`"),
                });
            }
        }
        let files = rust_files(&package.dir().join("src"));
        let rules = layer.map(|l| l.source_rules.clone()).unwrap_or_default();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let relative = cx.metadata.relative(&file);
            banned_names(cx, name, &relative, &file, &text);
            if !rules.is_empty() {
                cx.report.checked("source-rule", name);
                for (line, rule, found) in backstops(&text, &rules) {
                    cx.report.push(Violation {
                        file: relative.clone(),
                        line,
                        rule: "source-rule",
                        krate: name.to_owned(),
                        target: relative.clone(),
                        message: format!("{rule}: `{found}` is not allowed in this layer"),
                    });
                }
            }
        }
    }
}

fn banned_names(cx: &mut Context<'_>, krate: &str, relative: &str, file: &Path, text: &str) {
    let suffixes = cx.table.banned_name_suffixes.clone();
    for suffix in &suffixes {
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
        if stem
            .as_deref()
            .is_some_and(|s| s.ends_with(suffix.as_str()))
        {
            cx.report.push(Violation {
                file: relative.to_owned(),
                line: 1,
                rule: "banned-name",
                krate: krate.to_owned(),
                target: relative.to_owned(),
                message: format!("module file name ends with banned suffix `{suffix}`"),
            });
        }
        for (index, line) in text.lines().enumerate() {
            let code = strip_comment(line);
            let words: Vec<&str> = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                let [keyword, item] = pair else { continue };
                let is_item = matches!(
                    *keyword,
                    "fn" | "struct" | "enum" | "trait" | "mod" | "type" | "const" | "static"
                );
                let lowered = item.to_lowercase();
                let camel_suffix = suffix.trim_start_matches('_').to_lowercase();
                if is_item
                    && (item.ends_with(suffix.as_str())
                        || (lowered.ends_with(&camel_suffix) && lowered != camel_suffix))
                {
                    cx.report.push(Violation {
                        file: relative.to_owned(),
                        line: index + 1,
                        rule: "banned-name",
                        krate: krate.to_owned(),
                        target: relative.to_owned(),
                        message: format!("`{keyword} {item}` ends with banned suffix `{suffix}`"),
                    });
                }
            }
        }
    }
}

/// The code part of a line (a `//` outside a string ends it).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `(line, rule, matched text)` for each backstop hit outside comments and test modules.
pub(super) fn backstops(text: &str, rules: &[String]) -> Vec<(usize, &'static str, String)> {
    let transaction = rules.iter().any(|r| r == "transaction-control");
    let raw_sql = rules.iter().any(|r| r == "raw-sql");
    let mut hits = Vec::new();
    let mut test_depth: Option<i64> = None;
    let mut depth: i64 = 0;
    let mut pending_test = false;
    for (index, line) in text.lines().enumerate() {
        let code = strip_comment(line);
        let trimmed = code.trim();
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
        }
        let opens = code.matches('{').count() as i64;
        let closes = code.matches('}').count() as i64;
        if pending_test && opens > 0 && test_depth.is_none() {
            test_depth = Some(depth);
            pending_test = false;
        }
        let skipping = test_depth.is_some();
        depth += opens - closes;
        if let Some(start) = test_depth
            && depth <= start
        {
            test_depth = None;
        }
        if skipping || trimmed.starts_with("#[") {
            continue;
        }
        if transaction {
            for pattern in TRANSACTION_CONTROL {
                if code.contains(pattern) {
                    hits.push((index + 1, "transaction-control", pattern.to_string()));
                }
            }
        }
        if raw_sql {
            for pattern in RAW_SQL_CALLS {
                if code.contains(pattern) {
                    hits.push((index + 1, "raw-sql", pattern.to_string()));
                }
            }
            for literal in code.split('"').skip(1).step_by(2) {
                let upper = literal.trim_start().to_uppercase();
                if let Some(keyword) = SQL_KEYWORDS.iter().find(|k| upper.starts_with(*k)) {
                    hits.push((index + 1, "raw-sql", format!("\"{}…\"", keyword.trim())));
                }
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_transaction_control_outside_comments_and_tests() {
        let text = "fn a(t: T) {\n    t.commit().await;\n    // t.rollback()\n}\n\
                    #[cfg(test)]\nmod tests {\n    fn b() { x.begin(); }\n}\nfn c() { y.rollback(); }\n";
        let hits = backstops(text, &rules(&["transaction-control"]));
        let lines: Vec<usize> = hits.iter().map(|h| h.0).collect();
        assert_eq!(lines, vec![2, 9]);
    }

    #[test]
    fn finds_raw_sql_literals_and_calls() {
        let text =
            "let q = \"select * from t\";\nlet s = \"selection\";\ndb.execute_unprepared(x);\n";
        let hits = backstops(text, &rules(&["raw-sql"]));
        let lines: Vec<usize> = hits.iter().map(|h| h.0).collect();
        assert_eq!(lines, vec![1, 3]);
    }

    #[test]
    fn comment_stripping_respects_strings() {
        assert_eq!(
            strip_comment("let a = \"http://x\"; // c"),
            "let a = \"http://x\"; "
        );
    }
}
