//! Members' roles as the spine last read them, so a person's every request does not cost a
//! membership read: one read per member per [`crate::VerifyCacheSettings::ttl`], the same
//! staleness bound as API keys. Role changes, removals and ownership transfers made through
//! this spine drop the member's entry when they commit; a tenant's lifecycle change drops the
//! tenant's. Only members are cached: a refused non-member is read again next time.

use account_engines::types::{MembershipRole, TenantId, UserId};
use std::sync::atomic::{AtomicU64, Ordering};

type Entries = moka::sync::Cache<(TenantId, UserId), MembershipRole>;

/// The cache (absent when its capacity is 0).
pub(crate) struct MemberRoles {
    entries: Option<Entries>,
    /// Bumped by every invalidation: a role read before one is not stored after it.
    generation: AtomicU64,
}

impl MemberRoles {
    /// A cache of `capacity` members, each trusted for `ttl`.
    pub(crate) fn new(capacity: u64, ttl: std::time::Duration) -> Self {
        MemberRoles {
            entries: (capacity > 0).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .support_invalidation_closures()
                    .build()
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// The cached role of `user` in `tenant`.
    pub(crate) fn get(&self, tenant: TenantId, user: UserId) -> Option<MembershipRole> {
        self.entries.as_ref()?.get(&(tenant, user))
    }

    /// The generation to pass to [`MemberRoles::insert`] for a read starting now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a role read at `generation`, unless an invalidation came since.
    pub(crate) fn insert(
        &self,
        tenant: TenantId,
        user: UserId,
        role: MembershipRole,
        generation: u64,
    ) {
        if let Some(entries) = &self.entries
            && self.generation() == generation
        {
            entries.insert((tenant, user), role);
        }
    }

    /// Drops `user`'s role in `tenant`.
    pub(crate) fn forget(&self, tenant: TenantId, user: UserId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.invalidate(&(tenant, user));
        }
    }

    /// Drops every cached role (another instance's change may have gone unheard).
    pub(crate) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    /// Drops every member's role in `tenant`.
    pub(crate) fn forget_tenant(&self, tenant: TenantId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            // Only fails without support_invalidation_closures, which `new` enables.
            let _ = entries.invalidate_entries_if(move |(t, _), _| *t == tenant);
        }
    }
}

impl std::fmt::Debug for MemberRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberRoles")
            .field("entries", &self.entries.as_ref().map(Entries::entry_count))
            .finish_non_exhaustive()
    }
}
