//! The streaming replica of the PostgreSQL server under test, as tests drive it: with SQL
//! only (xtask's `pg` module starts it; see [`crate::pg_replica`]).

use crate::{TestDb, TestkitError, plain_connection};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::time::{Duration, Instant};

/// How long the helpers wait for the replica before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

async fn text(conn: &DatabaseConnection, sql: &str) -> Result<Option<String>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(row.and_then(|row| row.try_get_by_index::<Option<String>>(0).ok().flatten()))
}

fn timed_out(what: &str) -> TestkitError {
    TestkitError::Database(DbErr::Custom(format!(
        "the replica did not {what} within {PATIENCE:?}"
    )))
}

impl TestDb {
    /// This database's URL on the replica whose admin URL is `replica_admin_url`, once the
    /// replica has replayed everything committed on the primary so far (its creation, our
    /// schema, the test's rows). PostgreSQL only: an error on SQLite.
    pub async fn caught_up_replica(&self, replica_admin_url: &str) -> Result<String, TestkitError> {
        let url = self.replica_url(replica_admin_url).ok_or_else(|| {
            TestkitError::Database(DbErr::Custom("replicas are PostgreSQL's".into()))
        })?;
        let written = text(self.conn(), "SELECT pg_current_wal_insert_lsn()::text")
            .await?
            .unwrap_or_default();
        let caught_up = format!("SELECT (pg_last_wal_replay_lsn() >= '{written}')::text");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(replica) = plain_connection(&url).await {
                let done = text(&replica, &caught_up).await;
                let _ = replica.close().await;
                if matches!(done.as_ref().map(Option::as_deref), Ok(Some("true"))) {
                    return Ok(url);
                }
            }
            if Instant::now() > deadline {
                return Err(timed_out("catch up"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Replay paused on a replica ([`pause_replay`]); resumed when dropped, whatever the test
/// did meanwhile (on a thread with a runtime of its own, as the test's may be ending).
#[derive(Debug)]
#[must_use = "replay resumes when this is dropped"]
pub struct ReplayPaused {
    url: String,
}

/// Pauses WAL replay on the replica at `url` (`pg_wal_replay_pause()`, as a superuser) and
/// returns once it is paused: the replica then lags the primary until the guard drops.
pub async fn pause_replay(url: &str) -> Result<ReplayPaused, TestkitError> {
    let replica = plain_connection(url).await?;
    replica
        .execute_unprepared("SELECT pg_wal_replay_pause()")
        .await?;
    let guard = ReplayPaused {
        url: url.to_owned(),
    };
    let deadline = Instant::now() + PATIENCE;
    while text(&replica, "SELECT pg_get_wal_replay_pause_state()")
        .await?
        .as_deref()
        != Some("paused")
    {
        if Instant::now() > deadline {
            return Err(timed_out("pause"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = replica.close().await;
    Ok(guard)
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let replica = plain_connection(&url).await.ok()?;
                let resumed = replica
                    .execute_unprepared("SELECT pg_wal_replay_resume()")
                    .await;
                let _ = replica.close().await;
                resumed.ok()
            })
        })
        .join();
    }
}
