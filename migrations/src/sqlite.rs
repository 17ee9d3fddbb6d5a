//! Reaching the account database on SQLite: a file (or shared in-memory database) of its own,
//! attached under the schema name to every connection of a pool.

#[cfg(feature = "sqlite")]
use account_values::SchemaName;
#[cfg(feature = "sqlite")]
use sea_orm_migration::sea_orm::ConnectOptions;
#[cfg(feature = "sqlite")]
use sea_orm_migration::sea_orm::sqlx::{self, Executor};
use std::sync::atomic::{AtomicU64, Ordering};

/// `url` itself, except that `sqlite::memory:` (a different, empty database per connection)
/// becomes a named shared-cache in-memory database unique to this process, so that every
/// connection opened by that URL (the pool's attachments, the migration connection) sees the
/// same one. It lives while one connection to it is open.
pub fn shared_memory_url(url: String) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!(
            "sqlite:file:account-memory-{}-{n}?mode=memory&cache=shared",
            std::process::id()
        )
    } else {
        url
    }
}

/// The SQLite URI filename (`file:...`) of a sqlx SQLite URL, for `ATTACH`.
#[cfg(feature = "sqlite")]
fn attach_uri(url: &str) -> String {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if rest.starts_with("file:") {
        rest.to_owned()
    } else {
        format!("file:{rest}")
    }
}

/// Makes every connection `options` opens attach the account database at `account_url` (a
/// sqlx SQLite URL) as `schema`, in WAL with `synchronous=NORMAL` (on in-memory databases
/// SQLite keeps its own journal mode).
#[cfg(feature = "sqlite")]
pub fn sqlite_attachment(options: &mut ConnectOptions, account_url: &str, schema: &SchemaName) {
    let uri = attach_uri(account_url);
    let schema = schema.to_string();
    options.map_sqlx_sqlite_pool_opts(move |pool| {
        let (uri, schema) = (uri.clone(), schema.clone());
        pool.after_connect(move |conn, _meta| {
            let uri = uri.clone();
            let schema = schema.clone();
            Box::pin(async move {
                // A `SchemaName` is a plain lower-case identifier: safe to splice.
                sqlx::query(sqlx::AssertSqlSafe(format!("ATTACH DATABASE ?1 AS \"{schema}\"")))
                    .bind(uri)
                    .execute(&mut *conn)
                    .await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA \"{schema}\".journal_mode = WAL; PRAGMA \"{schema}\".synchronous = NORMAL"
                )))
                .await?;
                Ok(())
            })
        })
    });
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn urls_become_attachable_uris() {
        assert_eq!(
            attach_uri("sqlite://account.db?mode=rwc"),
            "file:account.db?mode=rwc"
        );
        assert_eq!(attach_uri("sqlite:/tmp/a.db"), "file:/tmp/a.db");
        assert_eq!(
            attach_uri("sqlite:file:x?mode=memory&cache=shared"),
            "file:x?mode=memory&cache=shared"
        );
        let memory = shared_memory_url("sqlite::memory:".into());
        assert!(
            memory.starts_with("sqlite:file:account-memory-"),
            "{memory}"
        );
        assert_ne!(memory, shared_memory_url("sqlite::memory:".into()));
        assert_eq!(
            shared_memory_url("postgres://h/db".into()),
            "postgres://h/db"
        );
    }
}
