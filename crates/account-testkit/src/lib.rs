//! Layer: dev — testkit. Fresh, migrated databases for tests, on SQLite or PostgreSQL.
//!
//! Every database is a *host's* database: a host application's own `users` and `orders`
//! tables, recorded by its own sea-orm migrator in `seaql_migrations`, sit beside ours (on
//! PostgreSQL in `public`, on SQLite in the main database our file is attached to), and the
//! two migrators run in alternating order from one database to the next. Every suite thus
//! runs against a database a host shares with us ([`host`]).
//!
//! Every database test runs on both backends: iterate over [`backends()`]. SQLite is always
//! there (an isolated in-memory database per call). PostgreSQL is used when
//! `ACCOUNT_TEST_PG_URL` names a server (each call creates its own uniquely named database, so
//! tests run in parallel); with `ACCOUNT_TEST_REQUIRE_PG=1` (set by `cargo xtask ci`) a missing
//! URL is an error instead of a silent skip.

pub mod compile_fail;
pub mod fixtures;
pub mod host;
pub mod replica;
mod url_db;

pub use url_db::UrlDb;

use account_migrations::SchemaName;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Names the PostgreSQL server tests may create databases on.
pub const PG_URL_VAR: &str = "ACCOUNT_TEST_PG_URL";
/// When set to `1`, PostgreSQL is mandatory.
pub const REQUIRE_PG_VAR: &str = "ACCOUNT_TEST_REQUIRE_PG";
/// `sqlite` or `postgres`: run the database tests on that backend only.
pub const BACKEND_VAR: &str = "ACCOUNT_TEST_BACKEND";
/// Names a streaming replica of the `ACCOUNT_TEST_PG_URL` server (its admin URL), for the
/// read-replica tests. `cargo xtask pg start` and `cargo xtask ci` start one (xtask's `pg`
/// module is where replicas are made); tests drive it with SQL only.
pub const PG_REPLICA_URL_VAR: &str = "ACCOUNT_TEST_PG_REPLICA_URL";

/// A database backend under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An isolated in-memory SQLite database.
    Sqlite,
    /// A fresh database on the PostgreSQL server at this admin URL.
    Postgres {
        /// URL of a database on the server with the right to `CREATE DATABASE`.
        admin_url: String,
    },
}

impl Backend {
    /// A short name for test output: `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// Why the kit could not give a test its database.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// PostgreSQL was required (by `ACCOUNT_TEST_REQUIRE_PG=1` or `ACCOUNT_TEST_BACKEND=postgres`)
    /// but `ACCOUNT_TEST_PG_URL` is not set.
    #[error(
        "PostgreSQL is required but {PG_URL_VAR} is not set; run `cargo xtask ci`, or `cargo xtask pg start`"
    )]
    PostgresRequired,
    /// `ACCOUNT_TEST_BACKEND` names no backend we know.
    #[error("{BACKEND_VAR}={0} is not a backend; use sqlite or postgres")]
    UnknownBackend(String),
    /// Connecting or creating the database failed.
    #[error("test database setup failed: {0}")]
    Database(#[from] DbErr),
    /// Our migrations failed.
    #[error("migrating the test database failed: {0}")]
    Migration(#[from] account_migrations::MigrationError),
    /// PostgreSQL is required and configured, but `ACCOUNT_TEST_PG_REPLICA_URL` is not set.
    #[error(
        "PostgreSQL is required but {PG_REPLICA_URL_VAR} is not set; run `cargo xtask ci`, or `cargo xtask pg start`"
    )]
    ReplicaRequired,
    /// PostgreSQL is required and configured, but `ACCOUNT_TEST_PG_SPARE_REPLICA_URL` is not
    /// set (see [`replica::spare_replica`]).
    #[error(
        "PostgreSQL is required but {} is not set; run `cargo xtask ci`, or `cargo xtask pg start`",
        replica::SPARE_REPLICA_URL_VAR
    )]
    SpareReplicaRequired,
    /// The spare replica is named but cannot be stopped or started: a setting is missing or
    /// `pg_ctl` failed.
    #[error("controlling the spare replica failed: {0}")]
    SpareReplica(String),
}

/// The admin URL of the streaming replica of the PostgreSQL server under test, when the
/// read-replica tests should run: `None` to skip them (PostgreSQL is not under test, or no
/// replica is configured and PostgreSQL is not required), an error when PostgreSQL is required
/// (`ACCOUNT_TEST_REQUIRE_PG=1`) but no replica is named.
pub fn pg_replica() -> Result<Option<String>, TestkitError> {
    let Some(Backend::Postgres { .. }) = backends()?.into_iter().find(|b| b.name() == "postgres")
    else {
        return Ok(None);
    };
    match std::env::var(PG_REPLICA_URL_VAR) {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if std::env::var(REQUIRE_PG_VAR).is_ok_and(|v| v == "1") => {
            Err(TestkitError::ReplicaRequired)
        }
        _ => Ok(None),
    }
}

/// The backends every database test must run on, SQLite first.
///
/// `ACCOUNT_TEST_BACKEND=sqlite|postgres` narrows the list to one backend (the CI runs the
/// suite once per backend); unset, it is SQLite plus PostgreSQL when a server is configured.
pub fn backends() -> Result<Vec<Backend>, TestkitError> {
    let postgres = match std::env::var(PG_URL_VAR) {
        Ok(admin_url) if !admin_url.is_empty() => Some(Backend::Postgres { admin_url }),
        _ => None,
    };
    let require_pg = std::env::var(REQUIRE_PG_VAR).is_ok_and(|v| v == "1");
    match std::env::var(BACKEND_VAR).as_deref() {
        Ok("sqlite") => Ok(vec![Backend::Sqlite]),
        Ok("postgres") => postgres
            .map(|pg| vec![pg])
            .ok_or(TestkitError::PostgresRequired),
        Ok(other) if !other.is_empty() => Err(TestkitError::UnknownBackend(other.to_owned())),
        _ => match postgres {
            Some(pg) => Ok(vec![Backend::Sqlite, pg]),
            None if require_pg => Err(TestkitError::PostgresRequired),
            None => Ok(vec![Backend::Sqlite]),
        },
    }
}

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDb {
    conn: DatabaseConnection,
    direct: DatabaseConnection,
    host: DatabaseConnection,
    backend: Backend,
    url: String,
    host_url: String,
    /// On PostgreSQL the database's name, dropped with the `TestDb`.
    pg_database: Option<String>,
}

impl Drop for TestDb {
    /// Drops a PostgreSQL database as its test ends: a full run creates a thousand of them
    /// (9 MB each), and the server's disk is shared with the build. On a thread with a
    /// runtime of its own, because the test's runtime may be shutting down; `FORCE` ends the
    /// pools still open on it, which takes the server a tenth of a second, so the test does
    /// not wait for it. A drop cut short by the test binary's exit only leaves disk in use
    /// until the throwaway server is removed.
    fn drop(&mut self) {
        let (Backend::Postgres { admin_url }, Some(name)) =
            (&self.backend, self.pg_database.take())
        else {
            return;
        };
        let admin_url = admin_url.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = plain_connection(&admin_url).await.ok()?;
                let dropped = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
                dropped.ok()
            })
        });
    }
}

impl TestDb {
    /// A pool on our tables, by qualified (`account.users`, as entities render) and by plain
    /// names alike: PostgreSQL with `search_path=account`; on SQLite an empty private main
    /// database with ours attached as `account`. For drivers, engines and tests' raw SQL. The
    /// host's own tables are not visible here: see [`TestDb::host_conn`].
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// A pool whose unqualified DDL lands in our schema, for migration tests: PostgreSQL as
    /// [`TestDb::conn`]; on SQLite the account database itself as main (so `sqlite_master`
    /// lists our objects).
    pub fn direct_conn(&self) -> &DatabaseConnection {
        &self.direct
    }

    /// A pool as the host application holds it: PostgreSQL's default search path (`public`,
    /// where the host's own `users` table is); on SQLite the host's main database with ours
    /// attached as `account`. What `account_spine::Spine::from_connection` gets in a host.
    pub fn host_conn(&self) -> &DatabaseConnection {
        &self.host
    }

    /// The backend this database lives on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The account database's URL, as a spine's `DatabaseConfig::new(url)` takes it: a second,
    /// independent pool on the same data, what another process would see. For SQLite this is
    /// a shared-cache in-memory name (the spine attaches it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same database on the replica whose admin URL is `replica_admin_url` (see
    /// [`pg_replica`]); `None` on SQLite. It appears there once the replica has replayed its
    /// creation.
    pub fn replica_url(&self, replica_admin_url: &str) -> Option<String> {
        self.pg_database
            .as_deref()
            .map(|name| replace_database_name(replica_admin_url, name))
    }

    /// The host's main database on SQLite (our database is attached to it in
    /// [`TestDb::host_conn`]); on PostgreSQL the same database as [`TestDb::url`].
    pub fn host_url(&self) -> &str {
        &self.host_url
    }

    /// Opens a second pool like [`TestDb::direct_conn`] (plain names, `sqlite_master` and
    /// `current_schema()` are ours), e.g. to prove a commit is visible elsewhere.
    pub async fn second_connection(&self) -> Result<DatabaseConnection, TestkitError> {
        Ok(direct_connection(&self.url).await?)
    }

    /// Opens a second pool as the host holds it, like [`TestDb::host_conn`] (e.g. to see the
    /// host's own tables from elsewhere).
    pub async fn second_host_connection(&self) -> Result<DatabaseConnection, TestkitError> {
        Ok(host_connection(&self.backend, &self.url, &self.host_url).await?)
    }

    /// How many rows each table holds, by table name: equal counts before and after a call
    /// show it wrote nothing (for tests that reach the database only through an API).
    pub async fn row_counts(&self) -> Result<BTreeMap<String, i64>, TestkitError> {
        let backend = self.direct.get_database_backend();
        let list = match backend {
            DbBackend::Sqlite => {
                "SELECT name AS t FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            _ => {
                "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
            }
        };
        let mut counts = BTreeMap::new();
        for row in self
            .direct
            .query_all_raw(Statement::from_string(backend, list))
            .await?
        {
            let table: String = row.try_get("", "t")?;
            let count = self
                .direct
                .query_one_raw(Statement::from_string(
                    backend,
                    format!("SELECT COUNT(*) AS n FROM \"{table}\""),
                ))
                .await?
                .map(|row| row.try_get::<i64>("", "n"))
                .transpose()?
                .unwrap_or(0);
            counts.insert(table, count);
        }
        Ok(counts)
    }

    /// Every row of `table`, each rendered as one text (all columns), for tests that reach
    /// the database only through an API and must search what was stored (e.g. that no secret
    /// reached the audit log). `table` is a name the test chose, never input.
    pub async fn rows_as_text(&self, table: &str) -> Result<Vec<String>, TestkitError> {
        let backend = self.direct.get_database_backend();
        let sql = match backend {
            DbBackend::Sqlite => {
                let columns = self
                    .direct
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT name AS c FROM pragma_table_info('{table}') ORDER BY cid"),
                    ))
                    .await?
                    .iter()
                    .map(|row| row.try_get::<String>("", "c"))
                    .collect::<Result<Vec<_>, _>>()?;
                let row = columns
                    .iter()
                    .map(|c| format!("quote(\"{c}\")"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                format!("SELECT {row} AS r FROM \"{table}\"")
            }
            _ => format!("SELECT CAST(x AS TEXT) AS r FROM \"{table}\" AS x"),
        };
        self.direct
            .query_all_raw(Statement::from_string(backend, sql))
            .await?
            .iter()
            .map(|row| Ok(row.try_get::<String>("", "r")?))
            .collect()
    }
}

/// An empty database (no migrations applied; on PostgreSQL the empty `account` schema exists,
/// so migrations applied through [`TestDb::conn`] land in it).
pub async fn empty_db(backend: &Backend) -> Result<TestDb, TestkitError> {
    let unique = format!("account_test_{}", uuid::Uuid::new_v4().simple());
    let (url, host_url, pg_database) = match backend {
        // Named shared-cache in-memory databases: every pool opened on these URLs sees the
        // same data, and they vanish with the last connection.
        Backend::Sqlite => (
            format!("sqlite:file:{unique}?mode=memory&cache=shared"),
            format!("sqlite:file:{unique}_host?mode=memory&cache=shared"),
            None,
        ),
        Backend::Postgres { admin_url } => {
            let admin = plain_connection(admin_url).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{unique}\""))
                .await?;
            admin.close().await?;
            let url = replace_database_name(admin_url, &unique);
            let setup = plain_connection(&url).await?;
            setup
                .execute_unprepared(&format!("CREATE SCHEMA \"{}\"", SchemaName::DEFAULT))
                .await?;
            setup.close().await?;
            (url.clone(), url, Some(unique))
        }
    };
    // First, so that the in-memory SQLite databases exist while the others attach them.
    let direct = direct_connection(&url).await?;
    let conn = schema_connection(&url).await?;
    let host = host_connection(backend, &url, &host_url).await?;
    Ok(TestDb {
        conn,
        direct,
        host,
        backend: backend.clone(),
        url,
        host_url,
        pg_database,
    })
}

/// A database with every migration of ours applied beside a host's own tables and
/// migrations; which migrator runs first alternates from one call to the next.
pub async fn fresh_db(backend: &Backend) -> Result<TestDb, TestkitError> {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let db = empty_db(backend).await?;
    let ours_first = CALLS.fetch_add(1, Ordering::Relaxed).is_multiple_of(2);
    if ours_first {
        migrate_ours(&db).await?;
        host::migrate(db.host_conn()).await?;
    } else {
        host::migrate(db.host_conn()).await?;
        migrate_ours(&db).await?;
    }
    Ok(db)
}

async fn migrate_ours(db: &TestDb) -> Result<(), TestkitError> {
    account_migrations::migrate(db.direct_conn(), &SchemaName::default()).await?;
    Ok(())
}

/// A pool on our tables at `url` by qualified and plain names (see [`TestDb::conn`]).
pub async fn schema_connection(url: &str) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        attached_pool("sqlite::memory:", url).await
    } else {
        direct_connection(url).await
    }
}

/// A pool whose unqualified DDL lands in our schema at `url` (see [`TestDb::direct_conn`]).
pub async fn direct_connection(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = pool_options(url);
    options.set_schema_search_path(SchemaName::DEFAULT);
    Database::connect(options).await
}

/// A pool on `url` with the server's defaults (no search path of ours).
async fn plain_connection(url: &str) -> Result<DatabaseConnection, DbErr> {
    Database::connect(pool_options(url)).await
}

/// The host's pool: PostgreSQL's defaults; on SQLite the host's database as main with the
/// account database (`url`) attached.
async fn host_connection(
    backend: &Backend,
    url: &str,
    host_url: &str,
) -> Result<DatabaseConnection, DbErr> {
    match backend {
        Backend::Sqlite => attached_pool(host_url, url).await,
        Backend::Postgres { .. } => plain_connection(url).await,
    }
}

/// A SQLite pool on `main_url` with the account database (`url`) attached as `account`.
async fn attached_pool(main_url: &str, url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = pool_options(main_url);
    options.map_sqlx_sqlite_opts(|sqlite| sqlite.foreign_keys(true));
    account_migrations::sqlite_attachment(&mut options, url, &SchemaName::default());
    Database::connect(options).await
}

fn pool_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(16)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    options
}

/// `postgres://u@h:p/admin?x` with the database part replaced by `name`.
fn replace_database_name(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut url = format!("{}/{}", &base[..authority_end], name);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::replace_database_name;

    #[test]
    fn database_name_is_replaced_keeping_query() {
        assert_eq!(
            replace_database_name("postgres://u@127.0.0.1:5433/postgres?sslmode=disable", "t1"),
            "postgres://u@127.0.0.1:5433/t1?sslmode=disable"
        );
        assert_eq!(
            replace_database_name("postgres://u@h:1", "t2"),
            "postgres://u@h:1/t2"
        );
    }
}
