//! The API-key verify cache and the last-use buffer: what makes verifying a key cost no
//! statement on a hit, one on a miss, and no write at all.
//!
//! The cache maps a key's keyed digest (never the plaintext) to the stored row the engine
//! decides on ([`KeyWithTenant`]); the engine's decision runs again on every hit, against the
//! clock, so expiry needs no invalidation. The cache is bounded and its entries live at most
//! [`VerifyCacheSettings::ttl`]: that is how long another process's revocation, rotation or
//! tenant change can go unseen here. In this process the use cases that change what verification
//! decides on (revoke, rotate, tenant transitions) invalidate after they commit.
//!
//! Last use is collected in memory per key and written by [`Spine::flush_key_usage`] (one
//! statement per flush), which a background task calls every
//! [`VerifyCacheSettings::flush_interval`] while the spine lives.

use crate::error::SpineError;
use account_engines::Db;
use account_engines::api_keys::{self, KeyUsage, KeyWithTenant};
use account_engines::types::{ApiKeyId, TenantId};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How the verify cache and the last-use flush behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyCacheSettings {
    /// Most keys cached; 0 turns the cache off (every verification reads the database).
    pub capacity: u64,
    /// How long a cached row is trusted: the staleness bound for changes made by another
    /// process (this process invalidates at once).
    pub ttl: Duration,
    /// How often the background task writes the collected last-use times.
    pub flush_interval: Duration,
}

impl Default for VerifyCacheSettings {
    /// 100,000 keys for 5 s, last use flushed every 10 s.
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(5),
            flush_interval: Duration::from_secs(10),
        }
    }
}

impl VerifyCacheSettings {
    /// No cache: every verification makes its one statement (benchmarks of the miss path).
    pub fn disabled() -> Self {
        Self {
            capacity: 0,
            ..Self::default()
        }
    }
}

/// The verify cache's counters since the spine was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyCacheMetrics {
    /// Verifications answered from the cache (no statement).
    pub hits: u64,
    /// Verifications that read the database (one statement).
    pub misses: u64,
    /// Last-use flushes that wrote at least one key.
    pub usage_flushes: u64,
}

/// One key's uses since the last flush.
#[derive(Clone, Copy, Debug)]
struct PendingUse {
    last_used_at: DateTime<Utc>,
    requests: u32,
}

type Entries = moka::sync::Cache<String, Arc<KeyWithTenant>>;

/// Shared by a spine and its clones.
pub(crate) struct VerifyCache {
    settings: VerifyCacheSettings,
    /// `None` when the capacity is 0.
    entries: Option<Entries>,
    /// Bumped by every invalidation. A miss caches its row only if no invalidation happened
    /// since before its read, so a row read before a revocation committed is never cached
    /// after it (the lock makes check-and-insert atomic against invalidation).
    epoch: Mutex<u64>,
    pending: Mutex<HashMap<(TenantId, ApiKeyId), PendingUse>>,
    hits: AtomicU64,
    misses: AtomicU64,
    usage_flushes: AtomicU64,
    /// The pool the background flush writes through (dropped with the cache, which ends the
    /// task).
    pool: DatabaseConnection,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests are secrets' stand-ins: only sizes are shown.
        f.debug_struct("VerifyCache")
            .field("settings", &self.settings)
            .field("entries", &self.entries.as_ref().map(Entries::entry_count))
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl VerifyCache {
    /// A cache for `pool`, with its background flush started when a tokio runtime is running.
    pub(crate) fn start(settings: VerifyCacheSettings, pool: DatabaseConnection) -> Arc<Self> {
        let entries = (settings.capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(settings.ttl)
                .support_invalidation_closures()
                .build()
        });
        let cache = Arc::new(Self {
            settings,
            entries,
            epoch: Mutex::new(0),
            pending: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            usage_flushes: AtomicU64::new(0),
            pool,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(flush_periodically(Arc::downgrade(&cache)));
        }
        cache
    }

    /// What it was started with.
    pub(crate) fn settings(&self) -> VerifyCacheSettings {
        self.settings
    }

    /// The cached row for `digest`, counting a hit or a miss.
    pub(crate) fn get(&self, digest: &str) -> Option<Arc<KeyWithTenant>> {
        let found = self
            .entries
            .as_ref()
            .and_then(|entries| entries.get(digest));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The invalidation epoch to pass to [`VerifyCache::insert`]; read it before the lookup.
    pub(crate) fn epoch(&self) -> u64 {
        *lock(&self.epoch)
    }

    /// Caches `found`, unless an invalidation happened since `epoch` was read.
    pub(crate) fn insert(&self, digest: &str, found: Arc<KeyWithTenant>, epoch: u64) {
        let Some(entries) = &self.entries else {
            return;
        };
        let current = lock(&self.epoch);
        if *current == epoch {
            entries.insert(digest.to_owned(), found);
        }
    }

    /// Forgets every cached row that `matches`; later lookups read the database.
    fn invalidate(&self, matches: impl Fn(&KeyWithTenant) -> bool + Send + Sync + 'static) {
        let mut epoch = lock(&self.epoch);
        *epoch += 1;
        if let Some(entries) = &self.entries
            && entries
                .invalidate_entries_if(move |_, row| matches(row))
                .is_err()
        {
            // Unreachable (the builder enables closures); forgetting everything is still safe.
            entries.invalidate_all();
        }
    }

    pub(crate) fn invalidate_key(&self, tenant: TenantId, key: ApiKeyId) {
        self.invalidate(move |row| row.key.tenant_id == tenant && row.key.id == key);
    }

    pub(crate) fn invalidate_tenant(&self, tenant: TenantId) {
        self.invalidate(move |row| row.key.tenant_id == tenant);
    }

    /// Forgets every cached row (another instance's change may have gone unheard).
    pub(crate) fn invalidate_all(&self) {
        self.invalidate(|_| true);
    }

    /// Notes one successful verification of `key` at `now` (no statement).
    pub(crate) fn record_use(&self, tenant: TenantId, key: ApiKeyId, now: DateTime<Utc>) {
        let mut pending = lock(&self.pending);
        let entry = pending.entry((tenant, key)).or_insert(PendingUse {
            last_used_at: now,
            requests: 0,
        });
        entry.last_used_at = entry.last_used_at.max(now);
        entry.requests = entry.requests.saturating_add(1);
    }

    /// Writes the collected uses through `db`; on failure they are put back for the next flush.
    pub(crate) async fn flush(&self, db: Db<'_>) -> Result<u64, SpineError> {
        let drained: Vec<KeyUsage> = lock(&self.pending)
            .drain()
            .map(|((tenant_id, key_id), used)| KeyUsage {
                tenant_id,
                key_id,
                last_used_at: used.last_used_at,
                requests: used.requests,
            })
            .collect();
        if drained.is_empty() {
            return Ok(0);
        }
        match api_keys::record_key_usage(db, &drained).await {
            Ok(updated) => {
                self.usage_flushes.fetch_add(1, Ordering::Relaxed);
                Ok(updated)
            }
            Err(error) => {
                let mut pending = lock(&self.pending);
                for usage in drained {
                    let entry =
                        pending
                            .entry((usage.tenant_id, usage.key_id))
                            .or_insert(PendingUse {
                                last_used_at: usage.last_used_at,
                                requests: 0,
                            });
                    entry.last_used_at = entry.last_used_at.max(usage.last_used_at);
                    entry.requests = entry.requests.saturating_add(usage.requests);
                }
                Err(error.into())
            }
        }
    }

    pub(crate) fn metrics(&self) -> VerifyCacheMetrics {
        VerifyCacheMetrics {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            usage_flushes: self.usage_flushes.load(Ordering::Relaxed),
        }
    }
}

/// Flushes every `flush_interval` until the cache is dropped (the last spine clone with it).
async fn flush_periodically(cache: Weak<VerifyCache>) {
    let Some(interval) = cache.upgrade().map(|c| c.settings.flush_interval) else {
        return;
    };
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        if let Err(error) = cache.flush(Db::for_pool(&cache.pool)).await {
            tracing::warn!(%error, "flushing API-key last use failed; retrying next interval");
        }
    }
}
