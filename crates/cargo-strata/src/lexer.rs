//! A small Rust lexer: just enough to tell code from comments and string literals, and test
//! code from the rest.
//!
//! The source rules match tokens, not text, so a `commit()` in a comment, a crate name in a doc
//! line or a `//` inside a string never confuse them, and SQL split over lines or written as a
//! raw string is still one literal. It is not a parser: it never fails, whatever the input.

mod text;

pub(crate) use text::{FastSet, Text};

use text::Interner;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An identifier or keyword (raw identifiers without their `r#`).
    Ident,
    /// A string literal of any flavour (`"…"`, `r#"…"#`, `b"…"`, `c"…"`); the text is its
    /// contents, with the common escapes of non-raw strings turned into the characters.
    Str,
    /// A char or byte literal.
    Char,
    /// A lifetime or loop label.
    Lifetime,
    /// A numeric literal.
    Number,
    /// One punctuation character.
    Punct,
}

/// One token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// Its kind.
    pub(crate) kind: TokenKind,
    /// Its text (see [`TokenKind`] for literals), shared with the file's equal tokens.
    pub(crate) text: Text,
    /// 1-based line of its first character.
    pub(crate) line: usize,
}

impl Token {
    /// Whether this is the identifier `word`.
    pub(crate) fn is_ident(&self, word: &str) -> bool {
        self.kind == TokenKind::Ident && self.text == word
    }

    /// Whether this is the punctuation character `c`.
    pub(crate) fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text.len() == 1 && self.text.starts_with(c)
    }
}

/// Splits Rust source into tokens, dropping whitespace and comments (doc comments included).
pub(crate) fn tokenize(source: &str) -> Vec<Token> {
    Lexer {
        src: source,
        bytes: source.as_bytes(),
        at: 0,
        line: 1,
        // Rust source averages a token per 4 to 5 bytes.
        tokens: Vec::with_capacity(source.len() / 5),
        interner: Interner::default(),
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    at: usize,
    line: usize,
    tokens: Vec<Token>,
    interner: Interner<'a>,
}

impl<'a> Lexer<'a> {
    fn run(mut self) -> Vec<Token> {
        while let Some(byte) = self.peek(0) {
            let line = self.line;
            match byte {
                b'\n' => {
                    self.line += 1;
                    self.at += 1;
                }
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'/' if self.peek(1) == Some(b'/') => self.line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'"' => self.string(0, false, line),
                b'\'' => self.quote(line),
                b'0'..=b'9' => self.number(line),
                _ if is_ident_start(byte) => self.word(line),
                _ => {
                    // ASCII: every byte from 0x80 up starts an identifier.
                    let end = self.at + 1;
                    self.push_slice(TokenKind::Punct, self.at, end, line);
                    self.at = end;
                }
            }
        }
        self.tokens
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at + ahead).copied()
    }

    fn push(&mut self, kind: TokenKind, text: Text, line: usize) {
        self.tokens.push(Token { kind, text, line });
    }

    /// A token whose text is the source from `start` to `end`.
    fn push_slice(&mut self, kind: TokenKind, start: usize, end: usize, line: usize) {
        let src: &'a str = self.src;
        let text = self.interner.text(&src[start..end]);
        self.push(kind, text, line);
    }

    fn line_comment(&mut self) {
        while let Some(byte) = self.peek(0) {
            if byte == b'\n' {
                break;
            }
            self.at += 1;
        }
    }

    /// Block comments nest in Rust.
    fn block_comment(&mut self) {
        self.at += 2;
        let mut depth = 1;
        while depth > 0 {
            match (self.peek(0), self.peek(1)) {
                (None, _) => break,
                (Some(b'/'), Some(b'*')) => {
                    depth += 1;
                    self.at += 2;
                }
                (Some(b'*'), Some(b'/')) => {
                    depth -= 1;
                    self.at += 2;
                }
                (Some(byte), _) => {
                    if byte == b'\n' {
                        self.line += 1;
                    }
                    self.at += 1;
                }
            }
        }
    }

    /// An identifier, or a prefixed literal (`r"…"`, `r#"…"#`, `b"…"`, `br"…"`, `b'…'`,
    /// `c"…"`, `cr"…"`), or a raw identifier (`r#type`).
    fn word(&mut self, line: usize) {
        let prefix_end = {
            let mut end = self.at;
            while end < self.bytes.len() && matches!(self.bytes[end], b'b' | b'c' | b'r') {
                end += 1;
            }
            end
        };
        let prefix = &self.src[self.at..prefix_end];
        if matches!(prefix, "r" | "br" | "cr") {
            let mut hashes = 0;
            while self.bytes.get(prefix_end + hashes) == Some(&b'#') {
                hashes += 1;
            }
            match self.bytes.get(prefix_end + hashes) {
                Some(b'"') => {
                    self.at = prefix_end + hashes;
                    return self.string(hashes, true, line);
                }
                Some(&next) if prefix == "r" && hashes == 1 && is_ident_start(next) => {
                    self.at = prefix_end + 1; // raw identifier: the word after `r#`
                    return self.word(line);
                }
                _ => {}
            }
        }
        if matches!(prefix, "b" | "c") && self.bytes.get(prefix_end) == Some(&b'"') {
            self.at = prefix_end;
            return self.string(0, false, line);
        }
        if prefix == "b" && self.bytes.get(prefix_end) == Some(&b'\'') {
            self.at = prefix_end;
            return self.quote(line);
        }
        let start = self.at;
        while self.peek(0).is_some_and(is_ident_continue) {
            self.at += 1;
        }
        self.push_slice(TokenKind::Ident, start, self.at, line);
    }

    /// A string starting at the opening quote; raw strings end at `"` plus `hashes` hashes.
    fn string(&mut self, hashes: usize, raw: bool, line: usize) {
        self.at += 1;
        let start = self.at;
        let mut end = self.bytes.len();
        while let Some(byte) = self.peek(0) {
            match byte {
                b'\\' if !raw => {
                    if self.peek(1) == Some(b'\n') {
                        self.line += 1;
                    }
                    self.at += 2;
                    continue;
                }
                b'\n' => self.line += 1,
                b'"' if (1..=hashes).all(|n| self.peek(n) == Some(b'#')) => {
                    end = self.at;
                    self.at += 1 + hashes;
                    break;
                }
                _ => {}
            }
            self.at += 1;
        }
        self.at = self.at.min(self.bytes.len());
        let src: &'a str = self.src;
        let body = &src[start..end.min(self.bytes.len())];
        let text = if raw || !body.contains('\\') {
            self.interner.text(body)
        } else {
            Text::from(unescape(body))
        };
        self.push(TokenKind::Str, text, line);
    }

    /// A char literal (`'a'`, `'\n'`, `'é'`) or a lifetime (`'a`, `'static`).
    fn quote(&mut self, line: usize) {
        let start = self.at;
        self.at += 1;
        if self.peek(0) == Some(b'\\') {
            self.at += 2;
            while self.peek(0).is_some_and(|b| b != b'\'' && b != b'\n') {
                self.at += 1;
            }
            self.at = (self.at + 1).min(self.bytes.len());
            return self.push_slice(TokenKind::Char, start, self.at, line);
        }
        let char_len = self.src[self.at..].chars().next().map_or(1, char::len_utf8);
        if self.bytes.get(self.at + char_len) == Some(&b'\'') {
            self.at += char_len + 1;
            return self.push_slice(TokenKind::Char, start, self.at, line);
        }
        while self.peek(0).is_some_and(is_ident_continue) {
            self.at += 1;
        }
        self.push_slice(TokenKind::Lifetime, start, self.at, line);
    }

    /// Digits, letters and underscores, and a `.` only when a digit follows (so `0..n` and
    /// `1.max(x)` keep their punctuation).
    fn number(&mut self, line: usize) {
        let start = self.at;
        while let Some(byte) = self.peek(0) {
            let fraction = byte == b'.' && self.peek(1).is_some_and(|b| b.is_ascii_digit());
            if !(byte.is_ascii_alphanumeric() || byte == b'_' || fraction) {
                break;
            }
            self.at += 1;
        }
        self.push_slice(TokenKind::Number, start, self.at, line);
    }
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

fn is_ident_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// The common escapes of a non-raw string, so `"SELECT\n  id"` reads as SQL words. A `\` at
/// the end of a line swallows the newline and the next line's indentation, as in Rust.
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('\n') => while chars.next_if(|c| c.is_whitespace()).is_some() {},
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Which tokens belong to test-only code, and the names of out-of-line test modules.
#[derive(Debug, Default)]
pub(crate) struct TestCode {
    /// `in_test[i]` is true when token `i` is inside a `#[cfg(test)]` or `#[test]` item.
    pub(crate) in_test: Vec<bool>,
    /// Modules declared as `#[cfg(test)] mod name;`, whose files are test code too.
    pub(crate) test_modules: Vec<String>,
}

/// Marks the items under `#[cfg(test)]`, `#[cfg(all(test, …))]`, `#[test]` and
/// `#[<runtime>::test]`, and the whole file after `#![cfg(test)]`.
pub(crate) fn test_code(tokens: &[Token]) -> TestCode {
    let mut code = TestCode {
        in_test: vec![false; tokens.len()],
        test_modules: Vec::new(),
    };
    let mut at = 0;
    while at < tokens.len() {
        let Some(attribute) = attribute_at(tokens, at) else {
            at += 1;
            continue;
        };
        if !attribute.is_test {
            at = attribute.end;
            continue;
        }
        if attribute.inner {
            code.in_test[at..].fill(true);
            break;
        }
        let end = item_end(tokens, attribute.end, &mut code.test_modules);
        code.in_test[at..end].fill(true);
        at = end;
    }
    code
}

struct Attribute {
    /// Index just past the closing `]`.
    end: usize,
    /// `#![…]` rather than `#[…]`.
    inner: bool,
    is_test: bool,
}

/// The brackets of the attribute (`#[…]` or `#![…]`) starting at `at`, if one does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttributeSpan {
    /// Index of its `[`.
    pub(crate) open: usize,
    /// Index of its `]`.
    pub(crate) close: usize,
    /// `#![…]` rather than `#[…]`.
    pub(crate) inner: bool,
}

/// See [`AttributeSpan`].
pub(crate) fn attribute_span(tokens: &[Token], at: usize) -> Option<AttributeSpan> {
    if !tokens.get(at)?.is_punct('#') {
        return None;
    }
    let inner = tokens.get(at + 1)?.is_punct('!');
    let open = at + 1 + usize::from(inner);
    if !tokens.get(open)?.is_punct('[') {
        return None;
    }
    let close = matching_close(tokens, open)?;
    Some(AttributeSpan { open, close, inner })
}

/// The attribute starting at `at`, if one does.
fn attribute_at(tokens: &[Token], at: usize) -> Option<Attribute> {
    let span = attribute_span(tokens, at)?;
    let body = tokens.get(span.open + 1..span.close)?;
    Some(Attribute {
        end: span.close + 1,
        inner: span.inner,
        is_test: is_test_attribute(body),
    })
}

/// `test`, `tokio::test`, `cfg(test)` or `cfg(all(…, test, …))`.
fn is_test_attribute(body: &[Token]) -> bool {
    let is_path = body
        .iter()
        .all(|t| t.kind == TokenKind::Ident || t.is_punct(':'));
    if is_path && body.last().is_some_and(|t| t.is_ident("test")) {
        return true;
    }
    match body {
        [cfg, open, test, close] => {
            cfg.is_ident("cfg")
                && open.is_punct('(')
                && test.is_ident("test")
                && close.is_punct(')')
        }
        [cfg, open, all, inner_open, rest @ ..] => {
            cfg.is_ident("cfg")
                && open.is_punct('(')
                && all.is_ident("all")
                && inner_open.is_punct('(')
                && direct_arguments(rest)
                    .any(|argument| matches!(argument, [test] if test.is_ident("test")))
        }
        _ => false,
    }
}

/// The comma-separated arguments at nesting depth zero of `tokens` (which end with the
/// closing parentheses).
fn direct_arguments(tokens: &[Token]) -> impl Iterator<Item = &[Token]> {
    let mut depth = 0usize;
    let mut start = 0;
    let mut arguments = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        if token.is_punct('(') {
            depth += 1;
        } else if token.is_punct(')') {
            if depth == 0 {
                arguments.push(&tokens[start..index]);
                break;
            }
            depth -= 1;
        } else if token.is_punct(',') && depth == 0 {
            arguments.push(&tokens[start..index]);
            start = index + 1;
        }
    }
    arguments.into_iter()
}

/// Index of the bracket closing the one at `open` (`(`, `[` or `{`).
pub(crate) fn matching_close(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        if token.kind != TokenKind::Punct {
            continue;
        }
        match token.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// Index just past the item that starts at `start` (after its attributes): its `;` or the
/// `}` closing its body. Records `mod name;` declarations in `test_modules`.
fn item_end(tokens: &[Token], start: usize, test_modules: &mut Vec<String>) -> usize {
    let mut at = start;
    while let Some(attribute) = attribute_at(tokens, at) {
        at = attribute.end;
    }
    let mut depth = 0usize;
    while let Some(token) = tokens.get(at) {
        if token.kind == TokenKind::Punct {
            match token.text.as_str() {
                "(" | "[" => depth += 1,
                ")" | "]" => depth = depth.saturating_sub(1),
                "{" if depth == 0 => {
                    return matching_close(tokens, at).map_or(tokens.len(), |close| close + 1);
                }
                ";" if depth == 0 => {
                    let declared = tokens[start..at]
                        .windows(2)
                        .find(|pair| pair[0].is_ident("mod"))
                        .map(|pair| pair[1].text.to_string());
                    test_modules.extend(declared);
                    return at + 1;
                }
                _ => {}
            }
        }
        at += 1;
    }
    tokens.len()
}

#[cfg(test)]
mod tests;
