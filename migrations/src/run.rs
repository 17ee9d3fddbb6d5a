//! Applying our migrations inside a host's database: in a schema of our own, recorded in a
//! table of our own, all or nothing, with errors that name the migration.
//!
//! PostgreSQL: everything runs in one transaction that holds an advisory lock (instances
//! starting together migrate once, the others wait and find nothing pending) with
//! `search_path` set to our schema for that transaction only, so the frozen migrations'
//! unqualified names land there. SQLite: the connection's main database *is* ours (a file of
//! its own, which the spine attaches under the schema name at run time); one transaction too.

use crate::{MIGRATION_TABLE, Migrator, OUR_TABLES};
use account_values::SchemaName;
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait, Value,
};

/// Where 0.0.0 recorded our migrations: sea-orm's default table, in the default schema.
const LEGACY_TABLE: &str = "seaql_migrations";
/// The one function our PostgreSQL migrations create (the finished-run guard).
const OUR_FUNCTIONS: &[&str] = &["worker_runs_immutable_guard()"];

/// What [`migrate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The migrations applied by this call, in order (empty when the schema was current).
    pub migrations: Vec<String>,
    /// Whether a 0.0.0 layout (our tables in the default schema, recorded in
    /// `seaql_migrations`) was found and moved into our schema first.
    pub upgraded_from_0_0_0: bool,
}

/// Why [`migrate`] applied nothing. Every variant leaves the database as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// One migration failed; none of this call's migrations were kept.
    #[error("migration {migration} failed: {source}")]
    Failed {
        /// The migration's name, e.g. `m20261125_000002_create_users`.
        migration: String,
        /// The database's error.
        source: DbErr,
    },
    /// Our schema holds some of our tables but no record of migrations: an interrupted
    /// migration of an older version, or tables created by hand. Nothing is applied over it.
    #[error(
        "schema `{schema}` holds tables of ours ({}) but no `{MIGRATION_TABLE}` record: a half-applied schema; \
         restore it from a backup or drop those tables, then start again",
        tables.join(", ")
    )]
    HalfApplied {
        /// The schema.
        schema: String,
        /// The tables of ours found there.
        tables: Vec<String>,
    },
    /// The database records migrations this build does not know: it was migrated by a newer
    /// version. Run that version (or newer).
    #[error("the database has migrations this version does not know ({}); run a newer version", migrations.join(", "))]
    UnknownApplied {
        /// Their names.
        migrations: Vec<String>,
    },
    /// Reading or preparing the schema failed before any migration ran.
    #[error("preparing schema `{schema}` failed: {source}")]
    Database {
        /// The schema.
        schema: String,
        /// The database's error.
        source: DbErr,
    },
}

/// Applies every pending migration of ours, into `schema`.
///
/// `db` is, on PostgreSQL, any connection to the database; on SQLite, a connection whose main
/// database is the account database itself (its URL as the spine's `DatabaseConfig` names
/// it), not a host's database with ours attached: SQLite creates unqualified tables in main.
/// A host's own tables and its own sea-orm migrations (in `seaql_migrations`) are never read
/// or touched, except that a 0.0.0 layout is moved out of them (see [`Applied`]).
pub async fn migrate(
    db: &DatabaseConnection,
    schema: &SchemaName,
) -> Result<Applied, MigrationError> {
    let prepare = |source| MigrationError::Database {
        schema: schema.to_string(),
        source,
    };
    let txn = db.begin().await.map_err(prepare)?;
    match apply(&txn, schema).await {
        Ok(applied) => {
            txn.commit().await.map_err(prepare)?;
            Ok(applied)
        }
        Err(error) => {
            // Rolled back before returning: dropping the transaction would roll it back in
            // the background, and on SQLite the next reader could still meet its schema lock.
            let _ = txn.rollback().await;
            Err(error)
        }
    }
}

/// The migrations of ours not yet recorded in `schema`, in the order they would apply (all of
/// them when the schema has no record yet). A read only: it takes no lock and applies nothing,
/// so a readiness probe can ask it while another instance migrates.
///
/// `db` reaches our schema by its name: any connection on PostgreSQL; on SQLite one with the
/// account database attached under the schema name, as the spine's pools are
/// (`sqlite_attachment`).
pub async fn pending<C: ConnectionTrait>(
    db: &C,
    schema: &SchemaName,
) -> Result<Vec<String>, MigrationError> {
    let failed = |source| MigrationError::Database {
        schema: schema.to_string(),
        source,
    };
    let backend = db.get_database_backend();
    let exists = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT to_regclass($1) IS NOT NULL AS present",
            vec![Value::from(format!("\"{schema}\".{MIGRATION_TABLE}"))],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT COUNT(*) > 0 AS present FROM \"{schema}\".sqlite_master \
                 WHERE type = 'table' AND name = ?"
            ),
            vec![Value::from(MIGRATION_TABLE)],
        ),
    };
    let recorded: Vec<String> = match db.query_one_raw(exists).await.map_err(failed)? {
        Some(row) if row.try_get::<bool>("", "present").map_err(failed)? => {
            let versions = Statement::from_string(
                backend,
                format!("SELECT version FROM \"{schema}\".{MIGRATION_TABLE}"),
            );
            let rows = db.query_all_raw(versions).await.map_err(failed)?;
            rows.iter()
                .map(|row| row.try_get::<String>("", "version"))
                .collect::<Result<_, _>>()
                .map_err(failed)?
        }
        _ => Vec::new(),
    };
    Ok(Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .filter(|name| !recorded.contains(name))
        .collect())
}

/// Every pending migration in `txn`, after the 0.0.0 upgrade and the half-applied check.
async fn apply(txn: &DatabaseTransaction, schema: &SchemaName) -> Result<Applied, MigrationError> {
    let prepare = |source| MigrationError::Database {
        schema: schema.to_string(),
        source,
    };
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        enter_schema(txn, schema).await.map_err(prepare)?;
    }
    let upgraded_from_0_0_0 = upgrade_from_0_0_0(txn, schema).await.map_err(prepare)?;
    refuse_half_applied(txn, schema).await?;
    let statuses = Migrator::get_migration_with_status(txn)
        .await
        .map_err(|source| unknown_or(source, schema))?;
    let pending: Vec<String> = statuses
        .iter()
        .filter(|m| m.status() == sea_orm_migration::MigrationStatus::Pending)
        .map(|m| m.name().to_owned())
        .collect();
    for migration in &pending {
        Migrator::up(txn, Some(1))
            .await
            .map_err(|source| MigrationError::Failed {
                migration: migration.clone(),
                source,
            })?;
    }
    Ok(Applied {
        migrations: pending,
        upgraded_from_0_0_0,
    })
}

/// Takes the migration lock, creates the schema and points this transaction's unqualified
/// names at it.
async fn enter_schema(txn: &DatabaseTransaction, schema: &SchemaName) -> Result<(), DbErr> {
    // Transaction-scoped: released by commit or rollback, whatever happens to this process.
    exec(
        txn,
        "SELECT pg_advisory_xact_lock(hashtext('account-migrations:' || $1))",
        vec![schema.as_str().into()],
    )
    .await?;
    // A `SchemaName` is a plain lower-case identifier: nothing in it needs escaping.
    exec(
        txn,
        &format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""),
        vec![],
    )
    .await?;
    exec(
        txn,
        &format!("SET LOCAL search_path TO \"{schema}\""),
        vec![],
    )
    .await
}

/// Moves a 0.0.0 layout into our schema: on PostgreSQL the tables and the guard function from
/// `public`, on both backends our rows of `seaql_migrations` into our migration table (the
/// host's rows, if any, stay). Returns whether there was one.
async fn upgrade_from_0_0_0(txn: &DatabaseTransaction, schema: &SchemaName) -> Result<bool, DbErr> {
    let backend = txn.get_database_backend();
    let legacy = match backend {
        DbBackend::Postgres => format!("public.{LEGACY_TABLE}"),
        _ => LEGACY_TABLE.to_owned(),
    };
    if !table_exists(txn, &legacy).await? || table_exists(txn, MIGRATION_TABLE).await? {
        return Ok(false);
    }
    let ours: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let list = ours
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let recorded = count(
        txn,
        &format!("SELECT COUNT(*) AS n FROM {legacy} WHERE version IN ({list})"),
    )
    .await?;
    if recorded == 0 {
        return Ok(false);
    }
    if backend == DbBackend::Postgres {
        for table in OUR_TABLES {
            if table_exists(txn, &format!("public.{table}")).await? {
                exec(
                    txn,
                    &format!("ALTER TABLE public.{table} SET SCHEMA \"{schema}\""),
                    vec![],
                )
                .await?;
            }
        }
        for function in OUR_FUNCTIONS {
            let qualified = format!("public.{function}");
            let sql = "SELECT to_regprocedure($1) IS NOT NULL AS present";
            if present(txn, sql, &qualified).await? {
                exec(
                    txn,
                    &format!("ALTER FUNCTION {qualified} SET SCHEMA \"{schema}\""),
                    vec![],
                )
                .await?;
            }
        }
    }
    Migrator::install(txn).await?;
    exec(
        txn,
        &format!(
            "INSERT INTO {MIGRATION_TABLE} (version, applied_at) \
             SELECT version, applied_at FROM {legacy} WHERE version IN ({list})"
        ),
        vec![],
    )
    .await?;
    exec(
        txn,
        &format!("DELETE FROM {legacy} WHERE version IN ({list})"),
        vec![],
    )
    .await?;
    let left = count(txn, &format!("SELECT COUNT(*) AS n FROM {legacy}")).await?;
    if left == 0 {
        exec(txn, &format!("DROP TABLE {legacy}"), vec![]).await?;
    }
    Ok(true)
}

/// Refuses a schema holding our tables without our migration record.
async fn refuse_half_applied(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
) -> Result<(), MigrationError> {
    let probe = async {
        if table_exists(txn, MIGRATION_TABLE).await? {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for table in OUR_TABLES {
            if table_exists(txn, table).await? {
                found.push((*table).to_owned());
            }
        }
        Ok(found)
    };
    let tables = probe.await.map_err(|source| MigrationError::Database {
        schema: schema.to_string(),
        source,
    })?;
    if tables.is_empty() {
        Ok(())
    } else {
        Err(MigrationError::HalfApplied {
            schema: schema.to_string(),
            tables,
        })
    }
}

/// sea-orm-migration refuses applied migrations it has no file for with a `Custom` error
/// naming one of them; name them all.
fn unknown_or(source: DbErr, schema: &SchemaName) -> MigrationError {
    match &source {
        DbErr::Custom(text) if text.contains("is missing") => MigrationError::UnknownApplied {
            migrations: text
                .split('\'')
                .nth(1)
                .map(|name| vec![name.to_owned()])
                .unwrap_or_default(),
        },
        _ => MigrationError::Database {
            schema: schema.to_string(),
            source,
        },
    }
}

/// Whether `name` (a table, schema-qualified on PostgreSQL or resolved by this transaction's
/// search path; on SQLite in main) exists.
async fn table_exists(txn: &DatabaseTransaction, name: &str) -> Result<bool, DbErr> {
    let sql = match txn.get_database_backend() {
        DbBackend::Postgres => "SELECT to_regclass($1) IS NOT NULL AS present",
        _ => "SELECT COUNT(*) > 0 AS present FROM sqlite_master WHERE type = 'table' AND name = ?",
    };
    present(txn, sql, name).await
}

/// The boolean column `present` of `sql`'s one row, with `name` bound.
async fn present(txn: &DatabaseTransaction, sql: &str, name: &str) -> Result<bool, DbErr> {
    let statement =
        Statement::from_sql_and_values(txn.get_database_backend(), sql, vec![Value::from(name)]);
    let row = txn.query_one_raw(statement).await?;
    Ok(row
        .map(|row| row.try_get::<bool>("", "present"))
        .transpose()?
        .unwrap_or(false))
}

/// The column `n` of `sql`'s one row.
async fn count(txn: &DatabaseTransaction, sql: &str) -> Result<i64, DbErr> {
    let statement = Statement::from_string(txn.get_database_backend(), sql);
    let row = txn.query_one_raw(statement).await?;
    Ok(row
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

async fn exec(txn: &DatabaseTransaction, sql: &str, values: Vec<Value>) -> Result<(), DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        sql,
        values,
    ))
    .await
    .map(|_| ())
}
