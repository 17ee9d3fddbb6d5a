//! `source-rule`: per-layer backstops read from the tokens of non-test product code.
//!
//! The compiler already rejects most of what they look for (engines cannot name sea-orm; the
//! handle drivers get has no `commit`); the scan catches what slips past the types, such as a
//! dependency added later that brings its own connection, or SQL in a string handed on.
//!
//! - `transaction-control`: a call of `begin`, `commit`, `rollback`, `transaction` or their
//!   variants (a method call or a path call, not a definition), and string literals that are
//!   `BEGIN`/`COMMIT`/`ROLLBACK`/`SAVEPOINT`/`START TRANSACTION` statements.
//! - `raw-sql`: string literals that read as SQL statements, and the calls that run raw SQL.
//!   A literal is SQL when its first word is a statement keyword and it has the statement's
//!   shape (`select … from`, `insert into`, `update … set`, `delete from`, `create table`,
//!   …) or is written in upper case with more words after it (`SELECT 1`); "update failed"
//!   and "Delete the owner" are not SQL.
//!
//! A procedural macro's code runs in its users: the string literals and calls it emits are
//! compiled into the crates that use it. So the rules of a layer also run on the product
//! code of each workspace proc-macro crate its crates depend on (normal dependencies), and a
//! hit is reported on the using crate with the chain `using crate -> macro -> file:line`.
//! The scan cannot tell what a macro emits from what it only uses while expanding (an error
//! message, a parser's keyword): a literal of the latter kind is what exceptions are for,
//! naming the using crate and the macro's file.

use super::Rule;
use crate::Workspace;
use crate::lexer::{Token, TokenKind};
use crate::metadata::EdgeKind;
use crate::report::{Report, Violation};
use crate::sources::{PackageSources, SourceFile};
use crate::table::SourceRule;

/// Calls that begin, commit or roll back a transaction.
const TRANSACTION_CALLS: &[&str] = &[
    "begin",
    "begin_with_config",
    "begin_with_options",
    "commit",
    "rollback",
    "transaction",
    "transaction_with_config",
    "transaction_async",
    "savepoint",
];

/// Statements that control a transaction, as the first words of a string literal.
const TRANSACTION_STATEMENTS: &[&[&str]] = &[
    &["BEGIN"],
    &["COMMIT"],
    &["ROLLBACK"],
    &["SAVEPOINT"],
    &["RELEASE", "SAVEPOINT"],
    &["START", "TRANSACTION"],
    &["END", "TRANSACTION"],
];

/// Calls that hand the database a SQL string (`from_string` and `from_sql_and_values` only
/// as `Statement::…`).
const RAW_SQL_CALLS: &[&str] = &[
    "execute_unprepared",
    "from_string",
    "from_sql_and_values",
    "query_all_raw",
    "query_one_raw",
    "execute_raw",
    "from_raw_sql",
    "raw_sql",
];

/// Checks the source rules that run on each member's layer.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    for name in ws.graph.members.keys() {
        let Some(layer) = ws.table.layer_of(name) else {
            continue;
        };
        let rules: Vec<(&str, &SourceRule)> = ws.table.source_rules_of(layer).collect();
        if rules.is_empty() {
            continue;
        }
        let Some(sources) = ws.sources.get(name) else {
            continue;
        };
        report.checked(Rule::SourceRule, name);
        let consequence = |rule: &str| {
            let message = rules
                .iter()
                .find(|(n, _)| *n == rule)
                .map_or("", |(_, r)| r.message.as_str());
            if message.is_empty() {
                format!("must not match source rule `{rule}`")
            } else {
                message.to_owned()
            }
        };
        for file in &sources.files {
            for (line, rule, what) in scan(file, &rules) {
                let path = ws.relative(&file.path);
                report.push(Violation::new(
                    Rule::SourceRule,
                    name,
                    &path,
                    (&path, line),
                    format!(
                        "{rule}: {what}; layer `{}` {}",
                        layer.name,
                        consequence(rule)
                    ),
                ));
            }
        }
        for (macro_crate, macro_sources) in proc_macros(ws, name) {
            for file in &macro_sources.files {
                for (line, rule, what) in scan(file, &rules) {
                    let path = ws.relative(&file.path);
                    report.push(
                        Violation::new(
                            Rule::SourceRule,
                            name,
                            &path,
                            (&path, line),
                            format!(
                                "{rule}: {what} in proc-macro {macro_crate}, which expands into \
                                 {name}; layer `{}` {}",
                                layer.name,
                                consequence(rule)
                            ),
                        )
                        .with_chain(vec![
                            (*name).to_owned(),
                            format!("{macro_crate} (proc-macro)"),
                            format!("{path}:{line}"),
                        ]),
                    );
                }
            }
        }
    }
}

/// The workspace proc-macro crates `name` uses in its product code (normal dependencies),
/// with their sources. What a macro emits is compiled into its user, so the user's source
/// rules apply to the macro's code; a macro used only by tests or the build script emits
/// into code the rules do not look at.
fn proc_macros<'w>(ws: &'w Workspace<'_>, name: &str) -> Vec<(&'w str, &'w PackageSources)> {
    let Some(package) = ws.graph.members.get(name) else {
        return Vec::new();
    };
    let mut found: Vec<(&str, &PackageSources)> = package
        .dependencies
        .iter()
        .filter(|d| d.kind == EdgeKind::Normal && d.name != name)
        .filter(|d| {
            ws.graph
                .members
                .get(d.name.as_str())
                .is_some_and(|p| p.is_proc_macro())
        })
        .filter_map(|d| Some((d.name.as_str(), ws.sources.get(d.name.as_str())?)))
        .collect();
    // A crate declared twice (two platforms) is scanned once.
    found.sort_by_key(|(n, _)| *n);
    found.dedup_by_key(|(n, _)| *n);
    found
}

/// `(line, source rule, what was found)` for each hit of `rules` in the file's non-test
/// product code.
pub(crate) fn scan<'r>(
    file: &SourceFile,
    rules: &[(&'r str, &SourceRule)],
) -> Vec<(usize, &'r str, String)> {
    let code: Vec<&Token> = file.product_tokens().map(|(_, t)| t).collect();
    let mut hits = Vec::new();
    for (name, rule) in rules {
        let detects = |detector: &str| rule.detect.iter().any(|d| d == detector);
        let transaction_calls = detects("transaction-calls");
        let raw_sql_calls = detects("raw-sql-calls");
        let transaction_statements = detects("transaction-statements");
        let sql_statements = detects("sql-statements");
        for (index, token) in code.iter().enumerate() {
            let before = index.checked_sub(1).and_then(|i| code.get(i));
            let after = code.get(index + 1);
            match token.kind {
                TokenKind::Ident if after.is_some_and(|t| t.is_punct('(')) => {
                    let defined = before.is_some_and(|t| t.is_ident("fn"));
                    if defined {
                        continue;
                    }
                    let word = token.text.as_str();
                    let shown = || {
                        if before.is_some_and(|t| t.is_punct('.')) {
                            format!("`.{word}()` call")
                        } else {
                            format!("`{word}()` call")
                        }
                    };
                    if transaction_calls && TRANSACTION_CALLS.contains(&word) {
                        hits.push((token.line, *name, shown()));
                    }
                    let statement_path = index >= 3
                        && code[index - 1].is_punct(':')
                        && code[index - 2].is_punct(':')
                        && code[index - 3].is_ident("Statement");
                    let raw_call = match word {
                        "from_string" | "from_sql_and_values" => statement_path,
                        _ => RAW_SQL_CALLS.contains(&word),
                    };
                    if raw_sql_calls && raw_call {
                        hits.push((token.line, *name, format!("`{word}()` runs raw SQL")));
                    }
                    if rule.calls.iter().any(|c| c == word) {
                        hits.push((token.line, *name, shown()));
                    }
                }
                TokenKind::Str => {
                    let words = sql_words(&token.text);
                    if transaction_statements
                        && starts_with_statement(&words, TRANSACTION_STATEMENTS)
                    {
                        hits.push((token.line, *name, format!("string {}", quote(&token.text))));
                    } else if sql_statements && is_sql_statement(&token.text) {
                        hits.push((
                            token.line,
                            *name,
                            format!("SQL string {}", quote(&token.text)),
                        ));
                    }
                }
                _ => {}
            }
            for path in &rule.paths {
                if path_at(&code, index, path) {
                    hits.push((token.line, *name, format!("`{path}` used")));
                }
            }
        }
    }
    hits.sort();
    hits.dedup();
    hits
}

/// Whether the path `path` (`std::process::Command`) starts at token `index`, not as the
/// tail of a longer path (`other::std::process`).
fn path_at(code: &[&Token], index: usize, path: &str) -> bool {
    let mut at = index;
    if index >= 2 && code[index - 1].is_punct(':') && code[index - 2].is_punct(':') {
        return false;
    }
    for (n, segment) in path.split("::").enumerate() {
        if n > 0 {
            if !(code.get(at).is_some_and(|t| t.is_punct(':'))
                && code.get(at + 1).is_some_and(|t| t.is_punct(':')))
            {
                return false;
            }
            at += 2;
        }
        if !code.get(at).is_some_and(|t| t.is_ident(segment.trim())) {
            return false;
        }
        at += 1;
    }
    true
}

/// The words of a literal: runs of letters, digits and `_`, in upper case, with a `(` kept as
/// its own word (it matters for `WITH x AS (`).
fn sql_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.extend(c.to_uppercase());
            continue;
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c == '(' {
            words.push("(".to_owned());
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn starts_with_statement(words: &[String], statements: &[&[&str]]) -> bool {
    statements.iter().any(|statement| {
        words.len() >= statement.len() && statement.iter().zip(words).all(|(s, w)| s == w)
    })
}

/// Statement keywords that may open a SQL string.
const SQL_KEYWORDS: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "TRUNCATE", "WITH", "MERGE",
    "REPLACE",
];

/// Whether a literal reads as a SQL statement (see the module docs).
fn is_sql_statement(text: &str) -> bool {
    let words = sql_words(text);
    let Some(first) = words.first().filter(|w| SQL_KEYWORDS.contains(&w.as_str())) else {
        return false;
    };
    if words.len() >= 2 && text.trim_start().starts_with(first.as_str()) {
        return true; // an upper-case keyword: `SELECT 1`, `DROP TABLE x`
    }
    let second = words.get(1).map_or("", String::as_str);
    let has = |word: &str| words.iter().skip(1).any(|w| w == word);
    let object = matches!(
        second,
        "TABLE"
            | "INDEX"
            | "UNIQUE"
            | "VIEW"
            | "SCHEMA"
            | "TYPE"
            | "SEQUENCE"
            | "TRIGGER"
            | "FUNCTION"
            | "EXTENSION"
            | "DATABASE"
            | "ROLE"
            | "OR"
            | "TEMP"
            | "TEMPORARY"
            | "MATERIALIZED"
    );
    match first.as_str() {
        "SELECT" => has("FROM"),
        "INSERT" | "REPLACE" | "MERGE" => second == "INTO",
        "UPDATE" => has("SET"),
        "DELETE" => second == "FROM",
        "CREATE" | "ALTER" | "DROP" => object,
        "TRUNCATE" => second == "TABLE",
        "WITH" => {
            has("AS")
                && has("(")
                && ["SELECT", "INSERT", "UPDATE", "DELETE"]
                    .iter()
                    .any(|w| has(w))
        }
        _ => false,
    }
}

/// A literal as the report shows it: its first line, at most 40 characters.
fn quote(text: &str) -> String {
    let first = text.trim().lines().next().unwrap_or_default();
    let short: String = first.chars().take(40).collect();
    let more = short.len() < first.len() || text.trim().lines().nth(1).is_some();
    format!("\"{short}{}\"", if more { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Role;
    use crate::table::builtin_source_rules;
    use std::path::PathBuf;

    fn hits(source: &str, transaction: bool, raw_sql: bool) -> Vec<(usize, &'static str, String)> {
        let file = SourceFile::lex(PathBuf::from("lib.rs"), Role::Product, source);
        let builtins = builtin_source_rules();
        let mut rules: Vec<(&'static str, &SourceRule)> = Vec::new();
        if transaction {
            rules.push(("transaction-control", &builtins["transaction-control"]));
        }
        if raw_sql {
            rules.push(("raw-sql", &builtins["raw-sql"]));
        }
        scan(&file, &rules)
    }

    #[test]
    fn configured_calls_and_paths() {
        let source = "use std::process::Command;\nfn a() { std::fs::read(\"x\"); spawn_blocking(f); }\n\
                      fn b() { my::std::fs::x(); }\n// std::fs::read\n";
        let rule = SourceRule {
            calls: vec!["spawn_blocking".to_owned()],
            paths: vec!["std::process::Command".to_owned(), "std::fs".to_owned()],
            ..SourceRule::default()
        };
        let file = SourceFile::lex(PathBuf::from("lib.rs"), Role::Product, source);
        let found = scan(&file, &[("no-io", &rule)]);
        let shown: Vec<(usize, &str)> = found.iter().map(|h| (h.0, h.2.as_str())).collect();
        assert_eq!(
            shown,
            [
                (1, "`std::process::Command` used"),
                (2, "`spawn_blocking()` call"),
                (2, "`std::fs` used"),
            ]
        );
    }

    fn lines(found: &[(usize, &'static str, String)]) -> Vec<usize> {
        found.iter().map(|h| h.0).collect()
    }

    #[test]
    fn transaction_calls_outside_comments_tests_and_definitions() {
        let source = "fn a(t: T) {\n    t.commit().await;\n    // t.rollback()\n    /* t.begin() */\n}\n\
                      #[cfg(test)]\nmod tests {\n    fn b() { x.begin(); }\n}\n\
                      fn c() { TransactionTrait::begin(&db); }\nfn commit(self) {}\nlet s = \"t.commit()\";\n\
                      let q = \"ROLLBACK\";\nlet r = \"rollback failed\";";
        let found = hits(source, true, false);
        assert_eq!(lines(&found), [2, 10, 13, 14]);
        assert_eq!(found[0].2, "`.commit()` call");
        assert_eq!(found[1].2, "`begin()` call");
        assert_eq!(found[2].2, "string \"ROLLBACK\"");
    }

    #[test]
    fn raw_sql_literals_and_calls() {
        let source = "let q = \"select * from t\";\nlet s = \"selection\";\ndb.execute_unprepared(x);\n\
                      let m = \"update failed\";\nlet n = \"delete the owner\";\n\
                      let r = r#\"\n    INSERT INTO t (a)\n    VALUES (1)\"#;\n\
                      // let c = \"SELECT 1\";\nlet w = \"WITH x AS (SELECT 1) SELECT * FROM x\";\n\
                      let e = \"create table t (id int)\";\nlet f = \"Create an account\";\n\
                      Statement::from_string(backend, sql);";
        let found = hits(source, false, true);
        assert_eq!(lines(&found), [1, 3, 6, 10, 11, 13]);
        assert_eq!(found[2].2, "SQL string \"INSERT INTO t (a)…\"");
    }

    #[test]
    fn shapes_of_sql() {
        let sql = is_sql_statement;
        assert!(sql("SELECT 1"));
        assert!(sql("select id, name from tenants where id = $1"));
        assert!(sql("UPDATE tenants SET status = ?"));
        assert!(sql("DROP INDEX uq_x"));
        assert!(!sql("select a plan"));
        assert!(!sql("with great power"));
        assert!(!sql("drop it"));
        assert!(!sql("Select a plan"));
        assert!(!sql("SELECT"));
        assert!(!sql(""));
    }
}
