//! Reading paths out of tokens: the `#[path]` attribute and `mod` items, and the paths code
//! writes as literals, `env!("CARGO_MANIFEST_DIR")`, `concat!` of those and `.join("…")`
//! calls on them. What is not written as literals (a variable, `env!("OUT_DIR")`) is left
//! alone: this reads code, it does not run it.

use crate::lexer::{AttributeSpan, Token, TokenKind, attribute_span, matching_close};
use std::path::{Path, PathBuf};

/// A path written in the code, with `env!("CARGO_MANIFEST_DIR")` replaced by the package
/// directory.
#[derive(Debug)]
pub(super) struct Written {
    /// The path.
    pub(super) path: PathBuf,
    /// Whether it starts at the package directory (`CARGO_MANIFEST_DIR`) rather than being a
    /// literal.
    pub(super) manifest: bool,
    /// The index of the token after it.
    pub(super) end: usize,
}

/// The attribute at `at` (`#[…]` or `#![…]`): the index past it, whether it is an inner
/// attribute, and the index of its `path = "…"` literal (also as a `cfg_attr` argument).
pub(super) fn attribute(tokens: &[Token], at: usize) -> Option<(usize, bool, Option<usize>)> {
    let AttributeSpan { open, close, inner } = attribute_span(tokens, at)?;
    let path = (open + 1..close)
        .find(|&i| {
            tokens[i].is_ident("path")
                && (i == open + 1 || tokens[i - 1].is_punct(','))
                && tokens.get(i + 1).is_some_and(|t| t.is_punct('='))
                && tokens.get(i + 2).is_some_and(|t| t.kind == TokenKind::Str)
        })
        .map(|i| i + 2);
    Some((close + 1, inner, path))
}

/// The `mod name;` or `mod name { … }` item at `at` (its visibility included): the name, the
/// index of `mod`, and the index of its `;` or `{`.
pub(super) fn module_item(tokens: &[Token], at: usize) -> Option<(&str, usize, usize)> {
    let mut keyword = at;
    if tokens.get(keyword)?.is_ident("pub") {
        keyword += 1;
        if tokens.get(keyword)?.is_punct('(') {
            keyword = matching_close(tokens, keyword)? + 1;
        }
    }
    if !tokens.get(keyword)?.is_ident("mod") {
        return None;
    }
    let name = tokens.get(keyword + 1)?;
    let open = tokens.get(keyword + 2)?;
    (name.kind == TokenKind::Ident && (open.is_punct(';') || open.is_punct('{'))).then_some((
        name.text.as_str(),
        keyword,
        keyword + 2,
    ))
}

/// Whether `env!("CARGO_MANIFEST_DIR")` starts at `at`.
fn manifest_dir_at(tokens: &[Token], at: usize) -> bool {
    let token = |offset: usize| tokens.get(at + offset);
    token(0).is_some_and(|t| t.is_ident("env"))
        && token(1).is_some_and(|t| t.is_punct('!'))
        && token(2).is_some_and(|t| t.is_punct('('))
        && token(3).is_some_and(|t| t.kind == TokenKind::Str && t.text == "CARGO_MANIFEST_DIR")
        && token(4).is_some_and(|t| t.is_punct(')'))
}

/// The path written at `at`: a string literal, `env!("CARGO_MANIFEST_DIR")`, or a `concat!`
/// of literals that may start with it. Any other macro (`env!("OUT_DIR")`) is not a path
/// this rule can place.
pub(super) fn written_path(tokens: &[Token], at: usize, package_dir: &Path) -> Option<Written> {
    let token = tokens.get(at)?;
    if token.kind == TokenKind::Str {
        return Some(Written {
            path: PathBuf::from(token.text.as_str()),
            manifest: false,
            end: at + 1,
        });
    }
    if manifest_dir_at(tokens, at) {
        return Some(Written {
            path: package_dir.to_path_buf(),
            manifest: true,
            end: at + 5,
        });
    }
    if !(token.is_ident("concat")
        && tokens.get(at + 1)?.is_punct('!')
        && tokens.get(at + 2)?.is_punct('('))
    {
        return None;
    }
    let mut text = String::new();
    let mut manifest = false;
    let mut part = at + 3;
    loop {
        let token = tokens.get(part)?;
        if token.is_punct(')') {
            return Some(Written {
                path: PathBuf::from(text),
                manifest,
                end: part + 1,
            });
        }
        if token.kind == TokenKind::Str {
            text.push_str(&token.text);
            part += 1;
        } else if part == at + 3 && manifest_dir_at(tokens, part) {
            text.push_str(&package_dir.to_string_lossy());
            manifest = true;
            part += 5;
        } else {
            return None;
        }
        if tokens.get(part)?.is_punct(',') {
            part += 1;
        }
    }
}

/// Whether `.join("…")` starts at `at`.
pub(super) fn is_join(tokens: &[Token], at: usize) -> bool {
    let token = |offset: usize| tokens.get(at + offset);
    token(0).is_some_and(|t| t.is_punct('.'))
        && token(1).is_some_and(|t| t.is_ident("join"))
        && token(2).is_some_and(|t| t.is_punct('('))
        && token(3).is_some_and(|t| t.kind == TokenKind::Str)
        && token(4).is_some_and(|t| t.is_punct(')'))
}

/// `written` with the `.join("…")` calls after it applied (past one closing parenthesis, as
/// in `Path::new(env!("CARGO_MANIFEST_DIR")).join("..")`).
pub(super) fn with_joins(tokens: &[Token], mut written: Written) -> Written {
    let mut at = written.end;
    if tokens.get(at).is_some_and(|t| t.is_punct(')')) && is_join(tokens, at + 1) {
        at += 1;
    }
    while is_join(tokens, at) {
        written.path = written.path.join(tokens[at + 3].text.as_str());
        at += 5;
        written.end = at;
    }
    written
}

/// The directory a `.join("…")` at `dot` starts from when its receiver is not a written path:
/// the package directory when the receiver's statement, or the `let` of a name in it, shows
/// `CARGO_MANIFEST_DIR`; otherwise unknown (`out_dir.join("..")`).
pub(super) fn join_base(tokens: &[Token], dot: usize, package_dir: &Path) -> Option<PathBuf> {
    let start = (0..dot)
        .rev()
        .find(|&i| tokens[i].is_punct(';') || tokens[i].is_punct('{') || tokens[i].is_punct('}'))
        .map_or(0, |i| i + 1);
    let shows_manifest = |part: &[Token]| {
        part.iter()
            .any(|t| t.kind == TokenKind::Str && t.text == "CARGO_MANIFEST_DIR")
    };
    let receiver = &tokens[start..dot];
    if shows_manifest(receiver) {
        return Some(package_dir.to_path_buf());
    }
    let bound_to_manifest = |name: &str| {
        let binding = (0..start).rev().find(|&i| {
            tokens[i].is_ident("let")
                && (tokens.get(i + 1).is_some_and(|t| t.is_ident(name))
                    || (tokens.get(i + 1).is_some_and(|t| t.is_ident("mut"))
                        && tokens.get(i + 2).is_some_and(|t| t.is_ident(name))))
        });
        binding.is_some_and(|let_at| {
            let end = (let_at..start)
                .find(|&i| tokens[i].is_punct(';'))
                .unwrap_or(start);
            shows_manifest(&tokens[let_at..end])
        })
    };
    receiver
        .iter()
        .filter(|t| t.kind == TokenKind::Ident)
        .any(|t| bound_to_manifest(&t.text))
        .then(|| package_dir.to_path_buf())
}
