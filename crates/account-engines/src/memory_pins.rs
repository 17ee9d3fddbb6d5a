//! Memory pins: a per-tenant key-value store with TTL (§3.12). Keys and sources are parsed
//! value objects; values are JSON objects within a size limit; a tenant holds a bounded
//! number of live pins; both limits come from the tenant's plan
//! (the tenant row's `max_memory_pins` and `max_pin_value_bytes`, from its plan version and
//! overrides). The TTL
//! counts from the write that set it (as Redis `SET ... EX` does), so re-saving a pin renews
//! it. Writes, hits and deletions are audited with a value digest.

use crate::PageRequest;
use crate::json::{NulCharacter, reject_nul};
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
use account_drivers::memory_pins::NewPinAudit;
use account_drivers::types::{
    MemoryPinKey, MemoryPinKeyError, MemoryPinPrefix, PinSource, TenantId, TextError,
};
use account_drivers::{get_memory_pins_driver, get_tenant_driver};
use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// Longest TTL: one year.
pub const MAX_TTL_SECONDS: i32 = 31_536_000;
/// Rows deleted per cleanup statement.
pub const CLEANUP_BATCH: u64 = 1_000;

pub use account_drivers::memory_pins::MemoryPinRow as MemoryPin;

/// Why a pin operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryPinError {
    /// The key breaks the key rules.
    #[error(transparent)]
    InvalidKey(#[from] MemoryPinKeyError),
    /// The source is empty or too long.
    #[error(transparent)]
    InvalidSource(#[from] TextError),
    /// The value is not a JSON object.
    #[error("a pin's value must be a JSON object")]
    ValueNotObject,
    /// A string or key in the value holds a NUL character, which storage cannot hold.
    #[error(transparent)]
    ValueHasNul(NulCharacter),
    /// The value is larger than the tenant's plan allows.
    #[error(
        "a pin's value must serialise to at most {max} bytes on this plan ({size} given); store less or upgrade the plan"
    )]
    ValueTooLarge {
        /// The plan's limit.
        max: usize,
        /// The value's serialised size.
        size: usize,
    },
    /// The TTL is out of range.
    #[error("ttl_seconds must be 0 to {MAX_TTL_SECONDS}, or absent for no expiry")]
    InvalidTtl,
    /// The tenant holds as many live pins as its plan allows.
    #[error(
        "the tenant already holds {limit} live pins, its plan's limit; delete some, let them expire or upgrade the plan"
    )]
    TooManyPins {
        /// The plan's limit.
        limit: u64,
    },
    /// No such pin (or it expired).
    #[error("pin not found (or expired); check the key")]
    NotFound,
    /// No such tenant.
    #[error("tenant not found; check the tenant id")]
    TenantNotFound,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for MemoryPinError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for MemoryPinError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for MemoryPinError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidKey(_) => "invalid_pin_key",
            Self::InvalidSource(_) => "invalid_pin_source",
            Self::ValueNotObject => "pin_value_not_object",
            Self::ValueHasNul(_) => "text_has_nul",
            Self::ValueTooLarge { .. } => "pin_value_too_large",
            Self::InvalidTtl => "invalid_ttl",
            Self::TooManyPins { .. } => "quota_pins",
            Self::NotFound => "pin_not_found",
            Self::TenantNotFound => "tenant_not_found",
            Self::InvalidPage => "invalid_page",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InvalidKey(_)
            | Self::InvalidSource(_)
            | Self::ValueNotObject
            | Self::ValueHasNul(_)
            | Self::InvalidTtl
            | Self::InvalidPage => 422,
            Self::ValueTooLarge { .. } => 413,
            Self::TooManyPins { .. } => 409,
            Self::NotFound | Self::TenantNotFound => 404,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidKey(_) => Some("key"),
            Self::InvalidSource(_) => Some("source"),
            Self::ValueNotObject | Self::ValueTooLarge { .. } => Some("value"),
            Self::ValueHasNul(nul) => Some(&nul.field),
            Self::InvalidTtl => Some("ttl_seconds"),
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// The first 16 hex characters of SHA-256 over the value's serialisation (serde_json sorts
/// no keys, but a value read back from either backend serialises the same way it was given).
pub fn value_hash(value: &Json) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A pin to save.
#[derive(Clone, Debug)]
pub struct SavePin {
    /// Key.
    pub key: String,
    /// A JSON object.
    pub value: Json,
    /// Who writes; `api` by default.
    pub source: Option<String>,
    /// Lifetime from this write; `None` keeps it forever.
    pub ttl_seconds: Option<i32>,
}

/// Inserts or replaces a pin; the TTL restarts with this write. The value size and the count
/// of live pins are checked against the tenant's plan, under the tenant row lock: replacing a
/// live pin never hits the count limit, and expired pins do not count.
pub async fn upsert(
    db: Db<'_>,
    tenant: TenantId,
    pin: SavePin,
    now: DateTime<Utc>,
) -> Result<MemoryPin, MemoryPinError> {
    let key = MemoryPinKey::parse(&pin.key)?;
    let source = PinSource::parse(pin.source.as_deref().unwrap_or("api"))?;
    if !pin.value.is_object() {
        return Err(MemoryPinError::ValueNotObject);
    }
    reject_nul("value", &pin.value).map_err(MemoryPinError::ValueHasNul)?;
    if pin
        .ttl_seconds
        .is_some_and(|ttl| !(0..=MAX_TTL_SECONDS).contains(&ttl))
    {
        return Err(MemoryPinError::InvalidTtl);
    }
    let tenants = get_tenant_driver(db);
    if !tenants.lock_tenant(tenant).await? {
        return Err(MemoryPinError::TenantNotFound);
    }
    let limits = tenants
        .fetch_tenant_snapshot(tenant)
        .await?
        .ok_or(MemoryPinError::TenantNotFound)?
        .quotas;
    let max_bytes = usize::try_from(limits.max_pin_value_bytes).unwrap_or_default();
    let size = pin.value.to_string().len();
    if size > max_bytes {
        return Err(MemoryPinError::ValueTooLarge {
            max: max_bytes,
            size,
        });
    }
    let pins = get_memory_pins_driver(db);
    let live = pins
        .list_pins(
            tenant,
            None,
            false,
            now,
            OffsetPage {
                limit: 1,
                offset: 0,
            },
        )
        .await?
        .total;
    let max_pins = u64::try_from(limits.max_memory_pins).unwrap_or_default();
    if live >= max_pins && pins.get_pin(tenant, key.as_str(), now).await?.is_none() {
        return Err(MemoryPinError::TooManyPins { limit: max_pins });
    }
    let saved = pins
        .upsert_pin(
            tenant,
            key.as_str(),
            pin.value,
            source.as_str(),
            pin.ttl_seconds,
            now,
        )
        .await?;
    pins.write_audit(
        audit(
            tenant,
            "upsert",
            key.as_str(),
            Some(source.as_str()),
            Some(value_hash(&saved.value)),
        ),
        now,
    )
    .await?;
    Ok(saved)
}

fn audit(
    tenant: TenantId,
    operation: &str,
    key: &str,
    source: Option<&str>,
    new_value_hash: Option<String>,
) -> NewPinAudit {
    NewPinAudit {
        tenant_id: tenant,
        operation: operation.to_owned(),
        key: key.to_owned(),
        source: source.map(str::to_owned),
        agent_id: None,
        success: true,
        error_message: None,
        old_value_hash: None,
        new_value_hash,
    }
}

/// A live (unexpired) pin; hits are audited, misses are not.
pub async fn get(
    db: Db<'_>,
    tenant: TenantId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<MemoryPin, MemoryPinError> {
    let key = MemoryPinKey::parse(key)?;
    let pins = get_memory_pins_driver(db);
    let pin = pins
        .get_pin(tenant, key.as_str(), now)
        .await?
        .ok_or(MemoryPinError::NotFound)?;
    pins.write_audit(audit(tenant, "get", key.as_str(), None, None), now)
        .await?;
    Ok(pin)
}

/// Pins whose key starts with `prefix` (literally), newest first.
pub async fn list(
    db: Db<'_>,
    tenant: TenantId,
    prefix: Option<&str>,
    include_expired: bool,
    page: OffsetPage,
    now: DateTime<Utc>,
) -> Result<Page<MemoryPin>, MemoryPinError> {
    let page = PageRequest::new(page)?.into_page();
    let prefix = prefix.map(MemoryPinPrefix::parse).transpose()?;
    Ok(get_memory_pins_driver(db)
        .list_pins(
            tenant,
            prefix.as_ref().map(MemoryPinPrefix::as_str),
            include_expired,
            now,
            page,
        )
        .await?)
}

/// Deletes a pin; audited when something was deleted.
pub async fn delete(
    db: Db<'_>,
    tenant: TenantId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<bool, MemoryPinError> {
    let key = MemoryPinKey::parse(key)?;
    let pins = get_memory_pins_driver(db);
    let deleted = pins.delete_pin(tenant, key.as_str()).await?;
    if deleted {
        pins.write_audit(audit(tenant, "delete", key.as_str(), None, None), now)
            .await?;
    }
    Ok(deleted)
}

/// Removes the tenant's expired pins in bounded batches; returns how many.
pub async fn cleanup(
    db: Db<'_>,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<u64, MemoryPinError> {
    Ok(get_memory_pins_driver(db)
        .cleanup_expired(Some(tenant), now, CLEANUP_BATCH)
        .await?)
}

/// Removes every tenant's expired pins (platform maintenance; the spine allows operators only).
pub async fn cleanup_all_tenants(db: Db<'_>, now: DateTime<Utc>) -> Result<u64, MemoryPinError> {
    Ok(get_memory_pins_driver(db)
        .cleanup_expired(None, now, CLEANUP_BATCH)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn value_hashes_are_short_and_stable() {
        let hash = value_hash(&json!({"a": 1}));
        assert_eq!(hash.len(), 16);
        assert_eq!(hash, value_hash(&json!({"a": 1})));
        assert_ne!(hash, value_hash(&json!({"a": 2})));
    }

    #[test]
    fn every_caller_error_is_a_4xx_that_says_what_to_change() {
        let errors = [
            MemoryPinError::InvalidKey(MemoryPinKeyError::ContainsDotDot),
            MemoryPinError::InvalidSource(TextError::Empty {
                field: "pin source",
            }),
            MemoryPinError::ValueNotObject,
            MemoryPinError::ValueHasNul(NulCharacter {
                field: "value.a".into(),
                in_key: false,
            }),
            MemoryPinError::ValueTooLarge {
                max: 16_384,
                size: 20_000,
            },
            MemoryPinError::InvalidTtl,
            MemoryPinError::TooManyPins { limit: 1_000 },
            MemoryPinError::NotFound,
            MemoryPinError::TenantNotFound,
            MemoryPinError::InvalidPage,
        ];
        for error in &errors {
            // Exhaustive: a new variant does not compile until it is listed above.
            match error {
                MemoryPinError::InvalidKey(_)
                | MemoryPinError::InvalidSource(_)
                | MemoryPinError::ValueNotObject
                | MemoryPinError::ValueHasNul(_)
                | MemoryPinError::ValueTooLarge { .. }
                | MemoryPinError::InvalidTtl
                | MemoryPinError::TooManyPins { .. }
                | MemoryPinError::NotFound
                | MemoryPinError::TenantNotFound
                | MemoryPinError::InvalidPage => {}
                MemoryPinError::Storage(_) => unreachable!("not caller-caused"),
            }
        }
        crate::error::assert_caller_errors(&errors);
        assert_eq!(
            MemoryPinError::TooManyPins { limit: 1_000 }.to_string(),
            "the tenant already holds 1000 live pins, its plan's limit; delete some, let them expire or upgrade the plan"
        );
    }
}
