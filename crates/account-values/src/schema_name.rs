//! The name of the database schema our tables live in.

use crate::string_value;
use thiserror::Error;

/// A PostgreSQL schema name (on SQLite, the name the account database is attached under):
/// 1 to 63 characters of lower-case ASCII letters, digits and `_`, starting with a letter or
/// `_`, and not `public`, `main`, `temp` or a `pg_` name, which belong to the database itself.
/// Being that narrow, it never needs quoting or escaping in SQL text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

/// Why a text is not a [`SchemaName`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SchemaNameError {
    /// Empty, or longer than PostgreSQL's 63-byte identifier limit.
    #[error("a schema name has 1 to 63 characters")]
    Length,
    /// A character outside `a-z`, `0-9`, `_`, or a digit first.
    #[error("a schema name is lower-case ASCII letters, digits and `_`, not starting with a digit")]
    Character,
    /// `public`, `main`, `temp`, `information_schema` or a `pg_` name.
    #[error("`{0}` is reserved by the database")]
    Reserved(String),
}

impl SchemaName {
    /// The default: `account`.
    pub const DEFAULT: &'static str = "account";

    /// Parses `text` as a schema name.
    pub fn parse(text: &str) -> Result<Self, SchemaNameError> {
        if text.is_empty() || text.len() > 63 {
            return Err(SchemaNameError::Length);
        }
        let first_ok = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok {
            return Err(SchemaNameError::Character);
        }
        if matches!(text, "public" | "main" | "temp" | "information_schema")
            || text.starts_with("pg_")
        {
            return Err(SchemaNameError::Reserved(text.to_owned()));
        }
        Ok(Self(text.to_owned()))
    }
}

impl Default for SchemaName {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

string_value!(SchemaName, SchemaNameError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_identifiers_and_refuses_the_rest() {
        assert_eq!(
            SchemaName::parse("account").map(|s| s.to_string()),
            Ok("account".into())
        );
        assert!(SchemaName::parse("_billing_2").is_ok());
        assert_eq!(SchemaName::parse(""), Err(SchemaNameError::Length));
        assert_eq!(
            SchemaName::parse(&"a".repeat(64)),
            Err(SchemaNameError::Length)
        );
        assert_eq!(
            SchemaName::parse("Account"),
            Err(SchemaNameError::Character)
        );
        assert_eq!(SchemaName::parse("9lives"), Err(SchemaNameError::Character));
        assert_eq!(
            SchemaName::parse("acc\"ount"),
            Err(SchemaNameError::Character)
        );
        assert_eq!(SchemaName::parse("a b"), Err(SchemaNameError::Character));
        assert!(matches!(
            SchemaName::parse("public"),
            Err(SchemaNameError::Reserved(_))
        ));
        assert!(matches!(
            SchemaName::parse("pg_temp"),
            Err(SchemaNameError::Reserved(_))
        ));
        assert_eq!(SchemaName::default().as_str(), SchemaName::DEFAULT);
    }
}
