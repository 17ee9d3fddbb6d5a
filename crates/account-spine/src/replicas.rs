// Over 600 lines: the router, the commit positions it keeps and its pollers share one node
// state; split, that state would be visible to the whole crate.
//! Read replicas (PostgreSQL): where a read use case runs.
//!
//! Read use cases (those executed on the pool, no write transaction) go to a streaming replica
//! when one is usable, with read-your-writes for the same principal: after a principal's write
//! commits, the primary's log position is remembered for that principal (tenant and actor), and
//! their reads go only to a replica that has replayed at least that far. Background tasks, one
//! per node, poll the primary's position and each replica's replay position (every
//! [`POLL_EVERY`]), so a read costs no extra round trip; a replica whose cached position is
//! behind what the principal needs is asked once more before the primary serves instead. A
//! replica that errors, stops answering polls, or lags past
//! [`DatabaseConfig::replica_max_lag`] is skipped; a read that fails on a replica with a
//! connection error (or a recovery conflict) is run again on the primary. Nothing fails
//! because of a replica. See ARCHITECTURE.md ("Read replicas").

use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::{Actor, Principal};
use crate::retry::RetryPolicy;
use account_engines::replicas::{WalPosition, current_wal_position, replayed_wal_position};
use account_engines::types::{ApiKeyId, TenantId, UserId};
use account_engines::{Db, ErrorCode};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often the primary's and each replica's log positions are read.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(50);
/// How long one position read may take before the node counts as failing.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// A replica whose last successful poll is older than this is not used.
const STALE_AFTER: Duration = Duration::from_secs(1);
/// Principals remembered at most; beyond it the oldest positions fold into a floor.
const MAX_WRITERS: usize = 10_000;

/// Who reads: the principal whose earlier writes a read must see.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reader {
    Member(TenantId, UserId),
    Key(TenantId, ApiKeyId),
    Operator(String),
}

impl Reader {
    pub(crate) fn of_principal(principal: &Principal) -> Option<Self> {
        match &principal.actor {
            Actor::User { user_id, .. } => Some(Self::Member(principal.tenant_id, *user_id)),
            Actor::ApiKey { key_id, .. } => Some(Self::Key(principal.tenant_id, *key_id)),
        }
    }
}

/// What [`Replicas::start`] needs of the spine's `DatabaseConfig`.
#[derive(Clone, Debug)]
pub(crate) struct ReplicaSettings {
    pub(crate) urls: Vec<String>,
    pub(crate) max_lag: Duration,
    pub(crate) max_connections: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) ping_when_idle_for: Duration,
}

/// Where read use cases went since the spine was built, when replicas are configured (all
/// zero without them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadRoutingMetrics {
    /// Reads a replica served.
    pub replica: u64,
    /// Reads the primary served: no replica was usable or had replayed the principal's last
    /// write (fallbacks included).
    pub primary: u64,
    /// Reads that failed on a replica (connection lost, recovery conflict) and were run again
    /// on the primary.
    pub fallbacks: u64,
}

/// One replica as the router sees it ([`crate::Spine::replica_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// `host:port/database` of the replica (no credentials).
    pub address: String,
    /// Whether reads may go there now: its last poll succeeded recently, it is in recovery,
    /// and its lag is known and within the bound.
    pub usable: bool,
    /// How far behind the primary it was at the last poll: the age of the oldest primary
    /// position it had not replayed (zero when caught up); `None` when unknown.
    pub lag: Option<Duration>,
    /// The replay position at the last poll (`X/Y`), if any.
    pub replayed: Option<String>,
    /// Reads it served.
    pub reads: u64,
    /// Polls and reads that failed on it.
    pub failures: u64,
}

#[derive(Debug, Default)]
struct NodeState {
    replayed: Option<WalPosition>,
    lag: Option<Duration>,
    polled_at: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Node {
    address: String,
    conn: DatabaseConnection,
    state: Mutex<NodeState>,
    reads: AtomicU64,
    failures: AtomicU64,
}

impl Node {
    fn state(&self) -> std::sync::MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Usable and its replay position, if usable.
    fn usable(&self, max_lag: Duration) -> Option<WalPosition> {
        let state = self.state();
        let fresh = state.polled_at.is_some_and(|at| at.elapsed() < STALE_AFTER);
        let close = state.lag.is_some_and(|lag| lag <= max_lag);
        state.replayed.filter(|_| fresh && close)
    }

    fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        state.polled_at = None;
        state.replayed = None;
    }

    /// Reads the replay position now; `None` (and the node marked failing) on any error.
    async fn replayed_now(&self) -> Option<WalPosition> {
        let read = tokio::time::timeout(
            POLL_TIMEOUT,
            replayed_wal_position(Db::for_pool(&self.conn)),
        );
        match read.await {
            Ok(Ok(Some(position))) => Some(position),
            // Not in recovery (a primary, a promoted replica) or failing: not a replica of ours.
            _ => {
                self.failed();
                None
            }
        }
    }
}

/// The primary's positions with the time each was first seen, oldest first.
#[derive(Debug, Default)]
struct Samples(VecDeque<(WalPosition, Instant)>);

impl Samples {
    fn push(&mut self, position: WalPosition, now: Instant, window: Duration) {
        if self.0.back().is_none_or(|(last, _)| position > *last) {
            self.0.push_back((position, now));
        }
        // Keep one sample older than the window, so a replica behind all of it is known to lag
        // at least the window.
        while self.0.len() > 1
            && self
                .0
                .get(1)
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) > window)
        {
            self.0.pop_front();
        }
    }

    /// How long the primary has had a position `replayed` lacks; `None` when unknown (no
    /// sample yet, or behind every sample but not for longer than `bound`).
    fn lag(&self, replayed: WalPosition, now: Instant, bound: Duration) -> Option<Duration> {
        let (latest, _) = self.0.back()?;
        if replayed >= *latest {
            return Some(Duration::ZERO);
        }
        let (index, (_, since)) = self
            .0
            .iter()
            .enumerate()
            .find(|(_, (position, _))| *position > replayed)?;
        let lag = now.saturating_duration_since(*since);
        (index > 0 || lag > bound).then_some(lag)
    }
}

/// Principals' last commit positions, bounded.
#[derive(Debug, Default)]
struct Written {
    positions: HashMap<Reader, (WalPosition, Instant)>,
    /// The highest position dropped for room: every principal must see at least this far,
    /// since one of them may have been dropped.
    floor: Option<WalPosition>,
}

impl Written {
    /// `reader` committed at `position` at `now`; at most `capacity` principals are kept,
    /// those older than `ttl` dropped first, then all of them into the floor.
    fn record(
        &mut self,
        reader: Reader,
        position: WalPosition,
        now: Instant,
        ttl: Duration,
        capacity: usize,
    ) {
        if self.positions.len() >= capacity && !self.positions.contains_key(&reader) {
            self.positions
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if self.positions.len() >= capacity {
                // An unknown position (u64::MAX) would send every read to the primary for
                // good; those principals only lose their primary-only while.
                let dropped = self
                    .positions
                    .drain()
                    .map(|(_, (p, _))| p)
                    .filter(|p| p.0 != u64::MAX)
                    .max();
                self.floor = self.floor.max(dropped);
            }
        }
        let entry = self.positions.entry(reader).or_insert((position, now));
        *entry = (entry.0.max(position), now);
    }

    /// The position `reader`'s read at `now` must see: its own last commit within `ttl`, and
    /// the floor.
    fn needed(&self, reader: Option<&Reader>, now: Instant, ttl: Duration) -> Option<WalPosition> {
        let own = reader
            .and_then(|reader| self.positions.get(reader))
            .filter(|(_, at)| now.saturating_duration_since(*at) < ttl)
            .map(|(position, _)| *position);
        own.max(self.floor)
    }
}

/// A replica chosen for one read.
pub(crate) struct Chosen<'r> {
    replicas: &'r Replicas,
    node: Arc<Node>,
}

impl Chosen<'_> {
    /// The replica's pool.
    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.node.conn
    }

    /// Whether the read's outcome stands, counted; `false` when the replica failed it for its
    /// own reasons (a fallback: run it on the primary).
    pub(crate) fn keeps<T>(&self, outcome: &Result<T, SpineError>) -> bool {
        match outcome {
            Err(error) if is_replica_failure(error) => {
                tracing::debug!(
                    code = error.code(),
                    "a replica failed a read; the primary serves it"
                );
                self.replicas.served_by_primary(Some(&self.node));
                false
            }
            _ => {
                self.replicas.served(&self.node);
                true
            }
        }
    }
}

/// The replicas of one spine and what routes reads to them.
#[derive(Debug)]
pub(crate) struct Replicas {
    primary: DatabaseConnection,
    nodes: Vec<Arc<Node>>,
    max_lag: Duration,
    samples: Mutex<Samples>,
    written: Mutex<Written>,
    next: AtomicUsize,
    served_by_replica: AtomicU64,
    served_by_primary: AtomicU64,
    fallbacks: AtomicU64,
}

impl Replicas {
    /// Pools on `config`'s replicas (opened lazily: a replica that is down now does not fail
    /// the start) beside `primary`, and the task polling their positions while the returned
    /// value lives. `None` when no replica is configured.
    pub(crate) async fn start(
        config: ReplicaSettings,
        primary: DatabaseConnection,
    ) -> Result<Option<Arc<Self>>, SpineError> {
        if config.urls.is_empty() {
            return Ok(None);
        }
        if primary.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Err(SpineError::ReplicasNeedPostgres);
        }
        let mut nodes = Vec::new();
        for url in &config.urls {
            let mut options = ConnectOptions::new(url.clone());
            options
                .max_connections(config.max_connections.max(1))
                .min_connections(0)
                .connect_timeout(config.connect_timeout)
                // A replica that hangs must not hold a read long: the primary is there.
                .acquire_timeout(POLL_TIMEOUT)
                .test_before_acquire_if_idle_for(config.ping_when_idle_for)
                .connect_lazy(true)
                .sqlx_logging(false);
            let conn = Database::connect(options)
                .await
                .map_err(SpineError::Unavailable)?;
            nodes.push(Arc::new(Node {
                address: address(url),
                conn,
                state: Mutex::default(),
                reads: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            }));
        }
        let replicas = Arc::new(Self {
            primary,
            nodes,
            max_lag: config.max_lag,
            samples: Mutex::default(),
            written: Mutex::default(),
            next: AtomicUsize::new(0),
            served_by_replica: AtomicU64::new(0),
            served_by_primary: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // One task per node, so a replica that hangs delays no other's poll.
            runtime.spawn(poll(Arc::downgrade(&replicas), None));
            for index in 0..replicas.nodes.len() {
                runtime.spawn(poll(Arc::downgrade(&replicas), Some(index)));
            }
        }
        Ok(Some(replicas))
    }

    /// How long a remembered position matters: a usable replica lags at most `max_lag`, so
    /// it has replayed anything older than that (with a margin for the poll's age).
    fn remember_for(&self) -> Duration {
        self.max_lag + STALE_AFTER + Duration::from_secs(1)
    }

    /// Records that `readers` committed a write just now: reads the primary's position (one
    /// statement on the primary). When that fails, the readers read from the primary for a
    /// while, since where their write landed is unknown.
    pub(crate) async fn remember_commit(&self, readers: impl IntoIterator<Item = Reader>) {
        let mut readers = readers.into_iter().peekable();
        if readers.peek().is_none() {
            return;
        }
        let position = match current_wal_position(Db::for_pool(&self.primary)).await {
            Ok(Some(position)) => position,
            _ => WalPosition(u64::MAX),
        };
        let now = Instant::now();
        let ttl = self.remember_for();
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        for reader in readers {
            written.record(reader, position, now, ttl, MAX_WRITERS);
        }
    }

    /// The position `reader`'s read must see by what this instance remembers (`None`: any
    /// usable replica will do).
    pub(crate) fn position_of(&self, reader: Option<&Reader>) -> Option<WalPosition> {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.needed(reader, Instant::now(), self.remember_for())
    }

    /// The replica to read from for `reader`, or `None` for the primary. Round robin over the
    /// usable replicas that have replayed what the reader needs; when only replicas behind it
    /// are usable, one of them is asked for its position now.
    async fn choose(
        &self,
        reader: Option<&Reader>,
        read_after: Option<WalPosition>,
    ) -> Option<Arc<Node>> {
        let needed = self.position_of(reader).max(read_after);
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.nodes.len();
        let mut behind = None;
        for i in 0..count {
            let node = &self.nodes[(start + i) % count];
            let Some(replayed) = node.usable(self.max_lag) else {
                continue;
            };
            if needed.is_none_or(|needed| replayed >= needed) {
                return Some(Arc::clone(node));
            }
            behind.get_or_insert(node);
        }
        let node = behind?;
        let needed = needed?;
        let replayed = node.replayed_now().await?;
        node.state().replayed = Some(replayed);
        (replayed >= needed).then(|| Arc::clone(node))
    }

    /// The replica `operation` reads from for `reader`, who has seen `read_after` (a
    /// consistency token); `None` (counted) for the primary.
    pub(crate) async fn choose_for(
        &self,
        operation: Operation,
        reader: Option<Reader>,
        read_after: Option<WalPosition>,
    ) -> Option<Chosen<'_>> {
        let node = if stays_on_primary(operation) {
            None
        } else {
            self.choose(reader.as_ref(), read_after).await
        };
        match node {
            Some(node) => Some(Chosen {
                replicas: self,
                node,
            }),
            None => {
                self.served_by_primary(None);
                None
            }
        }
    }

    /// Counts a read `node` served.
    fn served(&self, node: &Node) {
        node.reads.fetch_add(1, Ordering::Relaxed);
        self.served_by_replica.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a read the primary served; `failed` names the replica that failed it first.
    fn served_by_primary(&self, failed: Option<&Node>) {
        if let Some(node) = failed {
            node.failed();
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        self.served_by_primary.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn metrics(&self) -> ReadRoutingMetrics {
        ReadRoutingMetrics {
            replica: self.served_by_replica.load(Ordering::Relaxed),
            primary: self.served_by_primary.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        self.nodes
            .iter()
            .map(|node| {
                let usable = node.usable(self.max_lag).is_some();
                let state = node.state();
                ReplicaStatus {
                    address: node.address.clone(),
                    usable,
                    lag: state.lag,
                    replayed: state.replayed.map(|p| p.to_string()),
                    reads: node.reads.load(Ordering::Relaxed),
                    failures: node.failures.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Reads the primary's position into the samples replicas' lag is measured against.
    async fn poll_primary(&self) {
        let window = self.max_lag + Duration::from_secs(1);
        let read = tokio::time::timeout(
            POLL_TIMEOUT,
            current_wal_position(Db::for_pool(&self.primary)),
        );
        if let Ok(Ok(Some(position))) = read.await {
            let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            samples.push(position, Instant::now(), window);
        }
    }

    /// Reads a replica's replay position and works out its lag.
    async fn poll_node(&self, node: &Node) {
        let Some(replayed) = node.replayed_now().await else {
            return;
        };
        let now = Instant::now();
        let lag =
            self.samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .lag(replayed, now, self.max_lag);
        *node.state() = NodeState {
            replayed: Some(replayed),
            lag,
            polled_at: Some(now),
        };
    }
}

/// Polls the primary (`node` `None`) or one replica every [`POLL_EVERY`] until the spines
/// sharing `replicas` are gone.
async fn poll(replicas: Weak<Replicas>, node: Option<usize>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(replicas) = replicas.upgrade() else {
            return;
        };
        match node.and_then(|index| replicas.nodes.get(index).cloned()) {
            Some(node) => replicas.poll_node(&node).await,
            None => replicas.poll_primary().await,
        }
    }
}

/// Reads that always run on the primary: `memory_pins.get` writes the pin's access trail on
/// the pool, and `api_keys.verify_presented` fills the verify cache, which a replica behind a
/// revocation would refill with the key as it was.
fn stays_on_primary(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::PinsGet | Operation::ApiKeysVerifyPresented
    )
}

/// Whether a read's failure on a replica is the replica's (run it again on the primary):
/// a lost or refused connection, or a query cancelled by a recovery conflict (40001).
fn is_replica_failure(error: &SpineError) -> bool {
    error.code() == "storage_unavailable" || RetryPolicy::is_contention(error)
}

/// `host:port/database` of a URL, without user, password or parameters.
fn address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_no_credentials() {
        assert_eq!(
            address("postgres://user:secret@db-2:5433/account?sslmode=require"),
            "db-2:5433/account"
        );
        assert_eq!(address("postgres://127.0.0.1/x"), "127.0.0.1/x");
    }

    #[test]
    fn principals_need_their_own_last_commit_and_overflow_raises_a_floor() {
        let (a, b, c) = (
            Reader::Operator("a".into()),
            Reader::Operator("b".into()),
            Reader::Operator("c".into()),
        );
        let start = Instant::now();
        let ttl = Duration::from_secs(3);
        let mut written = Written::default();
        written.record(a.clone(), WalPosition(10), start, ttl, 2);
        written.record(a.clone(), WalPosition(5), start, ttl, 2); // never backwards
        assert_eq!(written.needed(Some(&a), start, ttl), Some(WalPosition(10)));
        assert_eq!(written.needed(Some(&b), start, ttl), None);
        assert_eq!(written.needed(None, start, ttl), None);
        // Past the TTL a usable replica has it anyway.
        assert_eq!(written.needed(Some(&a), start + ttl, ttl), None);
        // Full of live entries: they fold into a floor everyone must reach.
        written.record(b.clone(), WalPosition(u64::MAX), start, ttl, 2);
        written.record(c.clone(), WalPosition(20), start, ttl, 2);
        assert_eq!(written.needed(Some(&c), start, ttl), Some(WalPosition(20)));
        assert_eq!(written.needed(Some(&b), start, ttl), Some(WalPosition(10)));
        assert_eq!(written.needed(None, start, ttl), Some(WalPosition(10)));
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_unreplayed_position() {
        let start = Instant::now();
        let window = Duration::from_secs(3);
        let bound = Duration::from_secs(2);
        let mut samples = Samples::default();
        assert_eq!(samples.lag(WalPosition(5), start, bound), None);
        samples.push(WalPosition(10), start, window);
        samples.push(WalPosition(10), start + Duration::from_secs(1), window);
        samples.push(WalPosition(20), start + Duration::from_secs(2), window);
        let now = start + Duration::from_millis(2_500);
        assert_eq!(
            samples.lag(WalPosition(20), now, bound),
            Some(Duration::ZERO)
        );
        // Lacks 20, first seen 0.5 s ago.
        assert_eq!(
            samples.lag(WalPosition(15), now, bound),
            Some(Duration::from_millis(500))
        );
        // Behind every sample: unknown until that is longer than the bound.
        assert_eq!(
            samples.lag(WalPosition(5), now, bound),
            Some(Duration::from_millis(2_500))
        );
        let early = start + Duration::from_secs(1);
        assert_eq!(samples.lag(WalPosition(5), early, bound), None);
        // Old samples go, one older than the window stays.
        samples.push(WalPosition(30), start + Duration::from_secs(6), window);
        assert_eq!(samples.0.len(), 2);
    }
}
