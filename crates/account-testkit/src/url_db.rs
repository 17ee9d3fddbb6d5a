//! A database a test opens by URL with its own pool settings (production configuration, a
//! race-sized pool), instead of the kit's ready connection.

use crate::{Backend, TestDb, TestkitError, direct_connection, fresh_db};
use account_migrations::SchemaName;
use std::path::PathBuf;

/// On SQLite a fresh, migrated *file* (so its connections are real, separate connections, in
/// WAL as in production), removed with its `-wal` and `-shm` files on drop; on PostgreSQL a
/// fresh, migrated database (beside a host's tables, see [`crate::fresh_db`]).
#[derive(Debug)]
pub struct UrlDb {
    url: String,
    /// Keeps the PostgreSQL database's pool for the test's lifetime.
    _postgres: Option<TestDb>,
    sqlite_file: Option<PathBuf>,
}

impl UrlDb {
    /// A new database on `backend`; `prefix` names the SQLite file in the temp directory.
    pub async fn new(backend: &Backend, prefix: &str) -> Result<Self, TestkitError> {
        Ok(match backend {
            Backend::Sqlite => {
                let file = std::env::temp_dir()
                    .join(format!("{prefix}-{}.db", uuid::Uuid::new_v4().simple()));
                let url = format!("sqlite://{}?mode=rwc", file.display());
                let db = Self {
                    url,
                    _postgres: None,
                    sqlite_file: Some(file),
                };
                let conn = direct_connection(&db.url).await?;
                account_migrations::migrate(&conn, &SchemaName::default()).await?;
                conn.close().await?;
                db
            }
            Backend::Postgres { .. } => {
                let db = fresh_db(backend).await?;
                Self {
                    url: db.url().to_owned(),
                    _postgres: Some(db),
                    sqlite_file: None,
                }
            }
        })
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool for tests' raw SQL on it, like [`crate::TestDb::direct_conn`].
    pub async fn raw(&self) -> Result<sea_orm::DatabaseConnection, TestkitError> {
        Ok(direct_connection(&self.url).await?)
    }
}

impl Drop for UrlDb {
    fn drop(&mut self) {
        if let Some(file) = &self.sqlite_file {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.clone().into_os_string();
                path.push(suffix);
                // Best effort: a file a crashed test left behind is only temp-dir litter.
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends;
    use sea_orm::{ConnectionTrait, Statement};

    /// Both come migrated; the SQLite file is gone with its WAL files after drop.
    #[tokio::test]
    async fn url_databases_are_migrated_or_cleaned_up_as_documented() {
        for backend in backends().unwrap() {
            let db = UrlDb::new(&backend, "account-testkit-url-db")
                .await
                .unwrap();
            let conn = direct_connection(db.url()).await.unwrap();
            let migrated = conn
                .query_one_raw(Statement::from_string(
                    conn.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM tenants",
                ))
                .await
                .is_ok();
            assert!(migrated, "{}", backend.name());
            if let Some(file) = db.sqlite_file.clone() {
                conn.execute_unprepared("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
                    .await
                    .unwrap();
                let with = |suffix: &str| {
                    let mut path = file.clone().into_os_string();
                    path.push(suffix);
                    PathBuf::from(path)
                };
                // The pool stays open over the drop: SQLite itself removes the WAL files
                // when the last connection closes, which would hide a cleanup that skips them.
                for suffix in ["", "-wal", "-shm"] {
                    assert!(with(suffix).exists(), "{suffix} exists while connected");
                }
                drop(db);
                for suffix in ["", "-wal", "-shm"] {
                    assert!(!with(suffix).exists(), "{suffix} removed on drop");
                }
                conn.close().await.unwrap();
            }
        }
    }
}
