//! User profile and preferences: display name, IANA time zone, preferred language (a BCP 47
//! tag), and a bounded JSON object of preferences, shallow-merged on update (a `null` value
//! removes a key).

use crate::json::{NulCharacter, reject_nul};
use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::get_accounts_facade_driver;
use account_drivers::types::{DisplayName, TenantId, TextError, UserId};
pub use account_drivers::users::ProfileSnapshot as Profile;
use account_drivers::users::{ProfileChanges, ProfileSnapshot, UserAccountSnapshot};
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
#[non_exhaustive]
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
    /// Not a BCP 47 language tag.
    #[error("`{0}` is not a BCP 47 language tag (e.g. fr-CA, de, zh-Hant-TW)")]
    InvalidLocale(String),
    /// Preferences must be a JSON object within the limits.
    #[error(
        "preferences must be a JSON object of at most {MAX_PREFERENCE_KEYS} keys, {MAX_PREFERENCE_BYTES} bytes and nesting depth {MAX_PREFERENCE_DEPTH}: {0}"
    )]
    InvalidPreferences(&'static str),
    /// A string or key in the preferences holds a NUL character, which storage cannot hold.
    #[error(transparent)]
    PreferencesHaveNul(NulCharacter),
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
            Self::InvalidLocale(_) => "invalid_locale",
            Self::InvalidPreferences(_) => "invalid_preferences",
            Self::PreferencesHaveNul(_) => "text_has_nul",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::InvalidName(_)
            | Self::InvalidTimeZone(_)
            | Self::InvalidLocale(_)
            | Self::InvalidPreferences(_)
            | Self::PreferencesHaveNul(_) => 422,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::PreferencesHaveNul(nul) => Some(&nul.field),
            Self::InvalidLocale(_) => Some("locale"),
            _ => None,
        }
    }
}

/// What a profile update may change; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ProfileUpdate {
    /// New display name.
    pub display_name: Option<String>,
    /// New IANA time zone.
    pub time_zone: Option<String>,
    /// New preferred language, a BCP 47 tag.
    pub locale: Option<String>,
    /// Keys to set (a `null` value removes the key).
    pub preferences: Option<Json>,
}

impl ProfileUpdate {
    /// Sets the display name.
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the IANA time zone.
    pub fn with_time_zone(mut self, time_zone: impl Into<String>) -> Self {
        self.time_zone = Some(time_zone.into());
        self
    }

    /// Sets the preferred language (a BCP 47 tag).
    pub fn with_locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    /// Merges these keys into the preferences (a `null` value removes the key).
    pub fn with_preferences(mut self, preferences: Json) -> Self {
        self.preferences = Some(preferences);
        self
    }
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
    let Json::Object(entries) = patch else {
        return Err(ProfileError::InvalidPreferences("not an object"));
    };
    // The patch only: what is stored already passed this check.
    reject_nul("preferences", patch).map_err(ProfileError::PreferencesHaveNul)?;
    let patch = entries;
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

/// Longest language tag stored (the column's width).
pub const MAX_LOCALE_CHARS: usize = 35;

/// Parses a BCP 47 language tag (`fr-CA`, `zh-Hant-TW`) into its canonical case: language
/// lower-case, script title-case, region upper-case, other subtags lower-case.
pub fn parse_locale(input: &str) -> Result<String, ProfileError> {
    let tag = input.trim();
    let refused = || ProfileError::InvalidLocale(tag.chars().take(MAX_LOCALE_CHARS).collect());
    let mut subtags = tag.split('-');
    let language = subtags.next().unwrap_or_default();
    let language_ok =
        (2..=8).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic());
    if !language_ok || tag.len() > MAX_LOCALE_CHARS {
        return Err(refused());
    }
    let mut canonical = language.to_ascii_lowercase();
    for subtag in subtags {
        let alphanumeric = subtag.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(1..=8).contains(&subtag.len()) || !alphanumeric {
            return Err(refused());
        }
        let letters = subtag.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = subtag.bytes().all(|b| b.is_ascii_digit());
        canonical.push('-');
        match subtag.len() {
            4 if letters => {
                canonical.push_str(&subtag[..1].to_ascii_uppercase());
                canonical.push_str(&subtag[1..].to_ascii_lowercase());
            }
            2 if letters => canonical.push_str(&subtag.to_ascii_uppercase()),
            3 if digits => canonical.push_str(subtag),
            _ => canonical.push_str(&subtag.to_ascii_lowercase()),
        }
    }
    Ok(canonical)
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
    let locale = update.locale.as_deref().map(parse_locale).transpose()?;
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
                locale,
                preferences_merged: preferences,
            },
            now,
        )
        .await?
        .ok_or(ProfileError::NotFound)
}

/// What `update` changed, as stored in `account`: the audit row's record of a profile
/// update. Only the fields the update set; of the preferences, the keys it touched.
pub fn changed_fields(update: &ProfileUpdate, account: &UserAccountSnapshot) -> Json {
    let mut changed = Map::new();
    if update.display_name.is_some() {
        changed.insert("name".to_owned(), Json::from(account.name.clone()));
    }
    if update.time_zone.is_some() {
        let time_zone = Json::from(account.time_zone.clone());
        changed.insert("time_zone".to_owned(), time_zone);
    }
    if update.locale.is_some() {
        changed.insert("locale".to_owned(), Json::from(account.locale.clone()));
    }
    if let Some(Json::Object(patch)) = &update.preferences {
        let keys: Vec<Json> = patch.keys().cloned().map(Json::from).collect();
        changed.insert("preference_keys".to_owned(), Json::Array(keys));
    }
    Json::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_audited_change_names_only_what_the_update_set_as_stored() {
        let mut account = UserAccountSnapshot::sample();
        account.email = "ann@example.com".into();
        account.name = Some("Ann".into());
        account.time_zone = Some("Europe/Paris".into());
        account.locale = Some("fr-CA".into());
        account.preferences = Some(json!({"theme": "dark", "lang": "en"}));
        let update = ProfileUpdate {
            time_zone: Some(" Europe/Paris ".into()),
            preferences: Some(json!({"theme": "dark"})),
            ..ProfileUpdate::default()
        };
        assert_eq!(
            changed_fields(&update, &account),
            json!({"time_zone": "Europe/Paris", "preference_keys": ["theme"]})
        );
        let rename = ProfileUpdate {
            display_name: Some("Ann".into()),
            locale: Some("FR-ca".into()),
            ..ProfileUpdate::default()
        };
        let changed = json!({"name": "Ann", "locale": "fr-CA"});
        assert_eq!(changed_fields(&rename, &account), changed);
    }

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

    /// Any JSON value, up to a few levels deep.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Json> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<f64>().prop_map(Json::from),
            ".{0,20}".prop_map(Json::from),
        ];
        leaf.prop_recursive(6, 80, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Json::from),
                proptest::collection::btree_map("[a-z%_'\\\\]{0,6}", inner, 0..8)
                    .prop_map(|map| Json::Object(map.into_iter().collect())),
            ]
        })
    }

    /// `{"a": [[...[1]...]]}` with `arrays` levels of arrays: depth `1 + arrays`.
    fn nested(arrays: usize) -> Json {
        let mut value = json!(1);
        for _ in 0..arrays {
            value = Json::Array(vec![value]);
        }
        json!({ "a": value })
    }

    // Hostile input: any JSON gives a bounded object or a typed refusal; merging is idempotent;
    // each bound holds at its exact edge.
    proptest::proptest! {
        #[test]
        fn any_json_merges_within_the_bounds_or_is_refused(
            current in any_json(),
            patch in any_json(),
        ) {
            // What is stored came out of an earlier merge.
            let current = merge_preferences(None, &current).ok();
            match merge_preferences(current.as_ref(), &patch) {
                Ok(merged) => {
                    let map = merged.as_object().unwrap();
                    proptest::prop_assert!(map.len() <= MAX_PREFERENCE_KEYS);
                    proptest::prop_assert!(depth(&merged) <= MAX_PREFERENCE_DEPTH);
                    proptest::prop_assert!(serde_json::to_string(&merged).unwrap().len() <= MAX_PREFERENCE_BYTES);
                    proptest::prop_assert!(map.values().all(|v| !v.is_null()), "null removes");
                    proptest::prop_assert!(reject_nul("preferences", &merged).is_ok(), "no NUL is kept");
                    let patch = patch.as_object().unwrap();
                    for (key, value) in patch {
                        proptest::prop_assert_eq!(map.get(key), (!value.is_null()).then_some(value));
                    }
                    // Idempotent: the same patch again changes nothing.
                    let again = merge_preferences(Some(&merged), &Json::Object(patch.clone()));
                    proptest::prop_assert_eq!(again.ok(), Some(merged.clone()));
                }
                Err(ProfileError::PreferencesHaveNul(nul)) => {
                    proptest::prop_assert!(nul.field.starts_with("preferences"));
                    proptest::prop_assert!(patch.to_string().contains("\\u0000"));
                }
                Err(error) => {
                    proptest::prop_assert!(matches!(error, ProfileError::InvalidPreferences(_)));
                    proptest::prop_assert!(error.to_string().starts_with("preferences must be"));
                }
            }
        }

        #[test]
        fn depth_is_bounded_at_exactly_four(arrays in 0usize..8) {
            let accepted = merge_preferences(None, &nested(arrays)).is_ok();
            proptest::prop_assert_eq!(accepted, arrays < MAX_PREFERENCE_DEPTH);
        }

        #[test]
        fn keys_are_bounded_at_exactly_64(count in 60usize..70) {
            let many: Map<String, Json> = (0..count).map(|i| (format!("k{i}"), json!(i))).collect();
            let accepted = merge_preferences(None, &Json::Object(many)).is_ok();
            proptest::prop_assert_eq!(accepted, count <= MAX_PREFERENCE_KEYS);
        }

        #[test]
        fn size_is_bounded_at_exactly_16_kib(extra in 0usize..8) {
            // `{"big":"` and `"}` take 10 bytes around the string.
            let length = MAX_PREFERENCE_BYTES - 10 - 4 + extra;
            let accepted = merge_preferences(None, &json!({"big": "x".repeat(length)})).is_ok();
            proptest::prop_assert_eq!(accepted, length + 10 <= MAX_PREFERENCE_BYTES);
        }

        #[test]
        fn time_zone_input_never_panics(input in proptest::prelude::any::<String>()) {
            match parse_time_zone(&input) {
                Ok(name) => proptest::prop_assert_eq!(parse_time_zone(&name).ok(), Some(name.clone())),
                Err(error) => proptest::prop_assert!(matches!(error, ProfileError::InvalidTimeZone(_))),
            }
        }
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
    fn locales_are_bcp47_tags_in_canonical_case() {
        for (input, tag) in [
            (" fr-ca ", "fr-CA"),
            ("DE", "de"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("sl-rozaj-biske", "sl-rozaj-biske"),
        ] {
            assert_eq!(parse_locale(input).unwrap(), tag, "{input}");
        }
        let long = format!("en-{}", "a1b2c3d4-".repeat(4));
        for bad in [
            "",
            "e",
            "fr_CA",
            "fr--CA",
            "fr-",
            "1a",
            "en-toolongsubtag",
            &long,
        ] {
            assert!(
                matches!(parse_locale(bad), Err(ProfileError::InvalidLocale(_))),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn locale_input_never_panics_and_canonical_tags_are_stable(input in proptest::prelude::any::<String>()) {
            if let Ok(tag) = parse_locale(&input) {
                proptest::prop_assert_eq!(parse_locale(&tag).ok(), Some(tag.clone()));
                proptest::prop_assert!(tag.len() <= MAX_LOCALE_CHARS);
            }
        }
    }

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            ProfileError::NotFound,
            ProfileError::InvalidName(TextError::Empty {
                field: "display name",
            }),
            ProfileError::InvalidTimeZone("Mars/Olympus".into()),
            ProfileError::InvalidLocale("fr_CA".into()),
            ProfileError::InvalidPreferences("too many keys"),
            ProfileError::PreferencesHaveNul(NulCharacter {
                field: "preferences.theme".into(),
                in_key: false,
            }),
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                ProfileError::NotFound
                | ProfileError::InvalidName(_)
                | ProfileError::InvalidTimeZone(_)
                | ProfileError::InvalidLocale(_)
                | ProfileError::InvalidPreferences(_)
                | ProfileError::PreferencesHaveNul(_) => {}
                ProfileError::Storage(_) => unreachable!("not caller-caused"),
            }
        }
        crate::error::assert_caller_errors(&errors);
    }
}
