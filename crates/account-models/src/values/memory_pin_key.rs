//! Memory pin keys (§3.12): 1 to 512 characters, no path traversal, no control characters.

use super::string_value;

/// A memory pin key.
///
/// # Examples
///
/// ```rust
/// use account_models::values::MemoryPinKey;
///
/// assert!(MemoryPinKey::parse("agent:config:v1").is_ok());
/// assert!(MemoryPinKey::parse("../etc/passwd").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryPinKey(String);

/// A prefix to list pins by: the same rules, but may be empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryPinPrefix(String);

/// Why text is not a pin key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryPinKeyError {
    /// Nothing was given.
    #[error("pin key is empty")]
    Empty,
    /// More than 512 characters.
    #[error("pin key must be at most 512 characters")]
    TooLong,
    /// Contains `..`.
    #[error("pin key must not contain `..`")]
    ContainsDotDot,
    /// Contains `/`.
    #[error("pin key must not contain `/`")]
    ContainsSlash,
    /// Contains `\`.
    #[error("pin key must not contain `\\`")]
    ContainsBackslash,
    /// Contains NUL or another control character.
    #[error("pin key must not contain control characters")]
    ContainsControl,
    /// Starts or ends with whitespace.
    #[error("pin key must not start or end with whitespace")]
    SurroundingWhitespace,
}

fn check(text: &str) -> Result<(), MemoryPinKeyError> {
    if text.chars().count() > 512 {
        return Err(MemoryPinKeyError::TooLong);
    }
    if text.contains("..") {
        return Err(MemoryPinKeyError::ContainsDotDot);
    }
    if text.contains('/') {
        return Err(MemoryPinKeyError::ContainsSlash);
    }
    if text.contains('\\') {
        return Err(MemoryPinKeyError::ContainsBackslash);
    }
    if text.chars().any(char::is_control) {
        return Err(MemoryPinKeyError::ContainsControl);
    }
    if text.trim() != text {
        return Err(MemoryPinKeyError::SurroundingWhitespace);
    }
    Ok(())
}

impl MemoryPinKey {
    /// Parses a key as given (keys are not trimmed: surrounding whitespace is an error).
    pub fn parse(input: &str) -> Result<Self, MemoryPinKeyError> {
        if input.is_empty() {
            return Err(MemoryPinKeyError::Empty);
        }
        check(input)?;
        Ok(Self(input.to_owned()))
    }
}

impl MemoryPinPrefix {
    /// Parses a prefix; empty means "every key".
    pub fn parse(input: &str) -> Result<Self, MemoryPinKeyError> {
        check(input)?;
        Ok(Self(input.to_owned()))
    }
}

string_value!(MemoryPinKey, MemoryPinKeyError);
string_value!(MemoryPinPrefix, MemoryPinKeyError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_invalid_class_has_its_own_error() {
        assert_eq!(MemoryPinKey::parse(""), Err(MemoryPinKeyError::Empty));
        assert_eq!(
            MemoryPinKey::parse(&"k".repeat(513)),
            Err(MemoryPinKeyError::TooLong)
        );
        assert_eq!(
            MemoryPinKey::parse("a..b"),
            Err(MemoryPinKeyError::ContainsDotDot)
        );
        assert_eq!(
            MemoryPinKey::parse("a/b"),
            Err(MemoryPinKeyError::ContainsSlash)
        );
        assert_eq!(
            MemoryPinKey::parse("a\\b"),
            Err(MemoryPinKeyError::ContainsBackslash)
        );
        assert_eq!(
            MemoryPinKey::parse("a\0b"),
            Err(MemoryPinKeyError::ContainsControl)
        );
        assert_eq!(
            MemoryPinKey::parse(" a"),
            Err(MemoryPinKeyError::SurroundingWhitespace)
        );
        assert!(MemoryPinKey::parse(&"k".repeat(512)).is_ok());
        assert!(MemoryPinPrefix::parse("").is_ok());
        assert_eq!(
            MemoryPinPrefix::parse("a/"),
            Err(MemoryPinKeyError::ContainsSlash)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(input in any::<String>()) {
            let _ = MemoryPinKey::parse(&input);
        }

        #[test]
        fn clean_keys_parse(key in "[a-zA-Z0-9:_-][a-zA-Z0-9:_. -]{0,60}[a-zA-Z0-9:_-]") {
            prop_assume!(!key.contains(".."));
            let parsed = MemoryPinKey::parse(&key).unwrap();
            prop_assert_eq!(parsed.as_str(), key.as_str());
        }
    }
}
