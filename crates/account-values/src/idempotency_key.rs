//! Idempotency keys: what a client sends in the `Idempotency-Key` header so that a retried
//! write is answered once (IETF draft-ietf-httpapi-idempotency-key-header).

use crate::string_value;

/// A client's idempotency key: 1 to 255 visible ASCII characters (`!` to `~`, no space).
///
/// The header's value is an RFC 8941 string (`"4f1c-..."`, quoted, with `\"` and `\\` as
/// the only escapes); [`IdempotencyKey::from_header`] also takes the key bare, since clients
/// commonly send a UUID unquoted. Both spell the same key.
///
/// # Examples
///
/// ```rust
/// use account_values::{IdempotencyKey, IdempotencyKeyError};
///
/// let quoted = IdempotencyKey::from_header(r#""8e03978e-40d5-43e8-bc93-6894a57f9324""#)?;
/// let bare = IdempotencyKey::from_header("8e03978e-40d5-43e8-bc93-6894a57f9324")?;
/// assert_eq!(quoted, bare);
/// assert_eq!(IdempotencyKey::from_header(r#""a\"b""#)?.as_str(), r#"a"b"#);
/// assert_eq!(IdempotencyKey::from_header(r#""open"#), Err(IdempotencyKeyError::Unterminated));
/// assert_eq!(IdempotencyKey::parse("two words"), Err(IdempotencyKeyError::NotVisibleAscii));
/// # Ok::<(), IdempotencyKeyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Why a header value is not an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyKeyError {
    /// Nothing was given (or an empty string, `""`).
    #[error("the idempotency key is empty")]
    Empty,
    /// More than [`IdempotencyKey::MAX`] characters.
    #[error("the idempotency key must be at most 255 characters")]
    TooLong,
    /// A character outside visible ASCII (`!` to `~`): a space, a control or a non-ASCII
    /// character.
    #[error("the idempotency key may only hold visible ASCII characters (no spaces)")]
    NotVisibleAscii,
    /// A quoted string without its closing quote.
    #[error("the idempotency key's quoted string is not closed")]
    Unterminated,
    /// A backslash in a quoted string followed by something other than `"` or `\`.
    #[error(r#"in a quoted idempotency key only \" and \\ are escapes"#)]
    InvalidEscape,
    /// Something after the closing quote.
    #[error("nothing may follow the idempotency key's closing quote")]
    TrailingCharacters,
}

impl IdempotencyKey {
    /// Longest key, in characters.
    pub const MAX: usize = 255;

    /// The key itself, unquoted: 1 to [`IdempotencyKey::MAX`] visible ASCII characters.
    pub fn parse(input: &str) -> Result<Self, IdempotencyKeyError> {
        if input.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyKeyError::NotVisibleAscii);
        }
        if input.len() > Self::MAX {
            return Err(IdempotencyKeyError::TooLong);
        }
        Ok(Self(input.to_owned()))
    }

    /// The key a header value names: an RFC 8941 string (`"..."`) or the key bare. Spaces
    /// and tabs around the value are ignored, as HTTP does.
    pub fn from_header(value: &str) -> Result<Self, IdempotencyKeyError> {
        let value = value.trim_matches([' ', '\t']);
        let Some(quoted) = value.strip_prefix('"') else {
            return Self::parse(value);
        };
        let mut key = String::with_capacity(quoted.len());
        let mut chars = quoted.chars();
        loop {
            match chars.next() {
                None => return Err(IdempotencyKeyError::Unterminated),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some(escaped @ ('"' | '\\')) => key.push(escaped),
                    None => return Err(IdempotencyKeyError::Unterminated),
                    Some(_) => return Err(IdempotencyKeyError::InvalidEscape),
                },
                Some(c) => key.push(c),
            }
        }
        if chars.next().is_some() {
            return Err(IdempotencyKeyError::TrailingCharacters);
        }
        Self::parse(&key)
    }
}

string_value!(IdempotencyKey, IdempotencyKeyError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert_eq!(IdempotencyKey::parse("a").unwrap().as_str(), "a");
        let longest = "k".repeat(255);
        assert_eq!(IdempotencyKey::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)),
            Err(IdempotencyKeyError::TooLong)
        );
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Empty));
        for bad in ["a b", "a\tb", "a\u{7f}", "é", "a\nb"] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(IdempotencyKeyError::NotVisibleAscii),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_header_takes_a_structured_string_or_the_bare_key() {
        let key = |v: &str| IdempotencyKey::from_header(v).map(String::from);
        assert_eq!(key(r#""abc""#).unwrap(), "abc");
        assert_eq!(key(" abc\t").unwrap(), "abc");
        assert_eq!(key(r#" "abc" "#).unwrap(), "abc");
        assert_eq!(key(r#""a\\b\"c""#).unwrap(), r#"a\b"c"#);
        assert_eq!(key(r#""""#), Err(IdempotencyKeyError::Empty));
        assert_eq!(key(""), Err(IdempotencyKeyError::Empty));
        assert_eq!(key(r#""abc"#), Err(IdempotencyKeyError::Unterminated));
        assert_eq!(key(r#""abc\"#), Err(IdempotencyKeyError::Unterminated));
        assert_eq!(key(r#""a\nb""#), Err(IdempotencyKeyError::InvalidEscape));
        assert_eq!(
            key(r#""abc";x=1"#),
            Err(IdempotencyKeyError::TrailingCharacters)
        );
        assert_eq!(key(r#""a b""#), Err(IdempotencyKeyError::NotVisibleAscii));
        // A bare value is the key as written, quotes inside included.
        assert_eq!(key(r#"a"b"#).unwrap(), r#"a"b"#);
    }
}
