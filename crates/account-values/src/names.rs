//! Stored text: bounded fields (trimmed, length counted in characters) and [`FreeText`], all
//! under one rule for control characters, the same on every backend: no control character
//! (Unicode `Cc`), except line feed and tab in fields that hold several lines. NUL gets its own
//! error ([`TextError::Nul`]) because it is the one PostgreSQL cannot store at all while SQLite
//! can: refused here, it is refused alike everywhere. Carriage return is refused too: a line
//! break is `\n`.

use crate::string_value;

/// Why text does not fit a bounded field.
///
/// # Examples
///
/// ```rust
/// use account_values::{TenantName, TextError, TicketDescription};
///
/// assert_eq!(TenantName::parse("  Acme Labs ")?.as_str(), "Acme Labs");
/// assert_eq!(TenantName::parse(" "), Err(TextError::Empty { field: "tenant name" }));
/// assert_eq!(
///     TenantName::parse(&"x".repeat(TenantName::MAX + 1)),
///     Err(TextError::TooLong { field: "tenant name", max: 255 })
/// );
/// assert_eq!(
///     TenantName::parse("two\nlines"),
///     Err(TextError::ControlCharacter { field: "tenant name" })
/// );
/// assert!(TicketDescription::parse("two\nlines").is_ok());
/// # Ok::<(), TextError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// Contains the NUL character (U+0000).
    #[error("{field} must not contain the NUL character (U+0000)")]
    Nul {
        /// The field.
        field: &'static str,
    },
}

impl TextError {
    /// The field the text was given for.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Empty { field }
            | Self::TooLong { field, .. }
            | Self::ControlCharacter { field }
            | Self::Nul { field } => field,
        }
    }
}

/// The control-character rule every stored text follows (see the module's documentation).
fn refuse_control(field: &'static str, text: &str, multiline: bool) -> Result<(), TextError> {
    if text.contains('\0') {
        return Err(TextError::Nul { field });
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        return Err(TextError::ControlCharacter { field });
    }
    Ok(())
}

/// Multi-line text a caller stores that has no bounded type of its own (a run's task, its
/// error text): kept as given (untrimmed; the caller bounds its length), under the
/// control-character rule of every stored text.
///
/// ```rust
/// use account_values::{FreeText, TextError};
///
/// assert_eq!(FreeText::parse("task", " two\n\tlines ")?.as_str(), " two\n\tlines ");
/// assert_eq!(FreeText::parse("task", "a\0b"), Err(TextError::Nul { field: "task" }));
/// assert_eq!(
///     FreeText::parse("error", "bell\u{7}"),
///     Err(TextError::ControlCharacter { field: "error" })
/// );
/// # Ok::<(), TextError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FreeText(String);

impl FreeText {
    /// Checks `input`, given for `field`, against the control-character rule.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, TextError> {
        refuse_control(field, input, true)?;
        Ok(Self(input.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<FreeText> for String {
    fn from(text: FreeText) -> Self {
        text.0
    }
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
    refuse_control(field, text, multiline)?;
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
    use proptest::prelude::*;

    /// Checks one bounded type: round trip, both limits, and each invalid class.
    macro_rules! check_bounded {
        ($name:ident, $field:literal, $max:literal, multiline = $multiline:literal) => {{
            assert_eq!($name::MAX, $max);
            let value = $name::parse("  Some text  ").unwrap();
            assert_eq!(value.as_str(), "Some text");
            assert_eq!(value.to_string(), "Some text");
            assert_eq!("Some text".parse::<$name>().unwrap(), value);
            assert_eq!($name::try_from("Some text".to_owned()).unwrap(), value);
            assert_eq!(String::from(value.clone()), "Some text");
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(serde_json::from_str::<$name>(&json).unwrap(), value);

            assert_eq!(
                $name::parse(&"é".repeat($max))
                    .unwrap()
                    .as_str()
                    .chars()
                    .count(),
                $max
            );
            assert_eq!(
                $name::parse(&"é".repeat($max + 1)),
                Err(TextError::TooLong {
                    field: $field,
                    max: $max
                })
            );
            assert_eq!($name::parse(""), Err(TextError::Empty { field: $field }));
            assert_eq!(
                $name::parse(" \t\n "),
                Err(TextError::Empty { field: $field })
            );
            assert_eq!(
                $name::parse("a\u{7}b"),
                Err(TextError::ControlCharacter { field: $field })
            );
            assert_eq!(
                $name::parse("a\u{0}b"),
                Err(TextError::Nul { field: $field })
            );
            assert_eq!(
                $name::parse("a\rb"),
                Err(TextError::ControlCharacter { field: $field })
            );
            assert_eq!($name::parse("line\nline").is_ok(), $multiline);
            assert_eq!($name::parse("tab\tbed").is_ok(), $multiline);
            assert!(serde_json::from_str::<$name>("\"\"").is_err());
        }};
    }

    #[test]
    fn every_bounded_text_type_keeps_its_rules() {
        check_bounded!(TenantName, "tenant name", 255, multiline = false);
        check_bounded!(DisplayName, "display name", 255, multiline = false);
        check_bounded!(ApiKeyName, "API key name", 100, multiline = false);
        check_bounded!(TicketSubject, "ticket subject", 200, multiline = false);
        check_bounded!(
            TicketDescription,
            "ticket description",
            4000,
            multiline = true
        );
        check_bounded!(PinSource, "pin source", 64, multiline = false);
        check_bounded!(Reason, "reason", 500, multiline = true);
    }

    #[test]
    fn messages_name_the_field_and_the_limit() {
        assert_eq!(
            TicketSubject::parse(&"s".repeat(201))
                .unwrap_err()
                .to_string(),
            "ticket subject must be at most 200 characters"
        );
        assert_eq!(
            ApiKeyName::parse(" ").unwrap_err().to_string(),
            "API key name must not be empty"
        );
    }

    proptest! {
        #[test]
        fn whatever_parses_is_trimmed_bounded_and_parses_again(input in any::<String>()) {
            if let Ok(name) = TicketSubject::parse(&input) {
                let text = name.as_str();
                prop_assert_eq!(text, text.trim());
                prop_assert!(!text.is_empty());
                prop_assert!(text.chars().count() <= TicketSubject::MAX);
                prop_assert!(!text.chars().any(char::is_control));
                prop_assert_eq!(TicketSubject::parse(text), Ok(name.clone()));
            }
        }

        #[test]
        fn printable_text_within_the_limit_is_kept(text in "[a-zA-Z0-9 .,'é-]{1,100}") {
            prop_assume!(!text.trim().is_empty());
            let name = ApiKeyName::parse(&text).unwrap();
            prop_assert_eq!(name.as_str(), text.trim());
        }
    }

    /// Hostile-input properties for one bounded type, as a module of proptests: arbitrary
    /// bytes never panic, what is accepted round-trips and is a fixed point, every refusal has
    /// a message, and the length bound holds at its exact edge (counted in characters).
    macro_rules! hostile_input {
        ($module:ident, $name:ident, $field:literal) => {
            mod $module {
                use super::super::*;
                use proptest::prelude::*;

                proptest! {
                    #[test]
                    fn arbitrary_bytes_never_panic_and_round_trip(
                        bytes in prop::collection::vec(any::<u8>(), 0..($name::MAX + 40).min(600)),
                    ) {
                        let text = String::from_utf8_lossy(&bytes);
                        match $name::parse(&text) {
                            Ok(value) => {
                                prop_assert_eq!($name::parse(&value.to_string()), Ok(value.clone()));
                                let json = serde_json::to_string(&value).unwrap();
                                prop_assert_eq!(serde_json::from_str::<$name>(&json).unwrap(), value);
                            }
                            Err(error) => {
                                let message = error.to_string();
                                prop_assert!(message.starts_with($field), "{}", message);
                            }
                        }
                    }

                    #[test]
                    fn the_length_bound_holds_at_its_exact_edge(
                        length in ($name::MAX - 2)..=($name::MAX + 2),
                        letter in "[a-zé漢😀]",
                    ) {
                        let text = letter.repeat(length);
                        let expected = if length <= $name::MAX {
                            Ok(text.clone())
                        } else {
                            Err(TextError::TooLong { field: $field, max: $name::MAX })
                        };
                        prop_assert_eq!($name::parse(&text).map(String::from), expected.clone());
                        // Surrounding whitespace does not count against the bound.
                        prop_assert_eq!($name::parse(&format!("  {text}\t")).map(String::from), expected);
                    }
                }
            }
        };
    }

    hostile_input!(tenant_name, TenantName, "tenant name");
    hostile_input!(display_name, DisplayName, "display name");
    hostile_input!(api_key_name, ApiKeyName, "API key name");
    hostile_input!(ticket_subject, TicketSubject, "ticket subject");
    hostile_input!(ticket_description, TicketDescription, "ticket description");
    hostile_input!(pin_source, PinSource, "pin source");
    hostile_input!(reason, Reason, "reason");
}
