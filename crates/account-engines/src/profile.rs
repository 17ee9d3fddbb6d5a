//! User profile and preferences: display name, IANA time zone, and a bounded JSON object of
//! preferences, shallow-merged on update (a `null` value removes a key).

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::get_accounts_facade_driver;
use account_drivers::types::{DisplayName, TenantId, TextError, UserId};
use account_drivers::users::{ProfileChanges, ProfileSnapshot, UserAccountSnapshot};
pub use account_drivers::users::{ProfileSnapshot as Profile, UserAccountSnapshot as UserAccount};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

/// Most keys a preferences object holds.
pub const MAX_PREFERENCE_KEYS: usize = 64;
/// Most bytes the serialised preferences take.
pub const MAX_PREFERENCE_BYTES: usize = 16 * 1024;
/// Deepest nesting of a preference value.
pub const MAX_PREFERENCE_DEPTH: usize = 4;

/// Why a profile change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The user is not a member of the tenant.
    #[error("profile not found; check that the user is a member of this tenant")]
    NotFound,
    /// The display name is empty, too long or has control characters.
    #[error(transparent)]
    InvalidName(#[from] TextError),
    /// Not an IANA time zone name.
    #[error("`{0}` is not an IANA time zone (e.g. Europe/Paris, UTC)")]
    InvalidTimeZone(String),
    /// Preferences must be a JSON object within the limits.
    #[error(
        "preferences must be a JSON object of at most {MAX_PREFERENCE_KEYS} keys, {MAX_PREFERENCE_BYTES} bytes and nesting depth {MAX_PREFERENCE_DEPTH}: {0}"
    )]
    InvalidPreferences(&'static str),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for ProfileError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for ProfileError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "profile_not_found",
            Self::InvalidName(_) => "invalid_display_name",
            Self::InvalidTimeZone(_) => "invalid_time_zone",
            Self::InvalidPreferences(_) => "invalid_preferences",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::InvalidName(_) | Self::InvalidTimeZone(_) | Self::InvalidPreferences(_) => 422,
            Self::Storage(e) => e.http_status(),
        }
    }
}

/// What a profile update may change; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileUpdate {
    /// New display name.
    pub display_name: Option<String>,
    /// New IANA time zone.
    pub time_zone: Option<String>,
    /// Keys to set (a `null` value removes the key).
    pub preferences: Option<Json>,
}

fn depth(value: &Json) -> usize {
    match value {
        Json::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Json::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Merges `patch` into `current` one level deep; `null` removes a key. Checks the limits.
pub fn merge_preferences(current: Option<&Json>, patch: &Json) -> Result<Json, ProfileError> {
    let Json::Object(patch) = patch else {
        return Err(ProfileError::InvalidPreferences("not an object"));
    };
    let mut merged: Map<String, Json> = current
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    let merged = Json::Object(merged);
    if merged.as_object().map_or(0, Map::len) > MAX_PREFERENCE_KEYS {
        return Err(ProfileError::InvalidPreferences("too many keys"));
    }
    if depth(&merged) > MAX_PREFERENCE_DEPTH {
        return Err(ProfileError::InvalidPreferences("nested too deeply"));
    }
    if serde_json::to_string(&merged).map_or(usize::MAX, |s| s.len()) > MAX_PREFERENCE_BYTES {
        return Err(ProfileError::InvalidPreferences("too large"));
    }
    Ok(merged)
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(input: &str) -> Result<String, ProfileError> {
    let name = input.trim();
    name.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| ProfileError::InvalidTimeZone(name.chars().take(64).collect()))
}

/// The user's profile within the tenant (one query).
pub async fn get_profile(
    db: Db<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<ProfileSnapshot, ProfileError> {
    get_accounts_facade_driver(db)
        .fetch_profile(tenant, user)
        .await?
        .ok_or(ProfileError::NotFound)
}

/// Applies `update` to the user's profile; returns the account as stored.
pub async fn update_profile(
    db: Db<'_>,
    tenant: TenantId,
    user: UserId,
    update: ProfileUpdate,
    now: DateTime<Utc>,
) -> Result<UserAccountSnapshot, ProfileError> {
    let name = update
        .display_name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()?;
    let time_zone = update
        .time_zone
        .as_deref()
        .map(parse_time_zone)
        .transpose()?;
    let current = get_profile(db, tenant, user).await?;
    let preferences = update
        .preferences
        .as_ref()
        .map(|patch| merge_preferences(current.preferences.as_ref(), patch))
        .transpose()?;
    get_accounts_facade_driver(db)
        .update_user_profile(
            user,
            ProfileChanges {
                name: name.map(String::from),
                time_zone,
                preferences_merged: preferences,
            },
            now,
        )
        .await?
        .ok_or(ProfileError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn preferences_merge_shallowly_and_null_removes() {
        let current = json!({"theme": "dark", "lang": "en", "nested": {"a": 1}});
        let merged = merge_preferences(
            Some(&current),
            &json!({"lang": "fr", "theme": null, "nested": {"b": 2}}),
        )
        .unwrap();
        assert_eq!(merged, json!({"lang": "fr", "nested": {"b": 2}}));
    }

    #[test]
    fn preferences_are_bounded() {
        assert!(matches!(
            merge_preferences(None, &json!([1])),
            Err(ProfileError::InvalidPreferences(_))
        ));
        let many: Map<String, Json> = (0..=MAX_PREFERENCE_KEYS)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        assert!(merge_preferences(None, &Json::Object(many)).is_err());
        assert!(merge_preferences(None, &json!({"a": {"b": {"c": {"d": {"e": 1}}}}})).is_err());
        assert!(
            merge_preferences(None, &json!({"big": "x".repeat(MAX_PREFERENCE_BYTES)})).is_err()
        );
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(parse_time_zone(" Europe/Paris ").unwrap(), "Europe/Paris");
        assert_eq!(parse_time_zone("UTC").unwrap(), "UTC");
        assert!(matches!(
            parse_time_zone("Mars/Olympus"),
            Err(ProfileError::InvalidTimeZone(_))
        ));
    }

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            ProfileError::NotFound,
            ProfileError::InvalidName(TextError::Empty {
                field: "display name",
            }),
            ProfileError::InvalidTimeZone("Mars/Olympus".into()),
            ProfileError::InvalidPreferences("too many keys"),
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                ProfileError::NotFound
                | ProfileError::InvalidName(_)
                | ProfileError::InvalidTimeZone(_)
                | ProfileError::InvalidPreferences(_) => {}
                ProfileError::Storage(_) => unreachable!("not caller-caused"),
            }
        }
        crate::error::assert_caller_errors(&errors);
    }
}
