//! Email addresses, normalised to lower case so one person is one address.

use super::string_value;

/// A syntactically valid email address, trimmed and lower-cased.
///
/// # Examples
///
/// ```rust
/// use account_models::values::Email;
///
/// let email = Email::parse("  Ann.Lee@Example.COM ").unwrap();
/// assert_eq!(email.as_str(), "ann.lee@example.com");
/// assert!(Email::parse("ann@localhost").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Why text is not an email address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
    /// The domain is not a dotted name of letters, digits and hyphens.
    #[error(
        "the domain must be a name like example.com (labels of letters, digits and inner hyphens)"
    )]
    InvalidDomain,
}

const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";

impl Email {
    /// Parses and normalises an address.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let text = input.trim().to_lowercase();
        if text.is_empty() {
            return Err(EmailError::Empty);
        }
        if text.chars().count() > 254 {
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
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
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
        ] {
            let email = Email::parse(input).unwrap();
            assert_eq!(email.as_str(), stored);
            assert_eq!(Email::parse(email.as_str()).unwrap(), email);
        }
    }

    #[test]
    fn each_invalid_class_has_its_own_error() {
        assert_eq!(Email::parse("  "), Err(EmailError::Empty));
        assert_eq!(
            Email::parse(&format!("{}@example.com", "a".repeat(250))),
            Err(EmailError::TooLong)
        );
        assert_eq!(Email::parse("ann.example.com"), Err(EmailError::MissingAt));
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::MultipleAt));
        assert_eq!(
            Email::parse("a..b@example.com"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("@example.com"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("ann@localhost"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(Email::parse("ann@-bad.com"), Err(EmailError::InvalidDomain));
        assert_eq!(
            Email::parse("ann@exa mple.com"),
            Err(EmailError::InvalidDomain)
        );
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
        fn generated_addresses_parse_lower_case(local in "[a-zA-Z0-9][a-zA-Z0-9_+-]{0,20}", domain in "[a-zA-Z0-9]{1,10}", tld in "[a-zA-Z]{2,6}") {
            let email = Email::parse(&format!("{local}@{domain}.{tld}")).unwrap();
            prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
        }

        #[test]
        fn arbitrary_text_never_panics(input in any::<String>()) {
            let _ = Email::parse(&input);
        }
    }
}
