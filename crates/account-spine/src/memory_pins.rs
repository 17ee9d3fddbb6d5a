//! Memory pin use cases, scoped to the principal's tenant.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::memory_pins;
pub use account_engines::memory_pins::{MemoryPin, SavePin};
use account_engines::{OffsetPage, Page};
use serde_json::json;

/// Saves a pin; its TTL restarts with this write.
#[derive(Clone, Debug)]
pub struct UpsertPin {
    /// The pin.
    pub pin: SavePin,
}

impl Sealed for UpsertPin {}
impl UseCase for UpsertPin {
    type Output = MemoryPin;
    const OPERATION: Operation = Operation::PinsUpsert;

    async fn run(&self, cx: &mut Context<'_>) -> Result<MemoryPin, SpineError> {
        let saved = memory_pins::upsert(cx.db, cx.tenant()?, self.pin.clone(), cx.now).await?;
        let after = json!({"ttl_seconds": saved.ttl_seconds, "source": saved.source});
        cx.audit(Change::of("memory_pin", &saved.key).after(after))
            .await?;
        Ok(saved)
    }
}

/// A live pin. A read: it opens no write transaction (the engine's hit trail is one
/// single-statement insert on the pool).
#[derive(Clone, Debug)]
pub struct GetPin {
    /// The pin's key.
    pub key: String,
}

impl Sealed for GetPin {}
impl UseCase for GetPin {
    type Output = MemoryPin;
    const OPERATION: Operation = Operation::PinsGet;

    async fn run(&self, cx: &mut Context<'_>) -> Result<MemoryPin, SpineError> {
        Ok(memory_pins::get(cx.db, cx.tenant()?, &self.key, cx.now).await?)
    }
}

/// Pins by literal key prefix, newest first.
#[derive(Clone, Debug)]
pub struct ListPins {
    /// Only keys starting with this text.
    pub prefix: Option<String>,
    /// Expired pins too.
    pub include_expired: bool,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListPins {}
impl UseCase for ListPins {
    type Output = Page<MemoryPin>;
    const OPERATION: Operation = Operation::PinsList;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<MemoryPin>, SpineError> {
        let prefix = self.prefix.as_deref();
        let tenant = cx.tenant()?;
        let found = memory_pins::list(
            cx.db,
            tenant,
            prefix,
            self.include_expired,
            self.page,
            cx.now,
        );
        Ok(found.await?)
    }
}

/// Deletes a pin; whether one was deleted.
#[derive(Clone, Debug)]
pub struct DeletePin {
    /// The pin's key.
    pub key: String,
}

impl Sealed for DeletePin {}
impl UseCase for DeletePin {
    type Output = bool;
    const OPERATION: Operation = Operation::PinsDelete;

    async fn run(&self, cx: &mut Context<'_>) -> Result<bool, SpineError> {
        let deleted = memory_pins::delete(cx.db, cx.tenant()?, &self.key, cx.now).await?;
        if deleted {
            cx.audit(Change::of("memory_pin", &self.key)).await?;
        }
        Ok(deleted)
    }
}

/// Removes the tenant's expired pins; returns how many.
#[derive(Clone, Copy, Debug, Default)]
pub struct CleanupPins;

impl Sealed for CleanupPins {}
impl UseCase for CleanupPins {
    type Output = u64;
    const OPERATION: Operation = Operation::PinsCleanup;

    async fn run(&self, cx: &mut Context<'_>) -> Result<u64, SpineError> {
        let removed = memory_pins::cleanup(cx.db, cx.tenant()?, cx.now).await?;
        cx.audit(Change::of("memory_pin", "*").after(json!({"removed": removed})))
            .await?;
        Ok(removed)
    }
}

impl Spine {
    /// Executes [`UpsertPin`].
    pub async fn upsert_pin(
        &self,
        principal: &Principal,
        pin: SavePin,
    ) -> Result<MemoryPin, SpineError> {
        self.execute(principal, UpsertPin { pin }).await
    }

    /// Executes [`GetPin`].
    pub async fn get_pin(&self, principal: &Principal, key: &str) -> Result<MemoryPin, SpineError> {
        let key = key.to_owned();
        self.execute(principal, GetPin { key }).await
    }

    /// Executes [`ListPins`].
    pub async fn list_pins(
        &self,
        principal: &Principal,
        prefix: Option<&str>,
        include_expired: bool,
        page: OffsetPage,
    ) -> Result<Page<MemoryPin>, SpineError> {
        let prefix = prefix.map(str::to_owned);
        let list = ListPins {
            prefix,
            include_expired,
            page,
        };
        self.execute(principal, list).await
    }

    /// Executes [`DeletePin`].
    pub async fn delete_pin(&self, principal: &Principal, key: &str) -> Result<bool, SpineError> {
        let key = key.to_owned();
        self.execute(principal, DeletePin { key }).await
    }

    /// Executes [`CleanupPins`].
    pub async fn cleanup_pins(&self, principal: &Principal) -> Result<u64, SpineError> {
        self.execute(principal, CleanupPins).await
    }
}
