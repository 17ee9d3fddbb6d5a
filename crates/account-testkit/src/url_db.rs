//! A database a test opens by URL with its own pool settings (production configuration, a
//! race-sized pool), instead of the kit's ready connection.

use crate::{Backend, TestDb, TestkitError, fresh_db};
use std::path::PathBuf;

/// On SQLite a fresh *file* (so its connections are real, separate connections, in WAL as in
/// production), removed with its `-wal` and `-shm` files on drop; on PostgreSQL a fresh,
/// migrated database. The SQLite file is created by the first connection and not migrated:
/// see [`UrlDb::is_migrated`].
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
                Self {
                    url: format!("sqlite://{}?mode=rwc", file.display()),
                    _postgres: None,
                    sqlite_file: Some(file),
                }
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

    /// Whether the schema is in place (PostgreSQL); a SQLite file still needs migrating by
    /// whoever connects first.
    pub fn is_migrated(&self) -> bool {
        self.sqlite_file.is_none()
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
    use sea_orm::{ConnectionTrait, Database, Statement};

    /// PostgreSQL comes migrated, SQLite as a file that exists once connected and is gone
    /// with its WAL files after drop.
    #[tokio::test]
    async fn url_databases_are_migrated_or_cleaned_up_as_documented() {
        for backend in backends().unwrap() {
            let db = UrlDb::new(&backend, "account-testkit-url-db")
                .await
                .unwrap();
            let conn = Database::connect(db.url()).await.unwrap();
            let migrated = conn
                .query_one_raw(Statement::from_string(
                    conn.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM tenants",
                ))
                .await
                .is_ok();
            assert_eq!(migrated, db.is_migrated(), "{}", backend.name());
            assert_eq!(db.is_migrated(), backend != Backend::Sqlite);
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
