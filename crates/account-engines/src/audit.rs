//! Audit entries: what the spine writes in the same transaction as the change it records.
//! Values pass through [`redact`] first, so no secret reaches the log.

use crate::{Db, StorageError};
use account_drivers::audit::{AuditEntrySnapshot, NewAuditEntry};
use account_drivers::get_tenant_driver;
use account_drivers::types::TenantId;
use chrono::{DateTime, Utc};
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

/// The tenant's audit entries, newest first.
pub async fn list(
    db: Db<'_>,
    tenant: TenantId,
    page: crate::OffsetPage,
) -> Result<crate::Page<AuditEntrySnapshot>, StorageError> {
    Ok(get_tenant_driver(db).fetch_audit_log(tenant, page).await?)
}

pub use account_drivers::audit::NewAuditEntry as AuditEntry;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let value = json!({"name": "ci", "token": "abc", "nested": [{"Key_Digest": "d", "ok": 1}], "client_secret": "s"});
        assert_eq!(
            redact(value),
            json!({"name": "ci", "token": "[redacted]", "nested": [{"Key_Digest": "[redacted]", "ok": 1}], "client_secret": "[redacted]"})
        );
    }
}
