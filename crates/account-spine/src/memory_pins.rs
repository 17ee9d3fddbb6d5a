//! Memory pin use cases, scoped to the principal's tenant.

use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::Subject;
use crate::{Spine, SpineError};
use account_engines::memory_pins;
pub use account_engines::memory_pins::{MemoryPin, SavePin};
use account_engines::{OffsetPage, Page};
use serde_json::json;

impl Spine {
    /// Saves a pin; its TTL restarts with this write.
    pub async fn upsert_pin(
        &self,
        principal: &Principal,
        pin: SavePin,
    ) -> Result<MemoryPin, SpineError> {
        let operation = Operation::PinsUpsert;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            write_use_case!(self, principal, operation, |db| {
                let saved = memory_pins::upsert(db, principal.tenant_id, pin.clone(), now).await?;
                let after = json!({"ttl_seconds": saved.ttl_seconds, "source": saved.source});
                self.audit(
                    db,
                    principal,
                    operation,
                    "memory_pin",
                    &saved.key,
                    None,
                    Some(after),
                    now,
                )
                .await?;
                Ok(saved)
            })
        })
        .await
    }

    /// A live pin. A read: it opens no write transaction (the engine's hit trail is one
    /// single-statement insert on the pool).
    pub async fn get_pin(&self, principal: &Principal, key: &str) -> Result<MemoryPin, SpineError> {
        let operation = Operation::PinsGet;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            read_use_case!(self, principal, operation, |db| {
                Ok(memory_pins::get(db, principal.tenant_id, key, now).await?)
            })
        })
        .await
    }

    /// Pins by literal key prefix, newest first.
    pub async fn list_pins(
        &self,
        principal: &Principal,
        prefix: Option<&str>,
        include_expired: bool,
        page: OffsetPage,
    ) -> Result<Page<MemoryPin>, SpineError> {
        let operation = Operation::PinsList;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            read_use_case!(self, principal, operation, |db| {
                Ok(
                    memory_pins::list(db, principal.tenant_id, prefix, include_expired, page, now)
                        .await?,
                )
            })
        })
        .await
    }

    /// Deletes a pin; whether one was deleted.
    pub async fn delete_pin(&self, principal: &Principal, key: &str) -> Result<bool, SpineError> {
        let operation = Operation::PinsDelete;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            write_use_case!(self, principal, operation, |db| {
                let deleted = memory_pins::delete(db, principal.tenant_id, key, now).await?;
                if deleted {
                    self.audit(db, principal, operation, "memory_pin", key, None, None, now)
                        .await?;
                }
                Ok(deleted)
            })
        })
        .await
    }

    /// Removes the tenant's expired pins; returns how many.
    pub async fn cleanup_pins(&self, principal: &Principal) -> Result<u64, SpineError> {
        let operation = Operation::PinsCleanup;
        self.observe(operation, Subject::Principal(principal), async {
            let now = self.clock.now();
            write_use_case!(self, principal, operation, |db| {
                let removed = memory_pins::cleanup(db, principal.tenant_id, now).await?;
                self.audit(
                    db,
                    principal,
                    operation,
                    "memory_pin",
                    "*",
                    None,
                    Some(json!({"removed": removed})),
                    now,
                )
                .await?;
                Ok(removed)
            })
        })
        .await
    }
}
