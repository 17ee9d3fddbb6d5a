//! Layer: L8 — values. The shapes of untrusted input, parsed rather than validated: once you
//! hold an `Email`, it is a valid, normalised email, and nothing downstream checks it again.
//!
//! The crate depends on no database, runtime or web crate on purpose: the models (L7) re-export
//! it for every layer above, and the fuzz targets (`fuzz/`) instrument it alone, which keeps
//! their build to seconds instead of the whole sea-orm stack.
//!
//! # Example
//!
//! Parse at the edge; a refusal says what to change.
//!
//! ```
//! use account_values::{Email, EmailError, Slug, SlugError};
//!
//! let email: Email = "  Ann.Lee@Example.COM ".parse()?;
//! assert_eq!(email.as_str(), "ann.lee@example.com");
//! assert_eq!(Email::parse("ann.example.com"), Err(EmailError::MissingAt));
//!
//! let slug = Slug::parse("acme-labs")?;
//! assert_eq!(slug.as_str(), "acme-labs");
//! let refused = Slug::parse("Acme Labs").unwrap_err();
//! assert_eq!(refused, SlugError::InvalidCharacter { ch: 'A' });
//! assert_eq!(
//!     refused.to_string(),
//!     "slug may only contain a-z, 0-9 and `-` (found `A`)"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod api_key_format;
mod email;
mod idempotency_key;
mod memory_pin_key;
mod names;
mod schema_name;
mod slug;

pub use email::{Email, EmailError};
pub use idempotency_key::{IdempotencyKey, IdempotencyKeyError};
pub use memory_pin_key::{MemoryPinKey, MemoryPinKeyError, MemoryPinPrefix};
pub use names::{
    ApiKeyName, DisplayName, FreeText, PinSource, Reason, TenantName, TextError, TicketDescription,
    TicketSubject,
};
pub use schema_name::{SchemaName, SchemaNameError};
pub use slug::{Slug, SlugError};

/// Implements the string plumbing every value object shares: `as_str`, `AsRef<str>`,
/// `Display`, `FromStr`, and serde as a plain string that parses on the way in.
macro_rules! string_value {
    ($name:ident, $error:ty) => {
        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $error;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;

            fn try_from(input: String) -> Result<Self, Self::Error> {
                Self::parse(&input)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_value;
