//! Audit entries: what the spine writes in the same transaction as the change it records
//! ([`record`]; values pass through [`redact`] first, so no secret reaches the log), how the
//! log is read ([`list`] a page at a time, [`export_chunk`] a large chunk at a time for a
//! streamed export), and how it is kept bounded ([`retention_cutoff`], [`purge_before`]: rows
//! older than the tenant's retention are deleted in batches).

use crate::{Db, DriverError, ErrorCode, KeysetPage, PageRequest, StorageError};
pub use account_drivers::audit::{
    ActionMatch, AuditEntrySnapshot as AuditRecord, AuditFilter, AuditPosition, AuditRetention,
};
use account_drivers::audit::{AuditEntrySnapshot, NewAuditEntry};
use account_drivers::get_tenant_driver;
use account_drivers::types::TenantId;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value as Json;

/// Object keys whose values are secrets, matched case-insensitively as substrings.
const SECRET_KEYS: &[&str] = &[
    "token",
    "secret",
    "password",
    "digest",
    "plaintext",
    "api_key_value",
];

/// Rows one chunk of an export reads: large enough that a million rows take a thousand
/// statements, small enough that a chunk is a few hundred kilobytes in memory.
pub const EXPORT_CHUNK_ROWS: u64 = 1_000;

/// Longest action filter, in characters (`audit_log.action varchar(100)`).
pub const MAX_ACTION_CHARS: usize = 100;
/// Longest resource type filter, in characters (`audit_log.resource_type varchar(50)`).
pub const MAX_RESOURCE_TYPE_CHARS: usize = 50;
/// Longest resource id filter, in characters (`audit_log.resource_id varchar(100)`).
pub const MAX_RESOURCE_ID_CHARS: usize = 100;

/// What ends an action filter that matches a family of actions: `api_key.*`.
const ACTION_WILDCARD: &str = ".*";

/// Why an audit log read was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// The action filter is empty, too long, or has a `*` anywhere but a final `.*`.
    #[error(
        "action must be an action (`api_key.revoked`) or a family of them ending in `.*` \
         (`api_key.*`), 1 to {MAX_ACTION_CHARS} characters, with no other `*`"
    )]
    InvalidAction,
    /// The resource filter is empty or longer than its column.
    #[error(
        "{field} must be 1 to {max} characters",
        max = if *field == "resource_type" { MAX_RESOURCE_TYPE_CHARS } else { MAX_RESOURCE_ID_CHARS }
    )]
    InvalidResource {
        /// `resource_type` or `resource_id`.
        field: &'static str,
    },
    /// The window ends before (or where) it starts.
    #[error("from must be before to")]
    InvalidWindow,
    /// An export was asked for without both ends of its window.
    #[error("an export needs a window: give from (and to, which defaults to now)")]
    ExportNeedsWindow,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for AuditError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for AuditError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for AuditError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidPage => "invalid_page",
            Self::InvalidAction => "invalid_action",
            Self::InvalidResource { .. } => "invalid_resource",
            Self::InvalidWindow => "invalid_window",
            Self::ExportNeedsWindow => "export_needs_window",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::Storage(e) => e.http_status(),
            _ => 422,
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidPage => Some("limit"),
            Self::InvalidAction => Some("action"),
            Self::InvalidResource { field } => Some(field),
            Self::InvalidWindow => Some("from"),
            Self::ExportNeedsWindow => Some("from"),
            Self::Storage(e) => e.field(),
        }
    }
}

/// Replaces the values of secret-looking keys with `"[redacted]"`, at any depth.
pub fn redact(value: Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    if SECRET_KEYS.iter().any(|s| lower.contains(s)) {
                        (key, Json::String("[redacted]".into()))
                    } else {
                        (key, redact(value))
                    }
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// Writes `entry` with its values redacted.
pub async fn record(
    db: Db<'_>,
    entry: NewAuditEntry,
    now: DateTime<Utc>,
) -> Result<AuditEntrySnapshot, StorageError> {
    Ok(get_tenant_driver(db)
        .insert_audit_log(redacted(entry), now)
        .await?)
}

/// `entry` with its values redacted, for an engine that writes it with its own change.
pub(crate) fn redacted(mut entry: NewAuditEntry) -> NewAuditEntry {
    entry.old_value = entry.old_value.map(redact);
    entry.new_value = entry.new_value.map(redact);
    entry
}

/// Parses an action filter: `api_key.revoked` matches that action, `api_key.*` every action
/// of the family (`api_key.` and anything after it, taken literally).
///
/// ```
/// use account_engines::audit::{ActionMatch, parse_action};
///
/// assert_eq!(parse_action("api_key.*")?, ActionMatch::Prefix("api_key.".into()));
/// assert_eq!(parse_action("run.admitted")?, ActionMatch::Exact("run.admitted".into()));
/// assert!(parse_action("*").is_err() && parse_action("api_*.created").is_err());
/// # Ok::<(), account_engines::audit::AuditError>(())
/// ```
pub fn parse_action(text: &str) -> Result<ActionMatch, AuditError> {
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_ACTION_CHARS {
        return Err(AuditError::InvalidAction);
    }
    match text.strip_suffix(ACTION_WILDCARD) {
        Some(family) if !family.is_empty() && !family.contains('*') => {
            Ok(ActionMatch::Prefix(format!("{family}.")))
        }
        None if !text.contains('*') => Ok(ActionMatch::Exact(text.to_owned())),
        _ => Err(AuditError::InvalidAction),
    }
}

/// Refuses a filter no stored row could be meant by: text longer than its column, or empty,
/// and a window that ends before it starts.
fn check_filter(filter: &AuditFilter) -> Result<(), AuditError> {
    let within = |value: &Option<String>, max: usize| {
        value
            .as_ref()
            .is_none_or(|v| !v.is_empty() && v.chars().count() <= max)
    };
    if !within(&filter.resource_type, MAX_RESOURCE_TYPE_CHARS) {
        return Err(AuditError::InvalidResource {
            field: "resource_type",
        });
    }
    if !within(&filter.resource_id, MAX_RESOURCE_ID_CHARS) {
        return Err(AuditError::InvalidResource {
            field: "resource_id",
        });
    }
    if let Some(ActionMatch::Exact(text) | ActionMatch::Prefix(text)) = &filter.action
        && (text.is_empty() || text.chars().count() > MAX_ACTION_CHARS)
    {
        return Err(AuditError::InvalidAction);
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(AuditError::InvalidWindow);
    }
    Ok(())
}

/// A page of the tenant's entries matching `filter`, newest first, after `after`: `limit` 1
/// to 100 entries, one statement whatever the depth.
pub async fn list(
    db: Db<'_>,
    tenant: TenantId,
    filter: &AuditFilter,
    after: Option<AuditPosition>,
    limit: u64,
) -> Result<KeysetPage<AuditRecord, AuditPosition>, AuditError> {
    let limit = PageRequest::limit(limit)?;
    check_filter(filter)?;
    Ok(get_tenant_driver(db)
        .fetch_audit_log_after(tenant, filter, after, limit)
        .await?)
}

/// The next [`EXPORT_CHUNK_ROWS`] of an export: the list's order and filter, in larger
/// chunks, and only within a window (`from` and `to` both given), so an export always ends.
pub async fn export_chunk(
    db: Db<'_>,
    tenant: TenantId,
    filter: &AuditFilter,
    after: Option<AuditPosition>,
) -> Result<KeysetPage<AuditRecord, AuditPosition>, AuditError> {
    if filter.from.is_none() || filter.to.is_none() {
        return Err(AuditError::ExportNeedsWindow);
    }
    check_filter(filter)?;
    Ok(get_tenant_driver(db)
        .fetch_audit_log_after(tenant, filter, after, EXPORT_CHUNK_ROWS)
        .await?)
}

/// Where a purge of the tenant's log stops: entries written before `before` are past the
/// tenant's retention of `days` days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeCutoff {
    /// The retention, in days.
    pub days: i32,
    /// Entries written before this instant are deleted.
    pub before: DateTime<Utc>,
}

/// The cutoff of the tenant's retention at `now`; `None` when its rows are kept forever (no
/// retention, or one below a day, which can only be a mistake and must not empty the log),
/// or when there is no such tenant.
pub async fn retention_cutoff(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<Option<PurgeCutoff>, AuditError> {
    let days = get_tenant_driver(db).fetch_audit_retention(tenant).await?;
    Ok(days.and_then(|days| cutoff(days, now)))
}

/// `now` less `days` days, for a retention of at least a day.
fn cutoff(days: i32, now: DateTime<Utc>) -> Option<PurgeCutoff> {
    if days < 1 {
        return None;
    }
    let before = now.checked_sub_signed(TimeDelta::days(i64::from(days)))?;
    Some(PurgeCutoff { days, before })
}

/// Deletes at most `batch` of the tenant's entries written before `before`, oldest first, in
/// the caller's transaction; returns how many (fewer than `batch`: nothing older is left).
pub async fn purge_before(
    db: Db<'_>,
    tenant: TenantId,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, AuditError> {
    Ok(get_tenant_driver(db)
        .purge_audit_log_before(tenant, before, batch.max(1))
        .await?)
}

/// At most `limit` tenants whose rows have a retention, by id after `after` (the purge job
/// walks every tenant this way).
pub async fn tenants_with_retention(
    db: Db<'_>,
    after: Option<TenantId>,
    limit: u64,
) -> Result<Vec<AuditRetention>, AuditError> {
    Ok(get_tenant_driver(db)
        .fetch_audit_retentions(after, limit)
        .await?)
}

pub use account_drivers::audit::NewAuditEntry as AuditEntry;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let value = json!({"name": "ci", "token": "abc", "nested": [{"Key_Digest": "d", "ok": 1}], "client_secret": "s"});
        assert_eq!(
            redact(value),
            json!({"name": "ci", "token": "[redacted]", "nested": [{"Key_Digest": "[redacted]", "ok": 1}], "client_secret": "[redacted]"})
        );
    }

    #[test]
    fn an_action_filter_is_one_action_or_a_family_ending_in_dot_star() {
        assert_eq!(
            parse_action("api_key.*").unwrap(),
            ActionMatch::Prefix("api_key.".into())
        );
        assert_eq!(
            parse_action("authorization.refused").unwrap(),
            ActionMatch::Exact("authorization.refused".into())
        );
        let long = "a".repeat(MAX_ACTION_CHARS + 1);
        for bad in [
            "",
            "*",
            ".*",
            "api_key*",
            "*.created",
            "a.*.*",
            long.as_str(),
        ] {
            assert!(parse_action(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_retention_below_a_day_purges_nothing() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 12, 0, 0).unwrap();
        assert_eq!(
            cutoff(30, now),
            Some(PurgeCutoff {
                days: 30,
                before: Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap(),
            })
        );
        assert_eq!(cutoff(0, now), None);
        assert_eq!(cutoff(-5, now), None);
    }

    #[test]
    fn windows_and_resources_outside_the_columns_are_refused() {
        let mut filter = AuditFilter::default();
        assert!(check_filter(&filter).is_ok());
        let now = Utc::now();
        (filter.from, filter.to) = (Some(now), Some(now));
        assert!(matches!(
            check_filter(&filter),
            Err(AuditError::InvalidWindow)
        ));
        let mut filter = AuditFilter::default();
        filter.resource_id = Some("x".repeat(MAX_RESOURCE_ID_CHARS + 1));
        assert!(matches!(
            check_filter(&filter),
            Err(AuditError::InvalidResource {
                field: "resource_id"
            })
        ));
    }

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        crate::error::assert_caller_errors(&[
            AuditError::InvalidPage,
            AuditError::InvalidAction,
            AuditError::InvalidResource {
                field: "resource_type",
            },
            AuditError::InvalidWindow,
            AuditError::ExportNeedsWindow,
        ]);
    }
}
