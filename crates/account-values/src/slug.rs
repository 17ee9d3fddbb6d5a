//! Slugs: short, URL-safe tenant handles.

use crate::string_value;

/// 3 to 63 characters of `a-z`, `0-9` and single inner hyphens, starting with a letter.
///
/// # Examples
///
/// ```rust
/// use account_values::{Slug, SlugError};
///
/// assert_eq!(Slug::parse("acme-labs")?.as_str(), "acme-labs");
/// assert_eq!(Slug::from_name("Acme Labs, Inc.")?.as_str(), "acme-labs-inc");
/// assert_eq!(Slug::parse("Acme"), Err(SlugError::InvalidCharacter { ch: 'A' }));
/// assert_eq!(Slug::parse("ab"), Err(SlugError::TooShort));
/// # Ok::<(), SlugError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

/// Why text is not a slug.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlugError {
    /// Fewer than 3 characters.
    #[error("slug must be at least 3 characters")]
    TooShort,
    /// More than 63 characters.
    #[error("slug must be at most 63 characters")]
    TooLong,
    /// A character outside `a-z`, `0-9`, `-`.
    #[error("slug may only contain a-z, 0-9 and `-` (found `{ch}`)")]
    InvalidCharacter {
        /// The first offending character.
        ch: char,
    },
    /// Starts with a digit or hyphen.
    #[error("slug must start with a letter")]
    MustStartWithLetter,
    /// Ends with a hyphen or has two in a row.
    #[error("slug must not end with `-` or contain `--`")]
    BadHyphen,
}

impl Slug {
    /// The fewest characters a slug has.
    pub const MIN: usize = 3;
    /// The most characters a slug has.
    pub const MAX: usize = 63;

    /// Parses a slug as given (no case folding: clients learn the rule).
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let text = input.trim();
        let length = text.chars().count();
        if length < Self::MIN {
            return Err(SlugError::TooShort);
        }
        if length > Self::MAX {
            return Err(SlugError::TooLong);
        }
        if let Some(ch) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(SlugError::InvalidCharacter { ch });
        }
        if !text.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(SlugError::MustStartWithLetter);
        }
        if text.ends_with('-') || text.contains("--") {
            return Err(SlugError::BadHyphen);
        }
        Ok(Self(text.to_owned()))
    }

    /// Derives a slug from a display name: lower case, runs of anything else become one
    /// hyphen, prefixed with `t-` when it would not start with a letter.
    pub fn from_name(name: &str) -> Result<Self, SlugError> {
        let mut slug = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let mut slug = slug.trim_end_matches('-').to_owned();
        if !slug.starts_with(|c: char| c.is_ascii_lowercase()) && !slug.is_empty() {
            slug.insert_str(0, "t-");
        }
        slug.truncate(Self::MAX);
        Self::parse(slug.trim_end_matches('-'))
    }
}

string_value!(Slug, SlugError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_slugs_round_trip() {
        for slug in ["abc", "acme-labs", "a1-b2-c3", "z99"] {
            let parsed = Slug::parse(slug).unwrap();
            assert_eq!(parsed.as_str(), slug);
            assert_eq!(parsed.to_string(), slug);
            assert_eq!(slug.parse::<Slug>().unwrap(), parsed);
            assert_eq!(
                serde_json::from_str::<Slug>(&serde_json::to_string(&parsed).unwrap()).unwrap(),
                parsed
            );
        }
        assert_eq!(Slug::parse("  acme ").unwrap().as_str(), "acme");
        assert!(Slug::parse(&"a".repeat(Slug::MAX)).is_ok());
        assert!(Slug::parse(&"a".repeat(Slug::MIN)).is_ok());
    }

    #[test]
    fn each_invalid_class_has_its_own_error() {
        assert_eq!(Slug::parse(""), Err(SlugError::TooShort));
        assert_eq!(Slug::parse("ab"), Err(SlugError::TooShort));
        assert_eq!(Slug::parse(&"a".repeat(64)), Err(SlugError::TooLong));
        assert_eq!(
            Slug::parse("Acme"),
            Err(SlugError::InvalidCharacter { ch: 'A' })
        );
        assert_eq!(
            Slug::parse("ac_me"),
            Err(SlugError::InvalidCharacter { ch: '_' })
        );
        assert_eq!(
            Slug::parse("acmé"),
            Err(SlugError::InvalidCharacter { ch: 'é' })
        );
        assert_eq!(Slug::parse("1acme"), Err(SlugError::MustStartWithLetter));
        assert_eq!(Slug::parse("-acme"), Err(SlugError::MustStartWithLetter));
        assert_eq!(Slug::parse("acme-"), Err(SlugError::BadHyphen));
        assert_eq!(Slug::parse("ac--me"), Err(SlugError::BadHyphen));
        assert!(serde_json::from_str::<Slug>("\"Acme\"").is_err());
    }

    #[test]
    fn names_become_slugs() {
        assert_eq!(Slug::from_name("Acme Labs").unwrap().as_str(), "acme-labs");
        assert_eq!(
            Slug::from_name("42 Things!").unwrap().as_str(),
            "t-42-things"
        );
        assert_eq!(
            Slug::from_name("  Über -- Café  ").unwrap().as_str(),
            "ber-caf"
        );
        assert_eq!(
            Slug::from_name(&"Long ".repeat(40)).unwrap().as_str().len(),
            63
        );
        assert_eq!(Slug::from_name("¡¡").unwrap_err(), SlugError::TooShort);
        assert_eq!(Slug::from_name("").unwrap_err(), SlugError::TooShort);
    }

    proptest! {
        #[test]
        fn generated_slugs_parse(slug in "[a-z][a-z0-9]{2,20}(-[a-z0-9]{1,10}){0,3}") {
            let parsed = Slug::parse(&slug).unwrap();
            prop_assert_eq!(parsed.as_str(), slug.as_str());
        }

        #[test]
        fn whatever_parses_follows_every_rule(input in any::<String>()) {
            if let Ok(slug) = Slug::parse(&input) {
                let text = slug.as_str();
                prop_assert!((Slug::MIN..=Slug::MAX).contains(&text.len()));
                prop_assert!(text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                prop_assert!(text.starts_with(|c: char| c.is_ascii_lowercase()));
                prop_assert!(!text.ends_with('-') && !text.contains("--"));
            }
        }

        #[test]
        fn slug_shaped_text_is_accepted_exactly_when_the_rules_hold(input in "[a-z0-9A-Z_-]{0,70}") {
            let rules = (Slug::MIN..=Slug::MAX).contains(&input.len())
                && input.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && input.starts_with(|c: char| c.is_ascii_lowercase())
                && !input.ends_with('-')
                && !input.contains("--");
            prop_assert_eq!(Slug::parse(&input).is_ok(), rules);
        }

        #[test]
        fn any_name_gives_a_valid_slug_or_too_short(name in any::<String>()) {
            match Slug::from_name(&name) {
                Ok(slug) => prop_assert!(Slug::parse(slug.as_str()).is_ok()),
                Err(error) => prop_assert_eq!(error, SlugError::TooShort),
            }
        }
    }

    // Hostile input: arbitrary bytes, round trips, idempotence, and the bounds at their edges.
    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_every_refusal_explains_itself(
            bytes in prop::collection::vec(any::<u8>(), 0..100),
        ) {
            let text = String::from_utf8_lossy(&bytes);
            match Slug::parse(&text) {
                Ok(slug) => {
                    let shown = slug.to_string(); // through Display, as clients see it
                    prop_assert_eq!(Slug::parse(&shown), Ok(slug.clone()));
                    let json = serde_json::to_string(&slug).unwrap();
                    prop_assert_eq!(serde_json::from_str::<Slug>(&json).unwrap(), slug);
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
            let _ = Slug::from_name(&text);
        }

        #[test]
        fn deriving_a_slug_is_idempotent(name in any::<String>()) {
            if let Ok(slug) = Slug::from_name(&name) {
                prop_assert_eq!(Slug::from_name(slug.as_str()), Ok(slug.clone()));
                prop_assert_eq!(Slug::parse(slug.as_str()), Ok(slug));
            }
        }

        #[test]
        fn the_length_bounds_hold_at_their_exact_edges(
            first in "[a-z]",
            rest in prop::collection::vec("[a-z0-9]", 0..70),
        ) {
            let slug = format!("{first}{}", rest.concat());
            let length = slug.len();
            let expected = if length < Slug::MIN {
                Err(SlugError::TooShort)
            } else if length > Slug::MAX {
                Err(SlugError::TooLong)
            } else {
                Ok(slug.clone())
            };
            prop_assert_eq!(Slug::parse(&slug).map(String::from), expected);
        }
    }
}
