//! Plans by code, and the limits a plan grants.
//!
//! Plans are data (the `plans` table, issue 23): operators create, version and retire them,
//! and a migration seeds version 1 of the three built-in ones. A tenant is on one version of
//! one plan; that version's limits, with the tenant's overrides laid over them, are copied onto
//! the tenant row, where the writes that check them already read them.

use sea_orm::DeriveValueType;
use serde::{Deserialize, Deserializer, Serialize};

/// A plan's code: 1 to 50 characters of `a-z`, `0-9`, `-` and `_`, starting with a letter
/// (`free`, `pro`, `enterprise`, `team-2027`). Plans are data, so any code an operator created
/// is a plan; whether it exists is the database's to say.
///
/// # Examples
///
/// ```rust
/// use account_models::{PlanCode, PlanCodeError};
///
/// assert_eq!(PlanCode::parse("team-2027")?.as_str(), "team-2027");
/// assert_eq!(PlanCode::pro().as_str(), "pro");
/// assert_eq!(PlanCode::parse("Pro").unwrap_err().input, "Pro");
/// # Ok::<(), PlanCodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, DeriveValueType)]
#[serde(transparent)]
pub struct PlanCode(String);

/// The text given is not a plan code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a plan code: 1 to 50 characters of a-z, 0-9, `-` and `_`, starting with a letter"
)]
#[non_exhaustive]
pub struct PlanCodeError {
    /// The rejected text, cut to 64 characters.
    pub input: String,
}

impl PlanCode {
    /// The most characters a code has.
    pub const MAX: usize = 50;
    /// The codes of the built-in plans, seeded by the migration that made plans data.
    pub const BUILT_IN: [&'static str; 3] = ["free", "pro", "enterprise"];

    /// Parses a code exactly as stored (no case folding: a code is an identifier).
    pub fn parse(input: &str) -> Result<Self, PlanCodeError> {
        let valid = input.len() <= Self::MAX
            && input.starts_with(|c: char| c.is_ascii_lowercase())
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(PlanCodeError {
                input: input.chars().take(64).collect(),
            })
        }
    }

    /// The built-in default plan, new tenants' unless they ask for another.
    pub fn free() -> Self {
        Self("free".to_owned())
    }

    /// The built-in paid plan.
    pub fn pro() -> Self {
        Self("pro".to_owned())
    }

    /// The built-in contract plan.
    pub fn enterprise() -> Self {
        Self("enterprise".to_owned())
    }

    /// The code as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PlanCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PlanCode {
    type Err = PlanCodeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl<'de> Deserialize<'de> for PlanCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The limits a plan grants. Every plan states every limit, so a new limit is a new field
/// (a breaking change on purpose: every plan must then say its value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanQuotas {
    /// Distinct workers a tenant may enable.
    pub max_workers: i32,
    /// Runs admitted per UTC day.
    pub max_runs_per_day: i32,
    /// Runs queued or running at once.
    pub max_concurrent_runs: i32,
    /// Tokens per UTC calendar month.
    pub max_tokens_per_month: i64,
    /// Active API keys.
    pub max_api_keys: i32,
    /// Requests per minute of the whole tenant, every credential together, counted across
    /// instances; `None`: no tenant-wide limit (each key's own limit still applies).
    pub max_requests_per_minute: Option<i32>,
    /// Days the tenant's audit rows are kept before the retention purge removes them; `None`:
    /// kept forever.
    pub audit_retention_days: Option<i32>,
    /// Seats: members plus pending invitations; an invitation beyond them is refused.
    pub max_members: i32,
    /// Live (unexpired) memory pins a tenant may hold at once.
    pub max_memory_pins: i64,
    /// Most bytes one pin's serialised JSON value may take (at most 64 KiB, so a pin always
    /// fits the API's 128 KiB request body with its envelope).
    pub max_pin_value_bytes: i32,
}

impl PlanQuotas {
    /// Version 1 of a built-in plan as the migration that made plans data seeded it (`None`
    /// for any other code). A reference for tests, benchmarks and hosts' fixtures: the plans
    /// in force are the database's, which operators may have versioned since.
    ///
    /// ```rust
    /// use account_models::{PlanCode, PlanQuotas};
    ///
    /// let free = PlanQuotas::built_in(&PlanCode::free()).unwrap();
    /// assert_eq!(free.max_runs_per_day, 100);
    /// assert_eq!(PlanQuotas::built_in(&PlanCode::pro()).unwrap().max_api_keys, 20);
    /// ```
    pub fn built_in(code: &PlanCode) -> Option<Self> {
        Some(match code.as_str() {
            "free" => PlanQuotas {
                max_workers: 3,
                max_runs_per_day: 100,
                max_concurrent_runs: 5,
                max_tokens_per_month: 1_000_000,
                max_api_keys: 5,
                max_requests_per_minute: Some(6_000),
                audit_retention_days: Some(30),
                max_members: 10,
                max_memory_pins: 1_000,
                max_pin_value_bytes: 16 * 1024,
            },
            "pro" => PlanQuotas {
                max_workers: 10,
                max_runs_per_day: 1_000,
                max_concurrent_runs: 20,
                max_tokens_per_month: 10_000_000,
                max_api_keys: 20,
                max_requests_per_minute: Some(60_000),
                audit_retention_days: Some(365),
                max_members: 50,
                max_memory_pins: 10_000,
                max_pin_value_bytes: 64 * 1024,
            },
            "enterprise" => PlanQuotas {
                max_workers: 100,
                max_runs_per_day: 100_000,
                max_concurrent_runs: 100,
                max_tokens_per_month: 1_000_000_000,
                max_api_keys: 100,
                max_requests_per_minute: None,
                // Seven years: what audits of regulated customers usually ask for.
                audit_retention_days: Some(2_555),
                max_members: 1_000,
                max_memory_pins: 100_000,
                max_pin_value_bytes: 64 * 1024,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_in(code: &str) -> PlanQuotas {
        PlanQuotas::built_in(&PlanCode::parse(code).unwrap()).unwrap()
    }

    #[test]
    fn the_built_in_plans_match_the_specification() {
        // §4 of the specification, row by row; seats and pins are not in its table.
        let table = [
            ("free", (3, 100, 5, 1_000_000, 5, Some(6_000), Some(30))),
            (
                "pro",
                (10, 1_000, 20, 10_000_000, 20, Some(60_000), Some(365)),
            ),
            (
                "enterprise",
                (100, 100_000, 100, 1_000_000_000, 100, None, Some(2_555)),
            ),
        ];
        for (code, (workers, runs, concurrent, tokens, keys, requests, retention)) in table {
            let q = built_in(code);
            assert_eq!(
                (
                    q.max_workers,
                    q.max_runs_per_day,
                    q.max_concurrent_runs,
                    q.max_tokens_per_month,
                    q.max_api_keys,
                    q.max_requests_per_minute,
                    q.audit_retention_days
                ),
                (workers, runs, concurrent, tokens, keys, requests, retention),
                "{code}"
            );
            assert!(q.max_pin_value_bytes <= 64 * 1024, "{code}");
        }
        let seats: Vec<i32> = PlanCode::BUILT_IN
            .iter()
            .map(|c| built_in(c).max_members)
            .collect();
        assert_eq!(seats, vec![10, 50, 1_000]);
        assert_eq!(
            PlanQuotas::built_in(&PlanCode::parse("team").unwrap()),
            None
        );
    }

    #[test]
    fn higher_built_in_plans_never_grant_less() {
        for pair in PlanCode::BUILT_IN.windows(2) {
            let (lower, higher) = (built_in(pair[0]), built_in(pair[1]));
            assert!(higher.max_workers >= lower.max_workers);
            assert!(higher.max_runs_per_day >= lower.max_runs_per_day);
            assert!(higher.max_concurrent_runs >= lower.max_concurrent_runs);
            assert!(higher.max_tokens_per_month >= lower.max_tokens_per_month);
            assert!(higher.max_api_keys >= lower.max_api_keys);
            assert!(higher.max_memory_pins >= lower.max_memory_pins);
            assert!(higher.max_pin_value_bytes >= lower.max_pin_value_bytes);
            // No limit is the most a plan can grant.
            let requests = |q: PlanQuotas| q.max_requests_per_minute.unwrap_or(i32::MAX);
            assert!(requests(higher) >= requests(lower));
            let retention = |q: PlanQuotas| q.audit_retention_days.unwrap_or(i32::MAX);
            assert!(retention(higher) >= retention(lower));
        }
    }

    #[test]
    fn codes_are_identifiers() {
        for good in ["free", "team-2027", "a", "b_2"] {
            assert_eq!(PlanCode::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "Pro", "2x", "-a", "a b", "é", &"a".repeat(51)] {
            assert!(PlanCode::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<PlanCode>("\"Pro\"").is_err());
        assert_eq!(
            serde_json::to_string(&PlanCode::enterprise()).unwrap(),
            "\"enterprise\""
        );
    }
}
