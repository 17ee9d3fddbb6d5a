//! Builder-style setters of the settings a host hands the spine: [`DatabaseConfig`],
//! [`VerifyCacheSettings`] and [`RetryPolicy`].
//!
//! The three are `#[non_exhaustive]`, so a later release can add a setting without breaking
//! hosts: a host starts from the constructor or the default (`DatabaseConfig::new(url)`,
//! `VerifyCacheSettings::default()`, `RetryPolicy::DEFAULT`) and changes what it needs with
//! these `with_*` setters (or by assigning the public fields), never with a struct literal.
//!
//! ```rust
//! use account_spine::{DatabaseConfig, RetryPolicy, VerifyCacheSettings};
//! use std::time::Duration;
//!
//! let config = DatabaseConfig::new("sqlite::memory:")
//!     .with_max_connections(4)
//!     .with_acquire_timeout(Duration::from_secs(2));
//! assert_eq!(config.max_connections, 4);
//! let cache = VerifyCacheSettings::default().with_ttl(Duration::from_secs(1));
//! assert_eq!(cache.ttl, Duration::from_secs(1));
//! let retry = RetryPolicy::DEFAULT.with_attempts(3);
//! assert_eq!(retry.attempts, 3);
//! ```

use crate::database::DatabaseConfig;
use crate::retry::RetryPolicy;
use crate::verify_cache::VerifyCacheSettings;
use account_engines::types::SchemaName;
use std::time::Duration;

impl DatabaseConfig {
    /// The same settings with our tables in schema `schema` (default `account`; on SQLite the
    /// name the account database is attached under). One schema per process.
    pub fn with_schema(mut self, schema: SchemaName) -> Self {
        self.schema = schema;
        self
    }

    /// The same settings with a pool of at most `max` connections.
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// The same settings keeping `min` connections open while idle.
    pub fn with_min_connections(mut self, min: u32) -> Self {
        self.min_connections = min;
        self
    }

    /// The same settings allowing `timeout` to open one connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The same settings waiting at most `timeout` for a free pooled connection.
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The same settings letting a SQLite writer wait `timeout` for the write lock.
    pub fn with_sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    /// The same settings pinging a pooled connection idle at least `idle` before handing it
    /// out.
    pub fn with_ping_when_idle_for(mut self, idle: Duration) -> Self {
        self.ping_when_idle_for = idle;
        self
    }

    /// With [`DatabaseConfig::replica_urls`]: PostgreSQL streaming replicas that serve reads.
    pub fn with_replicas(mut self, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.replica_urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// With [`DatabaseConfig::replica_max_lag`].
    pub fn with_replica_max_lag(mut self, max_lag: Duration) -> Self {
        self.replica_max_lag = max_lag;
        self
    }

    /// With [`DatabaseConfig::replica_max_connections`].
    pub fn with_replica_max_connections(mut self, max: u32) -> Self {
        self.replica_max_connections = max;
        self
    }
}

impl VerifyCacheSettings {
    /// The same settings caching at most `capacity` keys (0 turns the cache off).
    pub fn with_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// The same settings trusting a cached row for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The same settings writing collected last-use times every `interval`.
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }
}

impl RetryPolicy {
    /// The same policy making `attempts` attempts in all (1: never retry).
    pub const fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The same policy pausing `backoff` after the first failed attempt (doubling after each
    /// further one).
    pub const fn with_first_backoff(mut self, backoff: Duration) -> Self {
        self.first_backoff = backoff;
        self
    }

    /// The same policy pausing at most `backoff`.
    pub const fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }
}
