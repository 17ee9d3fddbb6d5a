//! `cache_sync`: telling other instances on the same PostgreSQL database which cached
//! credentials and roles a commit made stale.
//!
//! A writing transaction bumps the one row of `cache_versions` and sends `pg_notify` with the
//! new version and a payload in one statement; PostgreSQL delivers the notification at commit
//! and drops it at rollback, and the row lock orders the versions as the commits. Listeners
//! hold a session of their own ([`CacheListener`]). SQLite has no notifications: every
//! function here does nothing there (instances on one SQLite file rely on the caches' TTL).

use crate::{Db, DriverError};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

/// The largest payload sent: PostgreSQL refuses notifications of 8,000 bytes and more.
pub const MAX_CACHE_PAYLOAD: usize = 7_000;

fn qualified() -> String {
    format!("\"{}\".cache_versions", crate::schema::current())
}

/// The channel our notifications use: one per schema, so two account schemas in one
/// database do not hear each other.
pub fn cache_channel() -> String {
    format!("{}_cache", crate::schema::current())
}

/// Bumps the cache version and notifies listeners with `payload` (at most
/// [`MAX_CACHE_PAYLOAD`] bytes), in the caller's transaction: one statement on PostgreSQL,
/// none on SQLite. Returns the new version (`None` on SQLite).
pub async fn publish_cache_invalidation(
    db: Db<'_>,
    payload: &str,
) -> Result<Option<i64>, DriverError> {
    let conn = db.conn();
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let sql = format!(
        "WITH bumped AS (UPDATE {} SET version = version + 1 WHERE id = 1 RETURNING version) \
         SELECT version, pg_notify($1, version::text || ';' || $2) AS sent FROM bumped",
        qualified()
    );
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [Value::from(cache_channel()), Value::from(payload)],
    );
    let row = conn.query_one_raw(statement).await?;
    Ok(row
        .map(|row| row.try_get::<i64>("", "version"))
        .transpose()?)
}

/// The cache version as committed now (`None` on SQLite).
pub async fn fetch_cache_version(db: Db<'_>) -> Result<Option<i64>, DriverError> {
    let conn = db.conn();
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let statement = Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT version FROM {} WHERE id = 1", qualified()),
    );
    let row = conn.query_one_raw(statement).await?;
    Ok(row
        .map(|row| row.try_get::<i64>("", "version"))
        .transpose()?)
}

/// One notification: the version its commit set and the payload it carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheNotice {
    /// The version after the commit that sent it.
    pub version: i64,
    /// What the writer said went stale.
    pub payload: String,
}

/// What a listener heard.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Heard {
    /// A notification.
    Notice(CacheNotice),
    /// The session was lost (it reconnects by itself on the next call): notifications sent
    /// meanwhile are lost, so whatever the listener caches must be dropped.
    Lost,
}

/// A session of its own (not one of the pool's) listening on [`cache_channel`].
pub struct CacheListener {
    #[cfg(feature = "postgres")]
    listener: sea_orm::sqlx::postgres::PgListener,
    #[cfg(not(feature = "postgres"))]
    never: std::convert::Infallible,
}

impl std::fmt::Debug for CacheListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheListener").finish_non_exhaustive()
    }
}

#[cfg(feature = "postgres")]
fn sqlx_error(error: sea_orm::sqlx::Error) -> DriverError {
    DriverError::from(sea_orm::DbErr::Custom(format!("cache listener: {error}")))
}

impl CacheListener {
    /// Starts listening on the database at `url` (the pool's URL), in a session of its own;
    /// `None` when `url` is not a PostgreSQL one.
    #[cfg(feature = "postgres")]
    pub async fn start(url: &str) -> Result<Option<Self>, DriverError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Ok(None);
        }
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(sqlx_error)?;
        listener
            .listen(&cache_channel())
            .await
            .map_err(sqlx_error)?;
        Ok(Some(Self { listener }))
    }

    /// Starts listening on `pool`'s database; `None` on SQLite.
    #[cfg(not(feature = "postgres"))]
    pub async fn start(url: &str) -> Result<Option<Self>, DriverError> {
        let _ = url;
        Ok(None)
    }

    /// Waits for the next notification, or reports a lost session. An error means the pool
    /// is closed or the database refuses the session: the caller stops or retries later.
    #[cfg(not(feature = "postgres"))]
    pub async fn next(&mut self) -> Result<Heard, DriverError> {
        match self.never {}
    }

    /// Waits for the next notification, or reports a lost session. An error means the pool
    /// is closed or the database refuses the session: the caller stops or retries later.
    #[cfg(feature = "postgres")]
    pub async fn next(&mut self) -> Result<Heard, DriverError> {
        loop {
            let Some(notification) = self.listener.try_recv().await.map_err(sqlx_error)? else {
                return Ok(Heard::Lost);
            };
            let Some((version, payload)) = notification.payload().split_once(';') else {
                continue; // not one of ours
            };
            if let Ok(version) = version.parse() {
                return Ok(Heard::Notice(CacheNotice {
                    version,
                    payload: payload.to_owned(),
                }));
            }
        }
    }
}
