//! Caches kept true across instances (PostgreSQL): a commit that makes cached keys or roles
//! stale says which in a notification sent from its own transaction
//! (`account_engines::cache_sync`); every instance's listener drops those entries.
//!
//! Missed notifications are detected, not hoped away: each one carries the version its
//! commit set on the one `cache_versions` row, and versions follow commit order (the row
//! lock). A listener that sees a version jump, loses its session, or finds by polling a
//! version it has not heard of drops every cached entry. The caches' TTL stays the last
//! fallback. See ARCHITECTURE.md ("Caches across instances") for the bound.

use crate::member_roles::MemberRoles;
use crate::verify_cache::VerifyCache;
use account_engines::Db;
use account_engines::cache_sync::{CacheListener, Heard, MAX_CACHE_PAYLOAD, fetch_cache_version};
use account_engines::types::{ApiKeyId, TenantId, UserId};
use sea_orm::DatabaseConnection;
use std::fmt::Write;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often a listener reads the version as a backstop, and retries a lost session. A
/// notification that never arrives is noticed within two polls.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(400);

/// The caches of a spine and of the spines derived from it (each `with_verify_cache` adds
/// its own pair), which remote invalidations reach.
#[derive(Debug)]
pub(crate) struct CacheRegistry {
    /// Names this process's notifications, so its listener skips them: its own caches
    /// already dropped those entries at commit.
    instance: String,
    caches: Mutex<Vec<(Weak<VerifyCache>, Weak<MemberRoles>)>>,
}

impl CacheRegistry {
    pub(crate) fn new(verify: &Arc<VerifyCache>, roles: &Arc<MemberRoles>) -> Arc<Self> {
        let registry = Arc::new(Self {
            instance: instance_name(),
            caches: Mutex::default(),
        });
        registry.add(verify, roles);
        registry
    }

    /// The payload announcing these invalidations from this process (`None` when there are
    /// none).
    pub(crate) fn payload(&self, stale: impl IntoIterator<Item = Stale>) -> Option<String> {
        entries(stale).map(|entries| format!("{}/{entries}", self.instance))
    }

    pub(crate) fn add(&self, verify: &Arc<VerifyCache>, roles: &Arc<MemberRoles>) {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches.retain(|(v, r)| v.strong_count() > 0 || r.strong_count() > 0);
        caches.push((Arc::downgrade(verify), Arc::downgrade(roles)));
    }

    fn each(&self, apply: impl Fn(&VerifyCache, &MemberRoles)) {
        let caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        for (verify, roles) in caches.iter() {
            if let (Some(verify), Some(roles)) = (verify.upgrade(), roles.upgrade()) {
                apply(&verify, &roles);
            }
        }
    }

    fn forget_everything(&self) {
        self.each(|verify, roles| {
            verify.invalidate_all();
            roles.forget_all();
        });
    }
}

/// A name no other live registry has: process id, start time, and a count within the
/// process.
fn instance_name() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{started:x}-{n}", std::process::id())
}

/// A cached entry a commit made stale.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stale {
    Key(TenantId, ApiKeyId),
    Tenant(TenantId),
    Member(TenantId, UserId),
}

/// `stale` as a payload (`None` when empty): `k:<tenant>:<key>`, `t:<tenant>`,
/// `m:<tenant>:<user>`, comma-separated; `*` (everything) when that would not fit a
/// notification.
fn entries(stale: impl IntoIterator<Item = Stale>) -> Option<String> {
    let mut out = String::new();
    for entry in stale {
        let sep = if out.is_empty() { "" } else { "," };
        // Writing to a String cannot fail.
        let _ = match entry {
            Stale::Key(tenant, key) => write!(out, "{sep}k:{tenant}:{key}"),
            Stale::Tenant(tenant) => write!(out, "{sep}t:{tenant}"),
            Stale::Member(tenant, user) => write!(out, "{sep}m:{tenant}:{user}"),
        };
        if out.len() > MAX_CACHE_PAYLOAD - 40 {
            return Some("*".to_owned());
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Drops what another process's `payload` names from every cache in `registry`;
/// everything for `*` or an entry this version does not understand.
fn apply(registry: &CacheRegistry, payload: &str) {
    let Some((instance, entries)) = payload.split_once('/') else {
        registry.forget_everything();
        return;
    };
    if instance == registry.instance {
        return;
    }
    for entry in entries.split(',') {
        let mut parts = entry.split(':');
        let parsed = match (parts.next(), parts.next(), parts.next()) {
            (Some("k"), Some(t), Some(k)) => t
                .parse::<TenantId>()
                .ok()
                .zip(k.parse::<ApiKeyId>().ok())
                .map(|(t, k)| {
                    registry.each(|verify, _| verify.invalidate_key(t, k));
                }),
            (Some("t"), Some(t), None) => t.parse::<TenantId>().ok().map(|t| {
                registry.each(|verify, roles| {
                    verify.invalidate_tenant(t);
                    roles.forget_tenant(t);
                });
            }),
            (Some("m"), Some(t), Some(u)) => t
                .parse::<TenantId>()
                .ok()
                .zip(u.parse::<UserId>().ok())
                .map(|(t, u)| {
                    registry.each(|_, roles| roles.forget(t, u));
                }),
            _ => None,
        };
        if parsed.is_none() {
            registry.forget_everything();
            return;
        }
    }
}

/// Listens until every spine sharing `registry` is gone: applies notifications, and drops
/// everything on a version gap, a lost session, or a polled version not heard of.
pub(crate) async fn listen(url: String, pool: DatabaseConnection, registry: Weak<CacheRegistry>) {
    let mut heard: Option<i64> = None;
    // A version the poll saw before its notification arrived: if it has still not arrived
    // by the next poll, it was missed.
    let mut suspect: Option<i64> = None;
    let mut listener: Option<CacheListener> = None;
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(caches) = registry.upgrade() else {
            return;
        };
        if listener.is_none() {
            match CacheListener::start(&url).await {
                Ok(Some(started)) => listener = Some(started),
                Ok(None) => return, // SQLite: nothing to listen to
                Err(error) => {
                    tracing::warn!(%error, "cache listener could not start; retrying");
                    drop(caches);
                    poll.tick().await;
                    continue;
                }
            }
            // Listening first, then the version: nothing committed after it goes unheard.
            caches.forget_everything();
            heard = fetch_cache_version(Db::for_pool(&pool))
                .await
                .ok()
                .flatten();
        }
        let Some(active) = listener.as_mut() else {
            continue;
        };
        tokio::select! {
            next = active.next() => match next {
                Ok(Heard::Notice(notice)) => {
                    if heard.is_some_and(|h| notice.version > h + 1) {
                        caches.forget_everything(); // one or more went unheard
                    } else {
                        apply(&caches, &notice.payload);
                    }
                    heard = Some(heard.map_or(notice.version, |h| h.max(notice.version)));
                }
                // A lost session (or anything else): whatever was sent meanwhile is lost.
                _ => {
                    caches.forget_everything();
                    listener = None;
                }
            },
            _ = poll.tick() => {
                if let Ok(Some(version)) = fetch_cache_version(Db::for_pool(&pool)).await {
                    if suspect.is_some_and(|s| heard.is_none_or(|h| h < s)) {
                        caches.forget_everything();
                        heard = Some(heard.map_or(version, |h| h.max(version)));
                    }
                    suspect = heard.is_none_or(|h| version > h).then_some(version);
                }
            }
        }
    }
}
