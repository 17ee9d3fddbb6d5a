//! Connecting to the database: pool sizing, timeouts and SQLite's concurrency settings.

use crate::SpineError;
use crate::clock::{Clock, SystemClock};
use crate::events::{EventSink, NoEvents};
use crate::metrics::{MetricsRegistry, MetricsSnapshot};
use account_engines::api_keys::ApiKeyPepper;
use account_engines::{Db, FaultInjector};
use account_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend};
use std::sync::Arc;
use std::time::Duration;

/// How to reach the database. `DatabaseConfig::new(url)` gives production defaults.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `sqlite://account.db?mode=rwc`, `sqlite::memory:` or `postgres://user@host/db`.
    pub url: String,
    /// Upper bound of the pool.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long a caller waits for a free pooled connection before failing.
    pub acquire_timeout: Duration,
    /// How long a SQLite writer waits for the write lock before reporting `SQLITE_BUSY`.
    pub sqlite_busy_timeout: Duration,
}

impl DatabaseConfig {
    /// Defaults sized for a 2-core host: a pool of 16, 5 s to connect, 10 s to acquire.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            min_connections: 1,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The entry point that API crates embed; cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Spine {
    db: DatabaseConnection,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) pepper: Option<Arc<ApiKeyPepper>>,
    /// Attached to every write transaction's handle when set (tests only).
    faults: Option<Arc<FaultInjector>>,
    pub(crate) metrics: Arc<MetricsRegistry>,
}

impl Spine {
    /// Connects with the given settings. On SQLite this enables WAL (readers never block the
    /// writer), `synchronous=NORMAL` (durable at checkpoints, the usual WAL pairing), foreign
    /// keys, and a busy timeout so concurrent writers queue instead of failing.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, SpineError> {
        let mut options = ConnectOptions::new(config.url.clone());
        let busy_timeout = config.sqlite_busy_timeout;
        options
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .connect_timeout(config.connect_timeout)
            .acquire_timeout(config.acquire_timeout)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(move |sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(busy_timeout)
            });
        let db = Database::connect(options)
            .await
            .map_err(SpineError::Unavailable)?;
        Ok(Self::from_connection(db))
    }

    /// Wraps a connection the host already opened (its settings are the host's).
    pub fn from_connection(db: DatabaseConnection) -> Self {
        Self {
            db,
            clock: Arc::new(SystemClock),
            events: Arc::new(NoEvents),
            pepper: None,
            faults: None,
            metrics: Arc::default(),
        }
    }

    /// The same spine reading time from `clock` (tests use a fixed clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same spine publishing committed events to `events`.
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// The same spine with the server-side secret that keys API-key and invitation digests.
    /// Without it, key and invitation use cases answer `NotConfigured`.
    pub fn with_pepper(mut self, pepper: ApiKeyPepper) -> Self {
        self.pepper = Some(Arc::new(pepper));
        self
    }

    /// The same spine passing every statement of its write transactions through `faults`,
    /// which can make a chosen one fail (see [`FaultInjector`]): tests use it to prove that a
    /// use case failing at any statement leaves the database as it was and publishes nothing.
    /// Refusal audits run in transactions too, so they pass through it as well. Reads on the
    /// pool do not. Never attach one in production: an armed injector fails real requests.
    pub fn with_fault_injector(mut self, faults: Arc<FaultInjector>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// The handle a use case's body gets inside `txn`: with the fault injector, if any.
    pub(crate) fn transaction_db<'a>(&'a self, txn: &'a DatabaseTransaction) -> Db<'a> {
        match self.faults.as_deref() {
            Some(faults) => Db::for_transaction_with_faults(txn, faults),
            None => Db::for_transaction(txn),
        }
    }

    pub(crate) fn pepper(&self) -> Result<&ApiKeyPepper, SpineError> {
        self.pepper
            .as_deref()
            .ok_or(SpineError::NotConfigured("API-key pepper"))
    }

    /// The per-operation counters (calls, errors by code, duration) of this spine and its
    /// clones since it was built.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), SpineError> {
        Migrator::up(&self.db, None)
            .await
            .map_err(SpineError::Migration)
    }

    /// Answers whether the database accepts a round trip (for readiness probes).
    pub async fn check_database(&self) -> Result<(), SpineError> {
        self.db.ping().await.map_err(SpineError::Unavailable)
    }

    /// `sqlite` or `postgres`: which backend this spine runs on.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => "sqlite",
            DbBackend::Postgres => "postgres",
            _ => "other",
        }
    }
}
