//! The opaque database handle that engines pass to drivers.
//!
//! Only the spine can build a [`Db`] (it owns the connection and the transaction). Drivers get
//! a [`Conn`] out of it, which runs statements but has no `begin`, `commit` or `rollback`; the
//! `DatabaseTransaction` it wraps is only borrowed, and committing it needs ownership.

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
        f.debug_struct("Db").field("kind", &kind).finish()
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

    fn new(target: Target<'a>) -> Self {
        Self {
            conn: Conn {
                target,
                outer: None,
                inner: None,
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
            },
        }
    }

    /// The statement runner for driver code.
    #[allow(dead_code)] // until the first table module lands
    pub(crate) fn conn(&self) -> &Conn<'a> {
        &self.conn
    }
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

/// Runs statements; deliberately implements `ConnectionTrait` and not `TransactionTrait`.
#[derive(Clone, Copy)]
pub(crate) struct Conn<'a> {
    target: Target<'a>,
    /// The first counter given to [`Db::counting`]; never replaced.
    outer: Option<&'a StatementCounter>,
    /// The newest counter given after the first; replaced by each further call.
    inner: Option<&'a StatementCounter>,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Pool(&'a DatabaseConnection),
    Transaction(&'a DatabaseTransaction),
}

impl Conn<'_> {
    fn record(&self, sql: &str) {
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
        self.record(&stmt.sql);
        match self.target {
            Target::Pool(c) => c.execute_raw(stmt).await,
            Target::Transaction(t) => t.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.record(sql);
        match self.target {
            Target::Pool(c) => c.execute_unprepared(sql).await,
            Target::Transaction(t) => t.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.record(&stmt.sql);
        match self.target {
            Target::Pool(c) => c.query_one_raw(stmt).await,
            Target::Transaction(t) => t.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.record(&stmt.sql);
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
