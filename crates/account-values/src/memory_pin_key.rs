//! Memory pin keys (§3.12): 1 to 512 characters, no path traversal, no control characters.

use crate::string_value;

/// A memory pin key.
///
/// # Examples
///
/// ```rust
/// use account_values::{MemoryPinKey, MemoryPinKeyError};
///
/// assert_eq!(MemoryPinKey::parse("agent:config:v1")?.as_str(), "agent:config:v1");
/// assert_eq!(MemoryPinKey::parse("../etc/passwd"), Err(MemoryPinKeyError::ContainsDotDot));
/// assert_eq!(MemoryPinKey::parse("a/b"), Err(MemoryPinKeyError::ContainsSlash));
/// # Ok::<(), MemoryPinKeyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryPinKey(String);

/// A prefix to list pins by: the same rules, but may be empty or end in whitespace.
///
/// # Examples
///
/// ```rust
/// use account_values::{MemoryPinKeyError, MemoryPinPrefix};
///
/// assert_eq!(MemoryPinPrefix::parse("")?.as_str(), "");
/// assert_eq!(MemoryPinPrefix::parse("agent:")?.as_str(), "agent:");
/// assert_eq!(MemoryPinPrefix::parse("a\\"), Err(MemoryPinKeyError::ContainsBackslash));
/// # Ok::<(), MemoryPinKeyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryPinPrefix(String);

/// Why text is not a pin key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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

/// The key rules; a prefix (`whole_key == false`) may end in whitespace, as the start of a
/// key such as `my pin` (`my `) does.
fn check(text: &str, whole_key: bool) -> Result<(), MemoryPinKeyError> {
    if text.chars().count() > MemoryPinKey::MAX {
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
    let trimmed = if whole_key {
        text.trim()
    } else {
        text.trim_start()
    };
    if trimmed != text {
        return Err(MemoryPinKeyError::SurroundingWhitespace);
    }
    Ok(())
}

impl MemoryPinKey {
    /// The most characters a key has.
    pub const MAX: usize = 512;

    /// Parses a key as given (keys are not trimmed: surrounding whitespace is an error).
    pub fn parse(input: &str) -> Result<Self, MemoryPinKeyError> {
        if input.is_empty() {
            return Err(MemoryPinKeyError::Empty);
        }
        check(input, true)?;
        Ok(Self(input.to_owned()))
    }
}

impl MemoryPinPrefix {
    /// Parses a prefix; empty means "every key". Every start of a valid key is a valid
    /// prefix, so a prefix may end in whitespace (but not begin with it).
    pub fn parse(input: &str) -> Result<Self, MemoryPinKeyError> {
        check(input, false)?;
        Ok(Self(input.to_owned()))
    }
}

string_value!(MemoryPinKey, MemoryPinKeyError);
string_value!(MemoryPinPrefix, MemoryPinKeyError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The §3.12 rules, written independently of the parser.
    fn acceptable(key: &str) -> bool {
        !key.is_empty()
            && key.chars().count() <= MemoryPinKey::MAX
            && !key.contains("..")
            && !key.contains(['/', '\\'])
            && !key.chars().any(char::is_control)
            && key.trim() == key
    }

    #[test]
    fn valid_keys_round_trip_unchanged() {
        for key in [
            "a",
            "agent:config:v1",
            "user.42.prefs",
            "ключ",
            "a b",
            "x.y",
        ] {
            let parsed = MemoryPinKey::parse(key).unwrap();
            assert_eq!(parsed.as_str(), key);
            assert_eq!(parsed.to_string(), key);
            assert_eq!(key.parse::<MemoryPinKey>().unwrap(), parsed);
            assert_eq!(
                serde_json::from_str::<MemoryPinKey>(&serde_json::to_string(&parsed).unwrap())
                    .unwrap(),
                parsed
            );
        }
        assert!(MemoryPinKey::parse(&"k".repeat(MemoryPinKey::MAX)).is_ok());
        assert!(MemoryPinKey::parse(&"é".repeat(MemoryPinKey::MAX)).is_ok());
    }

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
            MemoryPinKey::parse(".."),
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
            MemoryPinKey::parse("a\nb"),
            Err(MemoryPinKeyError::ContainsControl)
        );
        assert_eq!(
            MemoryPinKey::parse(" a"),
            Err(MemoryPinKeyError::SurroundingWhitespace)
        );
        assert_eq!(
            MemoryPinKey::parse("a "),
            Err(MemoryPinKeyError::SurroundingWhitespace)
        );
        assert!(serde_json::from_str::<MemoryPinKey>("\"a/b\"").is_err());
    }

    #[test]
    fn prefixes_follow_the_key_rules_but_may_be_empty() {
        assert_eq!(MemoryPinPrefix::parse("").unwrap().as_str(), "");
        assert_eq!(MemoryPinPrefix::parse("agent:").unwrap().as_str(), "agent:");
        assert_eq!(MemoryPinPrefix::parse("my ").unwrap().as_str(), "my ");
        assert_eq!(
            MemoryPinPrefix::parse(" my"),
            Err(MemoryPinKeyError::SurroundingWhitespace)
        );
        assert_eq!(
            MemoryPinPrefix::parse("a/"),
            Err(MemoryPinKeyError::ContainsSlash)
        );
        assert_eq!(
            MemoryPinPrefix::parse(".."),
            Err(MemoryPinKeyError::ContainsDotDot)
        );
        assert_eq!(
            MemoryPinPrefix::parse(&"k".repeat(513)),
            Err(MemoryPinKeyError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_accepted_exactly_when_the_rules_hold(input in any::<String>()) {
            let parsed = MemoryPinKey::parse(&input);
            prop_assert_eq!(parsed.is_ok(), acceptable(&input));
            if let Ok(key) = parsed {
                prop_assert_eq!(key.as_str(), input.as_str());
            }
        }

        #[test]
        fn key_shaped_text_is_accepted_exactly_when_the_rules_hold(
            input in "[a-z:._ /\\\\\u{0}-]{0,16}"
        ) {
            prop_assert_eq!(MemoryPinKey::parse(&input).is_ok(), acceptable(&input));
        }

        #[test]
        fn clean_keys_parse(key in "[a-zA-Z0-9:_-][a-zA-Z0-9:_. -]{0,60}[a-zA-Z0-9:_-]") {
            prop_assume!(!key.contains(".."));
            let parsed = MemoryPinKey::parse(&key).unwrap();
            prop_assert_eq!(parsed.as_str(), key.as_str());
        }

        #[test]
        fn a_separator_anywhere_is_refused(
            key in "[a-z0-9:]{1,40}",
            at in 0usize..40,
            separator in prop::sample::select(vec!["/", "\\", "..", "\u{0}"]),
        ) {
            let at = at.min(key.len());
            let poisoned = format!("{}{separator}{}", &key[..at], &key[at..]);
            prop_assert!(MemoryPinKey::parse(&poisoned).is_err());
            prop_assert!(MemoryPinPrefix::parse(&poisoned).is_err());
        }
    }

    /// The prefix rules, written independently of the parser: the key rules, except that it
    /// may be empty or end in whitespace (it is the start of some valid key).
    fn acceptable_prefix(prefix: &str) -> bool {
        prefix.chars().count() <= MemoryPinKey::MAX
            && !prefix.contains("..")
            && !prefix.contains(['/', '\\'])
            && !prefix.chars().any(char::is_control)
            && prefix.trim_start() == prefix
    }

    // Hostile input: arbitrary bytes, round trips, prefixes of keys, and the bound's edge.
    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_round_trip(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert_eq!(MemoryPinKey::parse(&text).is_ok(), acceptable(&text));
            prop_assert_eq!(MemoryPinPrefix::parse(&text).is_ok(), acceptable_prefix(&text));
            match MemoryPinKey::parse(&text) {
                Ok(key) => {
                    let shown = key.to_string(); // through Display, as clients see it
                    prop_assert_eq!(MemoryPinKey::parse(&shown), Ok(key.clone()));
                    let json = serde_json::to_string(&key).unwrap();
                    prop_assert_eq!(serde_json::from_str::<MemoryPinKey>(&json).unwrap(), key);
                }
                Err(error) => prop_assert!(error.to_string().starts_with("pin key")),
            }
        }

        #[test]
        fn every_start_of_a_key_is_a_prefix(key in "[a-z:_. -]{1,30}") {
            prop_assume!(acceptable(&key));
            for (at, _) in key.char_indices() {
                let start = &key[..at];
                prop_assert_eq!(
                    MemoryPinPrefix::parse(start).map(String::from),
                    Ok(start.to_owned()),
                    "start of {:?}", key
                );
            }
        }

        #[test]
        fn prefix_shaped_text_is_accepted_exactly_when_the_rules_hold(
            input in "[a-z:._ /\\\\\u{0}-]{0,16}"
        ) {
            prop_assert_eq!(MemoryPinPrefix::parse(&input).is_ok(), acceptable_prefix(&input));
        }

        #[test]
        fn the_length_bound_holds_at_its_exact_edge(
            length in (MemoryPinKey::MAX - 2)..=(MemoryPinKey::MAX + 2),
            letter in "[a-zé漢😀:_-]",
        ) {
            let text = letter.repeat(length);
            let fits = length <= MemoryPinKey::MAX;
            let expected = if fits { Ok(text.clone()) } else { Err(MemoryPinKeyError::TooLong) };
            prop_assert_eq!(MemoryPinKey::parse(&text).map(String::from), expected.clone());
            prop_assert_eq!(MemoryPinPrefix::parse(&text).map(String::from), expected);
        }
    }
}
