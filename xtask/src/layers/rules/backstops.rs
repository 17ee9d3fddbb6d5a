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

use super::super::Workspace;
use super::super::lexer::{Token, TokenKind};
use super::super::report::{Report, Violation};
use super::super::sources::SourceFile;
use super::Rule;

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

/// Checks the source rules each member's layer asks for.
pub(crate) fn check(ws: &Workspace<'_>, report: &mut Report) {
    for name in ws.graph.members.keys() {
        let Some(layer) = ws.table.layer_of(name) else {
            continue;
        };
        let transaction = layer.runs("transaction-control");
        let raw_sql = layer.runs("raw-sql");
        if !(transaction || raw_sql) {
            continue;
        }
        let Some(sources) = ws.sources.get(name) else {
            continue;
        };
        report.checked(Rule::SourceRule, name);
        for file in &sources.files {
            for (line, rule, what) in scan(file, transaction, raw_sql) {
                let consequence = match rule {
                    "transaction-control" => "must not begin, commit or roll back transactions",
                    _ => "must not run SQL",
                };
                report.push(Violation {
                    file: ws.relative(&file.path),
                    line,
                    rule: Rule::SourceRule,
                    krate: (*name).to_owned(),
                    target: ws.relative(&file.path),
                    message: format!("{rule}: {what}; layer `{}` {consequence}", layer.name),
                });
            }
        }
    }
}

/// `(line, source rule, what was found)` for each hit in the file's non-test product code.
fn scan(file: &SourceFile, transaction: bool, raw_sql: bool) -> Vec<(usize, &'static str, String)> {
    let code: Vec<&Token> = file.product_tokens().map(|(_, t)| t).collect();
    let mut hits = Vec::new();
    for (index, token) in code.iter().enumerate() {
        let before = index.checked_sub(1).and_then(|i| code.get(i));
        let after = code.get(index + 1);
        match token.kind {
            TokenKind::Ident if after.is_some_and(|t| t.is_punct('(')) => {
                let defined = before.is_some_and(|t| t.is_ident("fn"));
                let word = token.text.as_str();
                if transaction && !defined && TRANSACTION_CALLS.contains(&word) {
                    let shown = if before.is_some_and(|t| t.is_punct('.')) {
                        format!("`.{word}()` call")
                    } else {
                        format!("`{word}()` call")
                    };
                    hits.push((token.line, "transaction-control", shown));
                }
                let statement_path = index >= 3
                    && code[index - 1].is_punct(':')
                    && code[index - 2].is_punct(':')
                    && code[index - 3].is_ident("Statement");
                let raw_call = match word {
                    "from_string" | "from_sql_and_values" => statement_path,
                    _ => RAW_SQL_CALLS.contains(&word),
                };
                if raw_sql && !defined && raw_call {
                    hits.push((token.line, "raw-sql", format!("`{word}()` runs raw SQL")));
                }
            }
            TokenKind::Str => {
                let words = sql_words(&token.text);
                if transaction && starts_with_statement(&words, TRANSACTION_STATEMENTS) {
                    hits.push((
                        token.line,
                        "transaction-control",
                        format!("string {}", quote(&token.text)),
                    ));
                } else if raw_sql && is_sql_statement(&token.text) {
                    hits.push((
                        token.line,
                        "raw-sql",
                        format!("SQL string {}", quote(&token.text)),
                    ));
                }
            }
            _ => {}
        }
    }
    hits
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
    use super::super::super::sources::Role;
    use super::*;
    use std::path::PathBuf;

    fn hits(source: &str, transaction: bool, raw_sql: bool) -> Vec<(usize, &'static str, String)> {
        let file = SourceFile::lex(PathBuf::from("lib.rs"), Role::Product, source);
        scan(&file, transaction, raw_sql)
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
