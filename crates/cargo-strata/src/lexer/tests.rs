//! The lexer on the shapes of Rust it must get right: literals of every flavour, lines,
//! numbers, and which items are test code.

use super::*;

fn idents(source: &str) -> Vec<String> {
    tokenize(source)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Ident)
        .map(|t| t.text.to_string())
        .collect()
}

fn strings(source: &str) -> Vec<(usize, String)> {
    tokenize(source)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Str)
        .map(|t| (t.line, t.text.to_string()))
        .collect()
}

#[test]
fn comments_are_not_code() {
    let source = "// serde here\n/* outer /* nested */ still comment */ a\n/// doc b\n//! c\nd";
    assert_eq!(idents(source), ["a", "d"]);
}

#[test]
fn string_flavours_are_single_literals_with_their_start_line() {
    let source = "let a = \"x // not a comment\";\nlet b = r#\"SELECT \"quoted\"\nFROM t\"#;\n\
                  let c = b\"bytes\"; let d = c\"cstr\"; let e = br\"raw\";\nlet f = \"a\\\"b\";";
    assert_eq!(
        strings(source),
        [
            (1, "x // not a comment".to_owned()),
            (2, "SELECT \"quoted\"\nFROM t".to_owned()),
            (4, "bytes".to_owned()),
            (4, "cstr".to_owned()),
            (4, "raw".to_owned()),
            (5, "a\"b".to_owned()),
        ]
    );
}

#[test]
fn escapes_and_line_continuations_read_as_text() {
    assert_eq!(
        strings("\"SELECT\\n  id \\\n    FROM t\""),
        [(1, "SELECT\n  id FROM t".to_owned())]
    );
}

#[test]
fn lines_count_across_multi_line_tokens() {
    let tokens = tokenize("/* a\nb */ x \"c\nd\" y\nz");
    let lines: Vec<(String, usize)> = tokens
        .into_iter()
        .map(|t| (t.text.to_string(), t.line))
        .collect();
    assert_eq!(
        lines,
        [
            ("x".to_owned(), 2),
            ("c\nd".to_owned(), 2),
            ("y".to_owned(), 3),
            ("z".to_owned(), 4)
        ]
    );
}

#[test]
fn chars_lifetimes_and_raw_identifiers() {
    let tokens = tokenize("fn f<'a>(x: &'a str) { let c = '\"'; let d = '\\''; r#type; b'x' }");
    let kinds: Vec<(TokenKind, &str)> = tokens.iter().map(|t| (t.kind, t.text.as_str())).collect();
    assert!(kinds.contains(&(TokenKind::Lifetime, "'a")));
    assert!(kinds.contains(&(TokenKind::Char, "'\"'")));
    assert!(kinds.contains(&(TokenKind::Char, "'\\''")));
    assert!(kinds.contains(&(TokenKind::Ident, "type")));
    assert!(kinds.contains(&(TokenKind::Char, "'x'")));
    assert!(!kinds.iter().any(|(k, _)| *k == TokenKind::Str));
}

#[test]
fn numbers_keep_ranges_and_method_calls() {
    let texts: Vec<String> = tokenize("0..10 1.5 2.max(3) 1_000u32")
        .into_iter()
        .map(|t| t.text.to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "0", ".", ".", "10", "1.5", "2", ".", "max", "(", "3", ")", "1_000u32"
        ]
    );
}

fn test_idents(source: &str) -> (Vec<String>, Vec<String>) {
    let tokens = tokenize(source);
    let code = test_code(&tokens);
    let pick = |wanted: bool| {
        tokens
            .iter()
            .zip(&code.in_test)
            .filter(|(t, in_test)| **in_test == wanted && t.kind == TokenKind::Ident)
            .map(|(t, _)| t.text.to_string())
            .filter(|w| w.starts_with('x'))
            .collect()
    };
    (pick(false), pick(true))
}

#[test]
fn test_items_are_marked() {
    let source = "fn x1() {}\n#[cfg(test)]\nmod tests { fn x2() { if a { x3() } } }\n\
                  fn x4() {}\n#[test]\n#[ignore]\nfn x5() {}\n#[tokio::test]\nasync fn x6() {}\n\
                  #[cfg(all(test, feature = \"y\"))]\nfn x7() {}\n#[cfg(any(test, feature = \"y\"))]\n\
                  fn x8() {}\n#[cfg(not(test))]\nfn x9() {}\n#[cfg(test)]\nuse x10::y;\nfn x11() {}";
    let (product, test) = test_idents(source);
    assert_eq!(product, ["x1", "x4", "x8", "x9", "x11"]);
    assert_eq!(test, ["x2", "x3", "x5", "x6", "x7", "x10"]);
}

#[test]
fn out_of_line_test_modules_are_named() {
    let tokens = tokenize(
        "#[cfg(test)]\nmod tests;\n#[cfg(test)]\n#[path = \"p.rs\"]\nmod more;\nmod real;",
    );
    assert_eq!(test_code(&tokens).test_modules, ["tests", "more"]);
}

#[test]
fn an_inner_cfg_test_makes_the_whole_file_test_code() {
    let (product, test) = test_idents("//! doc\n#![cfg(test)]\nfn x1() {}");
    assert!(product.is_empty());
    assert_eq!(test, ["x1"]);
}
