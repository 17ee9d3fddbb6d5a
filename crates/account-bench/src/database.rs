//! The databases a run measures on: a fresh PostgreSQL database per run (the latency and
//! throughput harness and `--http` alike), a SQLite file removed with its WAL files.

use anyhow::{Context, Result};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use std::path::{Path, PathBuf};

/// A database created for one run on a PostgreSQL server; [`FreshDatabase::drop_database`]
/// removes it.
pub(crate) struct FreshDatabase {
    /// Its URL (the admin URL with the new database's name).
    pub(crate) url: String,
    admin: DatabaseConnection,
    /// Its name (the same on the server's replicas).
    pub(crate) name: String,
}

/// Creates `{prefix}_{pid}` on the server of `admin_url` (dropping a leftover of that name
/// first: a run killed before its cleanup leaves one).
pub(crate) async fn fresh_database(admin_url: &str, prefix: &str) -> Result<FreshDatabase> {
    let (base, _) = admin_url
        .rsplit_once('/')
        .context("the PostgreSQL URL has no database path")?;
    let name = format!("{prefix}_{}", std::process::id());
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(FreshDatabase {
        url: format!("{base}/{name}"),
        admin,
        name,
    })
}

impl FreshDatabase {
    /// Drops the database; `FORCE` ends connections still open (the API's stragglers, a pool
    /// not yet closed). A failure is ignored: the server is a throwaway.
    pub(crate) async fn drop_database(self) {
        let _ = self
            .admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// Removes a SQLite database file and its `-wal` and `-shm` files, if there.
pub(crate) fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(file));
    }
}
