//! Connecting to the database: pool sizing, timeouts and SQLite's concurrency settings.

use crate::cache_sync::CacheRegistry;
use crate::clock::{Clock, SystemClock};
use crate::error::SpineError;
use crate::events::{EventSink, NoEvents};
use crate::idempotency::settings::IdempotencySettings;
use crate::member_roles::MemberRoles;
use crate::metrics::{MetricsRegistry, MetricsSnapshot};
use crate::rate_limits::RateLimiter;
use crate::replicas::{ReplicaSettings, ReplicaStatus, Replicas};
use crate::retry::RetryPolicy;
use crate::verify_cache::{VerifyCache, VerifyCacheSettings};
#[cfg(feature = "testing")]
use account_engines::FaultInjector;
use account_engines::api_keys::ApiKeyPepper;
use account_engines::idempotency::IdempotencyStore;
use account_engines::runs::leases::LeaseDuration;
use account_engines::support::SupportContact;
use account_engines::types::SchemaName;
use account_engines::{Db, StatementCounter};
use account_migrations::Applied;
#[cfg(feature = "sqlite")]
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend};
use std::sync::Arc;
use std::time::Duration;

/// How to reach the database. `DatabaseConfig::new(url)` gives production defaults.
///
/// Our tables live in a schema of their own, [`DatabaseConfig::schema`] (default `account`),
/// beside whatever the host keeps in the same database. On PostgreSQL that is a schema. On
/// SQLite it is a database file of its own, the one `url` names, which every connection of the
/// pool attaches under the schema name (its main database is a private in-memory one); a host
/// that wants its own tables in the same transactions as ours opens its own SQLite database
/// and attaches ours with [`DatabaseConfig::attach_to`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DatabaseConfig {
    /// PostgreSQL: the database, `postgres://user@host/db`. SQLite: the account database
    /// itself, `sqlite://account.db?mode=rwc` (a file, created if missing with `mode=rwc`) or
    /// `sqlite::memory:` (a private in-memory database shared by this config's pools).
    pub url: String,
    /// The schema our tables live in (the SQLite attachment name). Process-wide: the first
    /// spine connected fixes it for every entity (see [`crate::install_schema`]).
    pub schema: SchemaName,
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
    /// A pooled connection idle at least this long is pinged before it is handed out.
    /// Busy connections are not: a ping on every checkout is a round trip on every use case
    /// (sqlx's default). A connection that died while busy fails its next statement, which is
    /// answered as unavailable like any lost connection, and the pool drops it.
    pub ping_when_idle_for: Duration,
    /// PostgreSQL streaming replicas of `url`'s server (`postgres://user@replica/db`, the same
    /// database name), none by default. Read use cases go to them, each principal's reads
    /// seeing that principal's own committed writes; a replica that fails or lags past
    /// [`DatabaseConfig::replica_max_lag`] is skipped for the primary. Refused on SQLite
    /// ([`SpineError::ReplicasNeedPostgres`]). See [`Spine::replica_status`].
    pub replica_urls: Vec<String>,
    /// How far behind the primary a replica may be and still serve reads (default 2 s):
    /// measured as the age of the oldest primary log position it has not replayed, polled
    /// every 50 ms.
    pub replica_max_lag: Duration,
    /// Upper bound of each replica's pool (default 8).
    pub replica_max_connections: u32,
}

impl DatabaseConfig {
    /// The pool settings [`Spine::connect`] opens with; hosts that open the connection
    /// themselves (benchmarks, [`Spine::from_connection`]) start from these to match it. On
    /// SQLite the pool's main database is a private in-memory one and `url`'s database is
    /// attached under the schema name.
    pub fn connect_options(&self) -> ConnectOptions {
        let mut options = if self.is_sqlite() {
            ConnectOptions::new("sqlite::memory:")
        } else {
            ConnectOptions::new(self.url.clone())
        };
        options
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .connect_timeout(self.connect_timeout)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire_if_idle_for(self.ping_when_idle_for)
            .sqlx_logging(false);
        #[cfg(feature = "sqlite")]
        {
            let busy_timeout = self.sqlite_busy_timeout;
            options.map_sqlx_sqlite_opts(move |sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(busy_timeout)
            });
        }
        self.attach_to(&mut options);
        options
    }

    /// On SQLite, the options of the write pool [`Spine::connect`] opens beside the read
    /// pool: [`DatabaseConfig::connect_options`] with one connection, kept open. `None` on
    /// PostgreSQL, whose writers lock rows, not the database, and share the pool.
    pub fn writer_options(&self) -> Option<ConnectOptions> {
        if !self.is_sqlite() {
            return None;
        }
        let mut options = self.connect_options();
        options.max_connections(1).min_connections(1);
        Some(options)
    }

    /// On SQLite, makes every connection `options` opens attach the account database (`url`)
    /// under the schema name, in WAL with `synchronous=NORMAL`: a host's own SQLite pool built
    /// this way can run our use cases in its transactions ([`crate::HostTransaction`]).
    /// Commits spanning the host's database and ours are atomic, except that in WAL mode a
    /// power loss during the commit may keep one file's part only (SQLite's rule for attached
    /// databases). On PostgreSQL this does nothing: our schema is in the same database.
    pub fn attach_to(&self, options: &mut ConnectOptions) {
        #[cfg(feature = "sqlite")]
        if self.is_sqlite() {
            account_migrations::sqlite_attachment(options, &self.url, &self.schema);
        }
        #[cfg(not(feature = "sqlite"))]
        let _ = options;
    }

    fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// Defaults sized for a 2-core host: a pool of 16, 5 s to connect, 10 s to acquire.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: account_migrations::shared_memory_url(url.into()),
            schema: SchemaName::default(),
            max_connections: 16,
            min_connections: 1,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(10),
            ping_when_idle_for: Duration::from_secs(10),
            replica_urls: Vec::new(),
            replica_max_lag: Duration::from_secs(2),
            replica_max_connections: 8,
        }
    }
}

/// The entry point that API crates embed; cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Spine {
    db: DatabaseConnection,
    /// Where write transactions begin when it is not `db`: on SQLite, a pool of one
    /// connection ([`Spine::with_write_connection`]).
    writer: Option<DatabaseConnection>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) pepper: Option<Arc<ApiKeyPepper>>,
    /// Keys derived from the pepper for idempotency keys (request hashes, sealed responses).
    pub(crate) idempotency: Option<Arc<IdempotencyStore>>,
    /// How idempotency keys are kept and waited for.
    pub(crate) idempotency_settings: IdempotencySettings,
    /// Where customers reach support, as the host configured it.
    pub(crate) support: Option<Arc<SupportContact>>,
    /// Attached to every write transaction's handle when set (tests only).
    #[cfg(feature = "testing")]
    faults: Option<Arc<FaultInjector>>,
    /// Counts every statement of every handle the spine builds, when set (tests, benchmarks).
    statements: Option<Arc<StatementCounter>>,
    pub(crate) metrics: Arc<MetricsRegistry>,
    pub(crate) verify_cache: Arc<VerifyCache>,
    /// Members' roles, read once per cache lifetime (the verify cache's settings).
    pub(crate) member_roles: Arc<MemberRoles>,
    /// Every cache pair of this spine and the spines derived from it, for the listener that
    /// applies other instances' invalidations.
    pub(crate) caches: Arc<CacheRegistry>,
    /// Per-key request allowances leased from the shared state.
    pub(crate) rate_limits: Arc<RateLimiter>,
    /// Wakes this spine's event dispatcher when one of its transactions committed events.
    pub(crate) dispatch_wake: Arc<tokio::sync::Notify>,
    /// Whether a call that committed events dispatches before returning.
    pub(crate) inline_dispatch: bool,
    /// How write use cases retry on contention.
    pub(crate) retry: RetryPolicy,
    /// The lease a run gets at admission and at each heartbeat.
    pub(crate) run_lease: LeaseDuration,
    /// Read replicas and where reads go (PostgreSQL, when configured).
    pub(crate) replicas: Option<Arc<Replicas>>,
    /// How webhooks are delivered, when this spine delivers them.
    pub(crate) webhooks: Option<Arc<crate::webhooks::WebhookDelivery>>,
}

impl Spine {
    /// Connects with the given settings. On SQLite this enables WAL (readers never block the
    /// writer), `synchronous=NORMAL` (durable at checkpoints, the usual WAL pairing) and
    /// foreign keys, and opens two pools: reads on one of `max_connections`, every write
    /// transaction on one of a single connection ([`DatabaseConfig::writer_options`]), so
    /// concurrent writers queue in order in this process instead of polling SQLite's lock.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, SpineError> {
        crate::install_schema(&config.schema)?;
        let db = Database::connect(config.connect_options())
            .await
            .map_err(SpineError::Unavailable)?;
        let spine = Self::from_connection(db)
            .with_cache_notifications(&config.url)
            .with_read_replicas(config)
            .await?;
        match config.writer_options() {
            Some(options) => {
                let writer = Database::connect(options)
                    .await
                    .map_err(SpineError::Unavailable)?;
                Ok(spine.with_write_connection(writer))
            }
            None => Ok(spine),
        }
    }

    /// The same spine hearing other instances' invalidations (PostgreSQL; `url` is the
    /// database's, for a session of its own): a key revoked, rotated or re-permissioned, a
    /// role changed, a member removed or a tenant suspended on another instance stops being
    /// served from this one's caches within a second, not after their TTL. [`Spine::connect`]
    /// does this itself; a host that wraps its own pool calls it once. Nothing on SQLite.
    /// Must be called inside a tokio runtime (the listener is a task, which ends once every
    /// spine derived from this one is dropped).
    pub fn with_cache_notifications(self, url: &str) -> Self {
        if self.db.get_database_backend() == DbBackend::Postgres
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(crate::cache_sync::listen(
                url.to_owned(),
                self.db.clone(),
                Arc::downgrade(&self.caches),
            ));
        }
        self
    }

    /// The same spine beginning every write transaction (and the last-use flush) on
    /// `writer` instead of the read pool. For a host that opens its own SQLite pools: give it
    /// a pool of one connection ([`DatabaseConfig::writer_options`]), so that writers wait
    /// for the connection, first come first served, rather than in SQLite's busy handler,
    /// which sleeps and retries and lets a late writer overtake (seconds of tail latency
    /// under load). `writer` must reach the same database as the read pool.
    pub fn with_write_connection(mut self, writer: DatabaseConnection) -> Self {
        self.verify_cache = VerifyCache::start(self.verify_cache.settings(), writer.clone());
        self.caches.add(&self.verify_cache, &self.member_roles);
        self.writer = Some(writer);
        self
    }

    /// Wraps a connection the host already opened (its settings are the host's). The verify
    /// cache has [`VerifyCacheSettings::default`]; its last-use flush runs in the background
    /// when this is called inside a tokio runtime.
    pub fn from_connection(db: DatabaseConnection) -> Self {
        let settings = VerifyCacheSettings::default();
        let verify_cache = VerifyCache::start(settings, db.clone());
        let member_roles = Arc::new(MemberRoles::new(settings.capacity, settings.ttl));
        Self {
            caches: CacheRegistry::new(&verify_cache, &member_roles),
            db,
            writer: None,
            clock: Arc::new(SystemClock),
            events: Arc::new(NoEvents),
            pepper: None,
            idempotency: None,
            idempotency_settings: IdempotencySettings::default(),
            support: None,
            #[cfg(feature = "testing")]
            faults: None,
            statements: None,
            metrics: Arc::default(),
            verify_cache,
            member_roles,
            rate_limits: Arc::default(),
            dispatch_wake: Arc::default(),
            inline_dispatch: false,
            retry: RetryPolicy::DEFAULT,
            run_lease: LeaseDuration::DEFAULT,
            replicas: None,
            webhooks: None,
        }
    }

    /// The same spine sending read use cases to `config`'s replicas
    /// ([`DatabaseConfig::replica_urls`], [`DatabaseConfig::replica_max_lag`]); nothing when
    /// it names none. [`Spine::connect`] does this itself; a host that wraps its own pool calls
    /// it once, inside a tokio runtime (the task polling the replicas' positions ends once
    /// every spine derived from this one is dropped). The replicas' pools connect lazily, so a
    /// replica that is down does not fail this: the primary serves until it answers.
    pub async fn with_read_replicas(mut self, config: &DatabaseConfig) -> Result<Self, SpineError> {
        let settings = ReplicaSettings {
            urls: config.replica_urls.clone(),
            max_lag: config.replica_max_lag,
            max_connections: config.replica_max_connections,
            connect_timeout: config.connect_timeout,
            ping_when_idle_for: config.ping_when_idle_for,
        };
        self.replicas = Replicas::start(settings, self.db.clone()).await?;
        Ok(self)
    }

    /// Each configured replica as reads see it now: whether it is usable, its lag, its replay
    /// position, the reads it served and its failures (empty without replicas). With
    /// [`MetricsSnapshot::reads`] this tells which node served reads.
    pub fn replica_status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .as_deref()
            .map(Replicas::status)
            .unwrap_or_default()
    }

    /// The same spine retrying contended write transactions by `policy`
    /// ([`RetryPolicy::DEFAULT`] unless set).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The same spine reading time from `clock` (tests use a fixed clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// "Now" by the spine's clock: what the API tells clients about time-based limits (a
    /// quota's reset) must agree with the clock the use cases counted by.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The same spine delivering committed events to `events`.
    ///
    /// Events are written to the outbox by the transaction that made them and delivered by a
    /// dispatcher, at least once and in order per tenant. With a sink set this way, every
    /// call that committed events also dispatches before it returns (as if by
    /// [`Spine::dispatch_events`]), so the sink has them when the call is done; a crash before
    /// that leaves them to the next dispatch ([`Spine::run_dispatcher`] in the background, or
    /// the next call). Turn that off with [`Spine::with_inline_dispatch`] when a background
    /// dispatcher does the work.
    pub fn with_events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self.inline_dispatch = true;
        self
    }

    /// The same spine dispatching events before a committing call returns (`true`), or only
    /// when [`Spine::dispatch_events`] or [`Spine::run_dispatcher`] runs (`false`, the default
    /// without [`Spine::with_events`]).
    pub fn with_inline_dispatch(mut self, inline: bool) -> Self {
        self.inline_dispatch = inline;
        self
    }

    /// The same spine with the server-side secret that keys API-key and invitation digests
    /// (and, derived from it, the keys of idempotency keys' request hashes and sealed
    /// responses). Without it, key and invitation use cases and idempotency keys answer
    /// `NotConfigured`.
    pub fn with_pepper(mut self, pepper: ApiKeyPepper) -> Self {
        // Deriving cannot fail for our fixed key sizes; were it to, idempotency keys answer
        // `NotConfigured` while everything else works.
        self.idempotency = IdempotencyStore::derive(&pepper).ok().map(Arc::new);
        self.pepper = Some(Arc::new(pepper));
        self
    }

    /// The same spine answering [`Spine::support_contact`] with `contact`. Without one, that
    /// use case answers `support_contact_not_configured` (404).
    pub fn with_support_contact(mut self, contact: SupportContact) -> Self {
        self.support = Some(Arc::new(contact));
        self
    }

    /// The same spine passing every statement of its write transactions through `faults`,
    /// which can make a chosen one fail (see [`FaultInjector`]): tests use it to prove that a
    /// use case failing at any statement leaves the database as it was and publishes nothing.
    /// Refusal audits run in transactions too, so they pass through it as well. Reads on the
    /// pool do not. Never attach one in production: an armed injector fails real requests.
    #[cfg(feature = "testing")]
    pub fn with_fault_injector(mut self, faults: Arc<FaultInjector>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// The same spine counting into `counter` every statement its use cases send through
    /// the engines, on the pool and in transactions alike (refusal audits and
    /// [`Spine::flush_key_usage`] included; the background flush excepted). `BEGIN` and
    /// `COMMIT`/`ROLLBACK` are the spine's own and are not counted. Tests and benchmarks use it
    /// to assert how many round trips an operation costs; it costs one atomic add per
    /// statement.
    pub fn with_statement_counter(mut self, counter: Arc<StatementCounter>) -> Self {
        self.statements = Some(counter);
        self
    }

    /// The handle a read use case's body gets: on the pool, counted if a counter is set.
    pub(crate) fn pool_db(&self) -> Db<'_> {
        self.counted(Db::for_pool(&self.db))
    }

    /// A read use case's handle on a replica's pool, counted like [`Spine::pool_db`].
    pub(crate) fn replica_db<'a>(&'a self, replica: &'a DatabaseConnection) -> Db<'a> {
        self.counted(Db::for_pool(replica))
    }

    /// The handle a use case's body gets inside `txn`: with the fault injector and the
    /// statement counter, if any.
    pub(crate) fn transaction_db<'a>(&'a self, txn: &'a DatabaseTransaction) -> Db<'a> {
        #[cfg(feature = "testing")]
        if let Some(faults) = self.faults.as_deref() {
            return self.counted(Db::for_transaction_with_faults(txn, faults));
        }
        self.counted(Db::for_transaction(txn))
    }

    pub(crate) fn counted<'a>(&'a self, db: Db<'a>) -> Db<'a> {
        match self.statements.as_deref() {
            Some(counter) => db.counting(counter),
            None => db,
        }
    }

    pub(crate) fn pepper(&self) -> Result<&ApiKeyPepper, SpineError> {
        self.pepper
            .as_deref()
            .ok_or(SpineError::NotConfigured("API-key pepper"))
    }

    /// The per-operation counters (calls, errors by code, duration), the verify cache's
    /// hits and misses and the rate limiter's counts, of this spine and its clones since it
    /// was built.
    pub fn metrics(&self) -> MetricsSnapshot {
        let mut snapshot = self.metrics.snapshot();
        snapshot.verify_cache = self.verify_cache.metrics();
        snapshot.rate_limits = self.rate_limits.metrics();
        if let Some(replicas) = self.replicas.as_deref() {
            snapshot.reads = replicas.metrics();
        }
        snapshot
    }

    /// Where write transactions begin: the writer when there is one, else the pool.
    pub(crate) fn write_connection(&self) -> &DatabaseConnection {
        self.writer.as_ref().unwrap_or(&self.db)
    }

    /// Answers whether the database accepts a round trip (for readiness probes).
    pub async fn check_database(&self) -> Result<(), SpineError> {
        self.db.ping().await.map_err(SpineError::Unavailable)
    }

    /// After `reader`'s write committed: where it landed, for their next reads (with
    /// replicas only; nothing otherwise).
    pub(crate) async fn remember_commit(&self, reader: Option<crate::replicas::Reader>) {
        if let Some(replicas) = self.replicas.as_deref() {
            replicas.remember_commit(reader).await;
        }
    }

    /// Our migrations this build knows that the database has not applied yet (empty when
    /// the schema is at head, or ahead of this build: a newer instance migrated first). A
    /// read on the spine's pool, no lock taken: readiness probes ask it while another
    /// instance migrates. Migrating is [`migrate`]'s.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, SpineError> {
        Ok(account_migrations::pending(&self.db, account_engines::schema::current()).await?)
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

impl Spine {
    /// The same spine with a verify cache of these settings (a new, empty one); members'
    /// roles are cached with the same capacity and lifetime.
    pub fn with_verify_cache(mut self, settings: VerifyCacheSettings) -> Self {
        self.verify_cache = VerifyCache::start(settings, self.write_connection().clone());
        self.member_roles = Arc::new(MemberRoles::new(settings.capacity, settings.ttl));
        self.caches.add(&self.verify_cache, &self.member_roles);
        self
    }

    /// Writes the last-use times collected since the previous flush, in one statement (per
    /// 500 keys); returns the key rows updated. The background task calls it every
    /// [`VerifyCacheSettings::flush_interval`]; hosts call it once more on shutdown.
    pub async fn flush_key_usage(&self) -> Result<u64, SpineError> {
        let writer = self.counted(Db::for_pool(self.write_connection()));
        self.verify_cache.flush(writer).await
    }
}

/// Applies every pending migration of ours, into [`DatabaseConfig::schema`] and recorded in a
/// table of our own there (`account_migrations`), in one transaction: a failure applies
/// nothing and names the migration ([`SpineError::Migration`]). A schema holding our tables
/// without that record (half-applied) is refused. A database of version 0.0.0 (our tables in
/// the default schema, recorded in `seaql_migrations`) is moved into the schema first. The
/// host's own tables and sea-orm migrations are left alone, in either order of migrating.
///
/// It opens a connection of its own (on SQLite, to the account database as its main one) and
/// closes it. For `sqlite::memory:`, connect the spine first: the database lives while a
/// connection to it is open.
pub async fn migrate(config: &DatabaseConfig) -> Result<Applied, SpineError> {
    install_schema(&config.schema)?;
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(1)
        .connect_timeout(config.connect_timeout)
        .acquire_timeout(config.acquire_timeout)
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(SpineError::Unavailable)?;
    let applied = account_migrations::migrate(&db, &config.schema).await;
    db.close().await.map_err(SpineError::Unavailable)?;
    Ok(applied?)
}

/// Fixes the schema of our tables for this process before anything queries them. [`Spine::connect`]
/// and [`migrate`] call it with their config's schema; a host that builds spines with
/// [`Spine::from_connection`] and a schema other than `account` calls it first. Installing a
/// second, different name is refused ([`SpineError::SchemaConflict`]).
pub fn install_schema(schema: &SchemaName) -> Result<(), SpineError> {
    account_engines::schema::install(schema).map_err(|in_force| SpineError::SchemaConflict {
        wanted: schema.to_string(),
        in_force: in_force.to_string(),
    })
}
