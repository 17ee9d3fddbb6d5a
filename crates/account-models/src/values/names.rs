//! Bounded text fields: trimmed, length counted in characters, no control characters.

use super::string_value;

/// Why text does not fit a bounded field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty after trimming.
    #[error("{field} must not be empty")]
    Empty {
        /// The field, e.g. `ticket subject`.
        field: &'static str,
    },
    /// Longer than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// Contains a control character it may not.
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The field.
        field: &'static str,
    },
}

fn parse_text(
    input: &str,
    field: &'static str,
    max: usize,
    multiline: bool,
) -> Result<String, TextError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(TextError::Empty { field });
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        return Err(TextError::ControlCharacter { field });
    }
    Ok(text.to_owned())
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $multiline:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The most characters it holds.
            pub const MAX: usize = $max;

            /// Parses and trims the text.
            pub fn parse(input: &str) -> Result<Self, TextError> {
                parse_text(input, $field, $max, $multiline).map(Self)
            }
        }

        string_value!($name, TextError);
    };
}

bounded_text!(
    /// A tenant's display name (1 to 255 characters).
    TenantName, "tenant name", 255, false
);
bounded_text!(
    /// A user's display name (1 to 255 characters).
    DisplayName, "display name", 255, false
);
bounded_text!(
    /// An API key's label (1 to 100 characters).
    ApiKeyName, "API key name", 100, false
);
bounded_text!(
    /// A support ticket's subject (1 to 200 characters).
    TicketSubject, "ticket subject", 200, false
);
bounded_text!(
    /// A support ticket's body (1 to 4000 characters, line breaks allowed).
    TicketDescription, "ticket description", 4000, true
);
bounded_text!(
    /// Who wrote a memory pin (1 to 64 characters).
    PinSource, "pin source", 64, false
);
bounded_text!(
    /// An actor's reason, for audit and history (1 to 500 characters, line breaks allowed).
    Reason, "reason", 500, true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(TenantName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert_eq!(
            TicketSubject::parse(" "),
            Err(TextError::Empty {
                field: "ticket subject"
            })
        );
        assert_eq!(
            TicketSubject::parse(&"s".repeat(201))
                .unwrap_err()
                .to_string(),
            "ticket subject must be at most 200 characters"
        );
        assert_eq!(
            ApiKeyName::parse("a\u{7}b"),
            Err(TextError::ControlCharacter {
                field: "API key name"
            })
        );
        assert!(TicketDescription::parse("line one\nline two").is_ok());
        assert!(TenantName::parse("line one\nline two").is_err());
        assert_eq!(
            PinSource::parse(&"é".repeat(64))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            64
        );
    }
}
