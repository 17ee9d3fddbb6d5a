//! The opaque database handle that engines pass to drivers.
//!
//! Only the spine can build a [`Db`] (it owns the connection and the transaction). Drivers get
//! a [`Conn`] out of it, which runs statements but has no `begin`, `commit` or `rollback`; the
//! `DatabaseTransaction` it wraps is only borrowed, and committing it needs ownership.
//!
//! Tests observe a handle two ways: a [`StatementCounter`] counts its statements, and a
//! `FaultInjector` (feature `testing`), which only the spine can attach, makes a chosen
//! statement fail.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// A borrowed database handle: a connection pool or a transaction owned by the spine.
///
/// Engines can hold and pass it on; only drivers can run statements on it.
#[derive(Clone, Copy)]
pub struct Db<'a> {
    conn: Conn<'a>,
}

impl std::fmt::Debug for Db<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.conn.target {
            Target::Pool(_) => "pool",
            Target::Transaction(_) => "transaction",
        };
        let mut debug = f.debug_struct("Db");
        debug.field("kind", &kind);
        #[cfg(any(test, feature = "testing"))]
        debug.field("fault_injector", &self.conn.faults.is_some());
        debug.finish()
    }
}

impl<'a> Db<'a> {
    /// A handle on a pool: every statement runs in its own implicit transaction.
    /// The spine uses it for read-only use cases.
    pub fn for_pool(pool: &'a DatabaseConnection) -> Self {
        Self::new(Target::Pool(pool))
    }

    /// A handle inside a transaction that the caller owns and alone can commit.
    pub fn for_transaction(txn: &'a DatabaseTransaction) -> Self {
        Self::new(Target::Transaction(txn))
    }

    /// A handle inside a transaction, whose statements also pass through `faults` (tests that
    /// prove a failed use case leaves nothing behind).
    ///
    /// This constructor is the only way to attach an injector, and it needs the transaction
    /// itself, which only the spine holds: an engine or a driver, given a finished `Db`, cannot
    /// attach one, nor take an attached one off.
    #[cfg(any(test, feature = "testing"))]
    pub fn for_transaction_with_faults(
        txn: &'a DatabaseTransaction,
        faults: &'a FaultInjector,
    ) -> Self {
        let mut db = Self::new(Target::Transaction(txn));
        db.conn.faults = Some(faults);
        db
    }

    fn new(target: Target<'a>) -> Self {
        Self {
            conn: Conn {
                target,
                outer: None,
                inner: None,
                #[cfg(any(test, feature = "testing"))]
                faults: None,
            },
        }
    }

    /// The same handle, also counting every statement it runs into `counter` (tests and
    /// benchmarks use it to prove how many round trips an operation costs).
    ///
    /// Counters nest, so a test's own counter cannot switch off a suite-wide guard: the first
    /// counter a handle is given stays its *outer* counter for good; each later call sets the
    /// *inner* counter, replacing the previous inner one. Every statement is recorded into
    /// the outer counter and into the inner one (once, if both are the same counter). So
    /// `h.counting(&guard).counting(&mine)` records into `guard` and `mine`, and a further
    /// `.counting(&other)` records into `guard` and `other` only.
    pub fn counting(self, counter: &'a StatementCounter) -> Self {
        let (outer, inner) = match self.conn.outer {
            None => (Some(counter), None),
            Some(outer) => (Some(outer), Some(counter)),
        };
        Self {
            conn: Conn {
                target: self.conn.target,
                outer,
                inner,
                #[cfg(any(test, feature = "testing"))]
                faults: self.conn.faults,
            },
        }
    }

    /// The statement runner for driver code.
    #[allow(dead_code)] // until the first table module lands
    pub(crate) fn conn(&self) -> &Conn<'a> {
        &self.conn
    }
}

/// The seed's driver for the customer console's account pages (projects, users, memberships,
/// profile, billing, invitations, tickets), bound to one handle. Its methods live in the area
/// module of the table they touch.
#[derive(Clone, Copy, Debug)]
pub struct AccountsFacadeDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The accounts driver on `db`.
pub fn get_accounts_facade_driver(db: Db<'_>) -> AccountsFacadeDriver<'_> {
    AccountsFacadeDriver { db }
}

/// Counts the statements (round trips) run through a [`Db`] made with [`Db::counting`], and
/// separately any that begin, commit or roll back (which drivers must never send).
#[derive(Debug, Default)]
pub struct StatementCounter {
    statements: AtomicU64,
    transaction_control: AtomicU64,
}

impl StatementCounter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self {
            statements: AtomicU64::new(0),
            transaction_control: AtomicU64::new(0),
        }
    }

    /// Statements run so far.
    pub fn count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Back to zero; returns the count before the reset.
    pub fn take(&self) -> u64 {
        self.statements.swap(0, Ordering::Relaxed)
    }

    /// Statements seen that begin, commit, roll back or use savepoints (never reset).
    pub fn transaction_control(&self) -> u64 {
        self.transaction_control.load(Ordering::Relaxed)
    }

    fn record(&self, sql: &str) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let head = sql
            .trim_start()
            .get(..9)
            .unwrap_or(sql)
            .to_ascii_uppercase();
        let controls = [
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT",
            "RELEASE",
            "START TRA",
            "END",
        ];
        if controls.iter().any(|c| head.starts_with(c)) {
            self.transaction_control.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Makes the n-th statement run through the handles it is attached to fail, so a test can
/// prove that a use case leaves nothing behind (and publishes nothing) whichever of its
/// statements fails.
///
/// The spine attaches one injector to every write transaction's [`Db`] (see
/// [`Db::for_transaction_with_faults`]); counting is shared by all of them, in the order the
/// statements run. Disarmed (the default), it only counts the statements it sees, which tells
/// a test how many there are. [`FaultInjector::fail_at`] restarts the count and arms it: the
/// `n`-th statement from then on fails, once, without reaching the database, with
/// [`DbErr::Custom`] (text starting with [`FaultInjector::MESSAGE`]). `DriverError` classifies that as
/// `DriverError::Other`: a failure of the environment, never retried as contention. A failed
/// statement is counted by the injector but not by any [`StatementCounter`] (it made no round
/// trip).
///
/// One injector serves one use case at a time: arming it while another use case runs on the
/// same spine makes the failure land in whichever statement comes n-th.
///
/// A test hook: it exists only with the crate's `testing` feature (off by default), so no
/// production build can attach one.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct FaultInjector {
    /// Statements seen since the last [`FaultInjector::fail_at`] or [`FaultInjector::disarm`].
    seen: AtomicU64,
    /// The statement (1-based) to fail; 0 when disarmed.
    fail_at: AtomicU64,
    /// Failures injected so far.
    injected: AtomicU64,
}

#[cfg(any(test, feature = "testing"))]
impl FaultInjector {
    /// The text an injected failure starts with; the statement's number follows.
    pub const MESSAGE: &'static str = "injected fault at statement";

    /// A disarmed injector at zero.
    pub const fn new() -> Self {
        Self {
            seen: AtomicU64::new(0),
            fail_at: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    /// Restarts the count and arms the injector: the `n`-th statement from now (1-based) fails.
    /// `n = 0` disarms.
    pub fn fail_at(&self, n: u64) {
        self.fail_at.store(0, Ordering::SeqCst);
        self.seen.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    /// Restarts the count and disarms the injector: statements are only counted.
    pub fn disarm(&self) {
        self.fail_at(0);
    }

    /// Statements seen since the injector was last armed or disarmed, the failed one included.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Whether a failure is armed and has not fired yet.
    pub fn is_armed(&self) -> bool {
        self.fail_at.load(Ordering::SeqCst) != 0
    }

    /// Failures injected over the injector's life (never reset).
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Counts one statement; the error when it is the one to fail (which disarms).
    fn check(&self) -> Result<(), DbErr> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let target = self.fail_at.load(Ordering::SeqCst);
        if target != 0
            && n == target
            && self
                .fail_at
                .compare_exchange(target, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(DbErr::Custom(format!("{} {n}", Self::MESSAGE)));
        }
        Ok(())
    }
}

/// Runs statements; deliberately implements `ConnectionTrait` and not `TransactionTrait`.
#[derive(Clone, Copy)]
pub(crate) struct Conn<'a> {
    target: Target<'a>,
    /// The first counter given to [`Db::counting`]; never replaced.
    outer: Option<&'a StatementCounter>,
    /// The newest counter given after the first; replaced by each further call.
    inner: Option<&'a StatementCounter>,
    /// Set by the spine only ([`Db::for_transaction_with_faults`]).
    #[cfg(any(test, feature = "testing"))]
    faults: Option<&'a FaultInjector>,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Pool(&'a DatabaseConnection),
    Transaction(&'a DatabaseTransaction),
}

impl Conn<'_> {
    /// Passes the statement through the fault injector, then counts it.
    fn record(&self, sql: &str) -> Result<(), DbErr> {
        #[cfg(any(test, feature = "testing"))]
        if let Some(faults) = self.faults {
            faults.check()?;
        }
        if let Some(outer) = self.outer {
            outer.record(sql);
        }
        // The same counter given twice counts each statement once.
        if let Some(inner) = self
            .inner
            .filter(|i| !self.outer.is_some_and(|o| std::ptr::eq(*i, o)))
        {
            inner.record(sql);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Conn<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self.target {
            Target::Pool(c) => c.get_database_backend(),
            Target::Transaction(t) => t.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.record(&stmt.sql)?;
        match self.target {
            Target::Pool(c) => c.execute_raw(stmt).await,
            Target::Transaction(t) => t.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.record(sql)?;
        match self.target {
            Target::Pool(c) => c.execute_unprepared(sql).await,
            Target::Transaction(t) => t.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.record(&stmt.sql)?;
        match self.target {
            Target::Pool(c) => c.query_one_raw(stmt).await,
            Target::Transaction(t) => t.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.record(&stmt.sql)?;
        match self.target {
            Target::Pool(c) => c.query_all_raw(stmt).await,
            Target::Transaction(t) => t.query_all_raw(stmt).await,
        }
    }

    fn support_returning(&self) -> bool {
        match self.target {
            Target::Pool(c) => c.support_returning(),
            Target::Transaction(t) => t.support_returning(),
        }
    }

    fn is_mock_connection(&self) -> bool {
        match self.target {
            Target::Pool(c) => c.is_mock_connection(),
            Target::Transaction(t) => t.is_mock_connection(),
        }
    }
}

/// The `n`th (1-based) placeholder of a raw statement: `$n` on PostgreSQL, `?n` on SQLite.
pub(crate) fn param(backend: sea_orm::DbBackend, n: usize) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

/// The placeholders `1..=N` of a raw statement ([`param`]).
pub(crate) fn params<const N: usize>(backend: sea_orm::DbBackend) -> [String; N] {
    std::array::from_fn(|i| param(backend, i + 1))
}

/// `name` qualified by our schema, for raw statements.
pub(crate) fn our_table(name: &str) -> String {
    format!("\"{}\".{name}", crate::schema::current())
}

/// Runs one raw statement of `db`'s backend; the rows it affected.
pub(crate) async fn execute_raw(
    db: Db<'_>,
    sql: String,
    values: Vec<sea_orm::Value>,
) -> Result<u64, crate::DriverError> {
    let conn = db.conn();
    let statement =
        sea_orm::Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    Ok(conn.execute_raw(statement).await?.rows_affected())
}

/// Runs one raw query of `db`'s backend; its rows.
pub(crate) async fn query_raw(
    db: Db<'_>,
    sql: String,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<sea_orm::QueryResult>, crate::DriverError> {
    let conn = db.conn();
    let statement =
        sea_orm::Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    Ok(conn.query_all_raw(statement).await?)
}

#[cfg(test)]
mod tests {
    use super::{Db, StatementCounter};
    use sea_orm::{ConnectionTrait, DatabaseBackend, MockDatabase, MockExecResult};

    async fn run(db: Db<'_>, sql: &str) -> Result<(), sea_orm::DbErr> {
        db.conn().execute_unprepared(sql).await.map(|_| ())
    }

    #[tokio::test]
    async fn counters_nest_the_first_stays_outer_and_the_newest_is_inner() {
        let executed = MockExecResult {
            last_insert_id: 0,
            rows_affected: 1,
        };
        let pool = MockDatabase::new(DatabaseBackend::Postgres)
            .append_exec_results(vec![executed; 5])
            .into_connection();
        let (guard, mine, newer) = (
            StatementCounter::new(),
            StatementCounter::new(),
            StatementCounter::new(),
        );

        let guarded = Db::for_pool(&pool).counting(&guard);
        run(guarded, "UPDATE t SET a = 1").await.unwrap();
        assert_eq!((guard.count(), mine.count()), (1, 0));

        // A test's own counter is added under the guard, not instead of it.
        let nested = guarded.counting(&mine);
        run(nested, "BEGIN").await.unwrap();
        assert_eq!((guard.count(), mine.count()), (2, 1));
        assert_eq!(
            (guard.transaction_control(), mine.transaction_control()),
            (1, 1),
            "the guard still sees transaction control"
        );

        // A third counter replaces the inner one; the outer one stays.
        run(nested.counting(&newer), "SELECT 1").await.unwrap();
        assert_eq!((guard.count(), mine.count(), newer.count()), (3, 1, 1));

        // The same counter twice counts once.
        run(guarded.counting(&guard), "SELECT 1").await.unwrap();
        assert_eq!(guard.count(), 4);

        // A handle without a guard counts into its only counter.
        run(Db::for_pool(&pool).counting(&mine), "SELECT 1")
            .await
            .unwrap();
        assert_eq!((guard.count(), mine.count()), (4, 2));
    }

    #[tokio::test]
    async fn an_armed_injector_fails_the_nth_statement_once_and_counts_them_all() {
        use super::FaultInjector;
        use crate::DriverError;
        use sea_orm::TransactionTrait;

        let executed = MockExecResult {
            last_insert_id: 0,
            rows_affected: 1,
        };
        let pool = MockDatabase::new(DatabaseBackend::Postgres)
            .append_exec_results(vec![executed; 8])
            .into_connection();
        let txn = pool.begin().await.unwrap();
        let (faults, counter) = (FaultInjector::new(), StatementCounter::new());
        let db = Db::for_transaction_with_faults(&txn, &faults).counting(&counter);
        assert!(format!("{db:?}").contains("fault_injector: true"));

        // Disarmed, it counts.
        run(db, "SELECT 1").await.unwrap();
        run(db, "SELECT 2").await.unwrap();
        assert_eq!((faults.seen(), faults.injected()), (2, 0));

        // Armed at 2: the second statement from now fails, once, and is not sent.
        faults.fail_at(2);
        assert!(faults.is_armed());
        run(db, "UPDATE t SET a = 1").await.unwrap();
        let error = run(db, "UPDATE t SET a = 2").await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&format!("{} 2", FaultInjector::MESSAGE)),
            "{error}"
        );
        assert!(matches!(DriverError::from(error), DriverError::Other(_)));
        assert!(!faults.is_armed(), "it fires once");
        run(db, "UPDATE t SET a = 3").await.unwrap();
        assert_eq!((faults.seen(), faults.injected()), (3, 1));
        assert_eq!(
            counter.count(),
            4,
            "the failed statement made no round trip"
        );

        // Counters given later keep the injector; disarming restarts the count.
        faults.fail_at(1);
        let mine = StatementCounter::new();
        assert!(run(db.counting(&mine), "SELECT 3").await.is_err());
        faults.disarm();
        run(db.counting(&mine), "SELECT 4").await.unwrap();
        assert_eq!((faults.seen(), faults.injected(), mine.count()), (1, 2, 1));

        // Handles without it never fail.
        faults.fail_at(1);
        run(Db::for_transaction(&txn), "SELECT 5").await.unwrap();
        assert!(faults.is_armed());
    }

    #[test]
    fn the_counter_tells_transaction_control_from_other_statements() {
        let counter = StatementCounter::new();
        for sql in [
            "SELECT 1",
            "  insert into t values (1)",
            "UPDATE t SET a = 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            counter.record(sql);
        }
        assert_eq!((counter.count(), counter.transaction_control()), (4, 0));
        for sql in [
            "BEGIN",
            "begin immediate",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT sp1",
            "RELEASE SAVEPOINT sp1",
            "START TRANSACTION",
        ] {
            counter.record(sql);
        }
        assert_eq!((counter.count(), counter.transaction_control()), (11, 7));
        assert_eq!(counter.take(), 11);
        assert_eq!(counter.transaction_control(), 7, "the guard is never reset");
    }
}
