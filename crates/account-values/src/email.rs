//! Email addresses, normalised to lower case so one person is one address.

use crate::string_value;

/// A syntactically valid email address, trimmed and lower-cased.
///
/// # Examples
///
/// ```rust
/// use account_values::{Email, EmailError};
///
/// let email = Email::parse("  Ann.Lee@Example.COM ")?;
/// assert_eq!(email.as_str(), "ann.lee@example.com");
/// assert_eq!(Email::parse("ann.example.com"), Err(EmailError::MissingAt));
/// assert_eq!(Email::parse("ann@localhost"), Err(EmailError::InvalidDomain));
/// # Ok::<(), EmailError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Why text is not an email address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Nothing was given.
    #[error("email is empty")]
    Empty,
    /// Longer than 254 characters.
    #[error("email must be at most 254 characters")]
    TooLong,
    /// No `@`.
    #[error("email must contain an `@`")]
    MissingAt,
    /// More than one `@`.
    #[error("email must contain exactly one `@`")]
    MultipleAt,
    /// The part before `@` is empty, longer than 64, or has characters email does not allow.
    #[error(
        "the part before `@` must be 1 to 64 letters, digits or .!#$%&'*+/=?^_`{{|}}~- without leading, trailing or double dots"
    )]
    InvalidLocalPart,
    /// The domain is not a dotted name of letters, digits and hyphens ending in a
    /// top-level domain with a letter (so neither `localhost` nor `127.0.0.1`).
    #[error(
        "the domain must be a name like example.com (labels of letters, digits and inner hyphens)"
    )]
    InvalidDomain,
}

const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";

impl Email {
    /// The most characters an address may have (RFC 5321's path limit less the brackets).
    pub const MAX: usize = 254;

    /// Parses and normalises an address.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        // ASCII case folding only: Unicode folding turns look-alikes such as KELVIN SIGN
        // (U+212A) into plain `k`, accepting an address nobody typed.
        let text = input.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err(EmailError::Empty);
        }
        if text.chars().count() > Self::MAX {
            return Err(EmailError::TooLong);
        }
        let mut parts = text.split('@');
        let (Some(local), Some(domain)) = (parts.next(), parts.next()) else {
            return Err(EmailError::MissingAt);
        };
        if parts.next().is_some() {
            return Err(EmailError::MultipleAt);
        }
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(EmailError::InvalidLocalPart);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        // A dotted name of at least two labels, whose last label (the top-level domain) has a
        // letter: this also refuses IP literals such as `127.0.0.1`.
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()));
        if !domain_ok {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Self(text))
    }
}

string_value!(Email, EmailError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_addresses_round_trip_normalised() {
        for (input, stored) in [
            ("ann@example.com", "ann@example.com"),
            (" Ann@Example.COM ", "ann@example.com"),
            (
                "first.last+tag@sub.example.co.uk",
                "first.last+tag@sub.example.co.uk",
            ),
            ("o'hara_x-1@a-b.io", "o'hara_x-1@a-b.io"),
            ("x@123.example.com", "x@123.example.com"),
        ] {
            let email = Email::parse(input).unwrap();
            assert_eq!(email.as_str(), stored);
            assert_eq!(email.to_string(), stored);
            assert_eq!(Email::parse(email.as_str()).unwrap(), email);
            assert_eq!(stored.parse::<Email>().unwrap(), email);
            assert_eq!(Email::try_from(stored.to_owned()).unwrap(), email);
            assert_eq!(String::from(email), stored);
        }
    }

    #[test]
    fn the_limits_are_inclusive() {
        let local = "l".repeat(64);
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(57)
        );
        let longest = format!("{local}@{domain}");
        assert_eq!(longest.len(), Email::MAX);
        assert!(Email::parse(&longest).is_ok());
        assert_eq!(
            Email::parse(&format!("{local}@x{domain}")),
            Err(EmailError::TooLong)
        );
        assert_eq!(
            Email::parse(&format!("{}@example.com", "l".repeat(65))),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse(&format!("ann@{}.com", "d".repeat(64))),
            Err(EmailError::InvalidDomain)
        );
    }

    #[test]
    fn each_invalid_class_has_its_own_error() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse(" \t "), Err(EmailError::Empty));
        assert_eq!(
            Email::parse(&format!("{}@example.com", "a".repeat(250))),
            Err(EmailError::TooLong)
        );
        assert_eq!(Email::parse("ann.example.com"), Err(EmailError::MissingAt));
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::MultipleAt));
        for local in ["", ".ann", "ann.", "a..b", "a b", "ann(x)", "ann\"", "é"] {
            assert_eq!(
                Email::parse(&format!("{local}@example.com")),
                Err(EmailError::InvalidLocalPart),
                "{local:?}"
            );
        }
        for domain in [
            "",
            "localhost",
            "-bad.com",
            "bad-.com",
            "exa mple.com",
            "example..com",
            "example.com.",
            "127.0.0.1",
            "example.123",
            "[127.0.0.1]",
            "exämple.com",
            "ex_ample.com",
        ] {
            assert_eq!(
                Email::parse(&format!("ann@{domain}")),
                Err(EmailError::InvalidDomain),
                "{domain:?}"
            );
        }
    }

    #[test]
    fn serde_parses_on_the_way_in() {
        let email: Email = serde_json::from_str("\"ANN@example.com\"").unwrap();
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"ann@example.com\""
        );
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn generated_addresses_parse_lower_case(
            local in "[a-zA-Z0-9!#$%&'*+=?^_`{|}~-]{1,20}(\\.[a-zA-Z0-9_+-]{1,10}){0,2}",
            labels in prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", 1..4),
            tld in "[a-zA-Z]{2,6}",
            padding in "[ \t]{0,2}",
        ) {
            let input = format!("{padding}{local}@{}.{tld}{padding}", labels.join("."));
            let email = Email::parse(&input).unwrap();
            prop_assert_eq!(email.as_str(), input.trim().to_lowercase());
        }

        #[test]
        fn whatever_parses_is_normalised_and_parses_again(input in any::<String>()) {
            if let Ok(email) = Email::parse(&input) {
                let text = email.as_str();
                prop_assert_eq!(text, text.trim());
                prop_assert_eq!(text, text.to_lowercase());
                prop_assert!(text.chars().count() <= Email::MAX);
                prop_assert_eq!(text.matches('@').count(), 1);
                prop_assert_eq!(Email::parse(text), Ok(email.clone()));
            }
        }

        #[test]
        fn addresses_shaped_text_never_panics(input in "[ a-zA-Z0-9@.\\-_+é]{0,80}") {
            let _ = Email::parse(&input);
        }

        #[test]
        fn inner_whitespace_is_never_accepted(
            left in "[a-z]{1,10}",
            right in "[a-z]{1,10}",
            space in "[ \t\n]",
        ) {
            let in_local = format!("{left}{space}{right}@example.com");
            let in_domain = format!("{left}@{right}{space}x.com");
            prop_assert!(Email::parse(&in_local).is_err());
            prop_assert!(Email::parse(&in_domain).is_err());
        }
    }

    /// An address of exactly `length` characters (at least 70): a 64-character local part and
    /// a domain of 50-letter labels ending in `.com`.
    fn address_of_length(length: usize) -> String {
        let local = "l".repeat(64);
        let labels = length - local.len() - 1 - ".com".len();
        let mut domain: String = (1..=labels)
            .map(|i| if i % 51 == 0 { '.' } else { 'd' })
            .collect();
        if domain.ends_with('.') {
            domain.pop();
            domain.push('d');
        }
        format!("{local}@{domain}.com")
    }

    // Hostile input: arbitrary bytes, round trips, and the length bound at its exact edge.
    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_every_refusal_explains_itself(
            bytes in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let text = String::from_utf8_lossy(&bytes);
            match Email::parse(&text) {
                Ok(email) => {
                    let shown = email.to_string(); // through Display, as clients see it
                    prop_assert_eq!(Email::parse(&shown), Ok(email.clone()));
                    let json = serde_json::to_string(&email).unwrap();
                    prop_assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), email);
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
            // The same bytes as a JSON string field: a serde error, never a panic.
            let _ = serde_json::from_value::<Email>(serde_json::Value::String(text.into_owned()));
        }

        #[test]
        fn only_ascii_addresses_are_accepted(
            local in "[a-zA-Z0-9.\u{212A}\u{130}\u{17F}\u{C9}\u{FF21}]{1,12}",
            domain in "[a-zA-Z\u{212A}\u{130}\u{17F}]{1,12}",
        ) {
            // Case folding must not turn a look-alike (KELVIN SIGN, dotted I, fullwidth A)
            // into a plain letter: what is stored is what the person typed, lower-cased.
            let input = format!("{local}@{domain}.com");
            if let Ok(email) = Email::parse(&input) {
                prop_assert!(input.is_ascii(), "{:?} became {:?}", input, email.as_str());
                prop_assert_eq!(email.as_str(), input.to_ascii_lowercase());
            }
        }

        #[test]
        fn the_length_bound_holds_at_its_exact_edge(length in 200usize..300) {
            let address = address_of_length(length);
            prop_assert_eq!(address.chars().count(), length);
            let parsed = Email::parse(&address);
            if length <= Email::MAX {
                prop_assert_eq!(parsed.map(String::from), Ok(address));
            } else {
                prop_assert_eq!(parsed, Err(EmailError::TooLong));
            }
        }
    }
}
