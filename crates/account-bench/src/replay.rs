//! The two baselines: captured statements replayed through plain sea-orm (the spine's own pool
//! settings, rows decoded into account-models entities) and through the raw drivers
//! (tokio-postgres with a per-connection prepared-statement cache; rusqlite with its statement
//! cache), each in one transaction when the spine used one.

use crate::capture::first_table;
use account_models::entities::{
    api_keys, audit_log, invitations, memberships, memory_pins, tenants, usage_records, users,
    worker_runs,
};
use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, FromQueryResult, QueryResult, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionTrait, Value,
};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Whether a statement hands back rows (a query, or a write with `RETURNING`).
fn returns_rows(sql: &str) -> bool {
    let head = sql.trim_start();
    let starts = |word: &str| {
        head.get(..word.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(word))
    };
    starts("select") || starts("with") || sql.contains(" RETURNING ")
}

/// Write transactions as the spine begins them (`IMMEDIATE` on SQLite).
fn write_options() -> TransactionOptions {
    TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    }
}

/// Plain sea-orm on a `DatabaseConnection`.
pub(crate) struct SeaOrmReplay {
    pub(crate) db: DatabaseConnection,
}

impl SeaOrmReplay {
    /// Runs `statements`; returns how many rows came back or were affected.
    pub(crate) async fn run(&self, statements: Vec<Statement>, transactional: bool) -> Result<u64> {
        let mut total = 0;
        if transactional {
            let txn = self
                .db
                .begin_with_options(write_options())
                .await
                .map_err(|e| anyhow::anyhow!("begin: {e:?}"))?;
            for statement in statements {
                total += run_sea_orm(&txn, statement).await?;
            }
            txn.commit()
                .await
                .map_err(|e| anyhow::anyhow!("commit: {e:?}"))?;
        } else {
            for statement in statements {
                total += run_sea_orm(&self.db, statement).await?;
            }
        }
        Ok(total)
    }
}

async fn run_sea_orm<C: ConnectionTrait>(db: &C, statement: Statement) -> Result<u64> {
    let sql = statement.sql.clone();
    run_sea_orm_statement(db, statement)
        .await
        .with_context(|| format!("sea-orm replay of `{sql}`"))
}

async fn run_sea_orm_statement<C: ConnectionTrait>(db: &C, statement: Statement) -> Result<u64> {
    if returns_rows(&statement.sql) {
        let table = entity_table(&statement.sql).map(str::to_owned);
        let rows = db
            .query_all_raw(statement)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(decode_entities(table.as_deref(), &rows))
    } else {
        Ok(db
            .execute_raw(statement)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .rows_affected())
    }
}

/// The table whose entity a `SELECT`'s rows are decoded into: its first table, when the
/// statement selects that table's `id` (the entity's columns); a statement that selects a
/// column or an aggregate gets `None`, since decoding its rows as the entity would only fail
/// (building an error per row, which a plain sea-orm caller, selecting into a tuple or a
/// partial model, would not pay).
fn entity_table(sql: &str) -> Option<&str> {
    let table = first_table(sql)?;
    let selected = &sql[..sql.find(" FROM ")?];
    selected
        .contains(&format!("\"{table}\".\"id\""))
        .then_some(table)
}

/// Decodes rows into the entity of their table, as a plain sea-orm caller would; rows whose
/// columns are not an entity's (aggregates, single columns) are only fetched.
fn decode_entities(table: Option<&str>, rows: &[QueryResult]) -> u64 {
    fn count<M: FromQueryResult>(rows: &[QueryResult]) -> u64 {
        rows.iter()
            .filter(|row| M::from_query_result(row, "").is_ok())
            .count() as u64
    }
    match table {
        Some("users") => count::<users::Model>(rows),
        Some("tenants") => count::<tenants::Model>(rows),
        Some("tenant_memberships") => count::<memberships::Model>(rows),
        Some("api_keys") => count::<api_keys::Model>(rows),
        Some("memory_pins") => count::<memory_pins::Model>(rows),
        Some("worker_runs") => count::<worker_runs::Model>(rows),
        Some("invitations") => count::<invitations::Model>(rows),
        Some("usage_records") => count::<usage_records::Model>(rows),
        Some("audit_log") => count::<audit_log::Model>(rows),
        _ => rows.len() as u64,
    }
}

/// A fixed set of connections handed out one caller at a time.
pub(crate) struct Pool<T> {
    items: Mutex<Vec<T>>,
    permits: std::sync::Arc<Semaphore>,
}

impl<T> Pool<T> {
    fn new(items: Vec<T>) -> Self {
        let permits = std::sync::Arc::new(Semaphore::new(items.len()));
        Self {
            items: Mutex::new(items),
            permits,
        }
    }

    async fn take(&self) -> Result<(T, OwnedSemaphorePermit)> {
        let permit = self.permits.clone().acquire_owned().await?;
        let item = self
            .items
            .lock()
            .map_err(|_| anyhow::anyhow!("pool poisoned"))?
            .pop()
            .context("pool empty despite a permit")?;
        Ok((item, permit))
    }

    fn put(&self, item: T, permit: OwnedSemaphorePermit) {
        if let Ok(mut items) = self.items.lock() {
            items.push(item);
        }
        drop(permit);
    }
}

/// One tokio-postgres connection with its prepared statements.
pub(crate) struct PgConnection {
    client: tokio_postgres::Client,
    prepared: HashMap<String, tokio_postgres::Statement>,
}

/// Raw tokio-postgres.
pub(crate) struct RawPg {
    pool: Pool<PgConnection>,
}

impl RawPg {
    /// Opens `size` connections to `url`.
    pub(crate) async fn connect(url: &str, size: usize) -> Result<Self> {
        let mut connections = Vec::with_capacity(size);
        for _ in 0..size {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            // The captured statements name `"account"."<table>"`; the baselines' own
            // unqualified SQL finds the same tables.
            client.batch_execute("SET search_path TO account").await?;
            connections.push(PgConnection {
                client,
                prepared: HashMap::new(),
            });
        }
        Ok(Self {
            pool: Pool::new(connections),
        })
    }

    /// Runs `statements` on one connection; returns rows fetched or affected.
    pub(crate) async fn run(&self, statements: Vec<Statement>, transactional: bool) -> Result<u64> {
        let (mut conn, permit) = self.pool.take().await?;
        let outcome = run_pg(&mut conn, statements, transactional).await;
        if outcome.is_err() && transactional {
            let _ = conn.client.batch_execute("ROLLBACK").await;
        }
        self.pool.put(conn, permit);
        outcome
    }
}

async fn run_pg(
    conn: &mut PgConnection,
    statements: Vec<Statement>,
    transactional: bool,
) -> Result<u64> {
    if transactional {
        conn.client.batch_execute("BEGIN").await?;
    }
    let mut total = 0;
    for statement in statements {
        let prepared = match conn.prepared.get(&statement.sql) {
            Some(prepared) => prepared.clone(),
            None => {
                let prepared = conn.client.prepare(&statement.sql).await?;
                conn.prepared
                    .insert(statement.sql.clone(), prepared.clone());
                prepared
            }
        };
        let values: Vec<Value> = statement.values.map(|v| v.0).unwrap_or_default();
        let params: Vec<PgParam<'_>> = values.iter().map(PgParam).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        if returns_rows(&statement.sql) {
            let rows = conn
                .client
                .query(&prepared, &refs)
                .await
                .with_context(|| format!("raw replay of `{}`", statement.sql))?;
            total += rows.iter().map(decode_pg_row).sum::<Result<u64>>()?;
        } else {
            total += conn
                .client
                .execute(&prepared, &refs)
                .await
                .with_context(|| format!("raw replay of `{}`", statement.sql))?;
        }
    }
    if transactional {
        conn.client.batch_execute("COMMIT").await?;
    }
    Ok(total)
}

/// Decodes every column to its Rust type, as an application would; returns 1 per row.
fn decode_pg_row(row: &tokio_postgres::Row) -> Result<u64> {
    let mut width = 0usize;
    for (index, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        width += match *ty {
            Type::BOOL => row
                .try_get::<_, Option<bool>>(index)?
                .map_or(0, usize::from),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(index)?
                .map_or(0, |v| v as usize),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)?
                .map_or(0, |v| v as usize),
            Type::INT8 => row
                .try_get::<_, Option<i64>>(index)?
                .map_or(0, |v| v as usize),
            Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => 1,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                row.try_get::<_, Option<&str>>(index)?.map_or(0, str::len)
            }
            Type::UUID => row
                .try_get::<_, Option<uuid::Uuid>>(index)?
                .map_or(0, |u| usize::from(u.as_bytes()[0])),
            Type::TIMESTAMPTZ => row
                .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(index)?
                .map_or(0, |t| t.timestamp_subsec_nanos() as usize),
            Type::TIMESTAMP => row
                .try_get::<_, Option<chrono::NaiveDateTime>>(index)?
                .map_or(0, |t| t.and_utc().timestamp_subsec_nanos() as usize),
            Type::DATE => row
                .try_get::<_, Option<chrono::NaiveDate>>(index)?
                .map_or(0, |_| 1),
            Type::JSON | Type::JSONB => row
                .try_get::<_, Option<serde_json::Value>>(index)?
                .map_or(0, |_| 1),
            Type::BYTEA => row
                .try_get::<_, Option<&[u8]>>(index)?
                .map_or(0, <[u8]>::len),
            _ => bail!("raw baseline cannot decode column type {ty}"),
        };
    }
    Ok(u64::from(std::hint::black_box(width) != usize::MAX))
}

/// A sea-query value bound with the type PostgreSQL expects for its parameter.
#[derive(Debug)]
struct PgParam<'a>(&'a Value);

impl ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        fn int(
            v: Option<i64>,
            ty: &Type,
            out: &mut BytesMut,
        ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            match *ty {
                Type::INT2 => v.map(i16::try_from).transpose()?.to_sql(ty, out),
                Type::INT4 => v.map(i32::try_from).transpose()?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            }
        }
        match self.0 {
            Value::Bool(v) => v.to_sql(ty, out),
            Value::TinyInt(v) => int(v.map(i64::from), ty, out),
            Value::SmallInt(v) => int(v.map(i64::from), ty, out),
            Value::Int(v) => int(v.map(i64::from), ty, out),
            Value::BigInt(v) => int(*v, ty, out),
            Value::Unsigned(v) => int(v.map(i64::from), ty, out),
            Value::BigUnsigned(v) => int(v.map(i64::try_from).transpose()?, ty, out),
            Value::Float(v) => v.map(f64::from).to_sql(ty, out),
            Value::Double(v) => v.to_sql(ty, out),
            Value::String(v) => v.as_deref().to_sql(ty, out),
            Value::Bytes(v) => v.as_deref().to_sql(ty, out),
            Value::Json(v) => v.as_deref().to_sql(ty, out),
            Value::ChronoDateTimeUtc(v) => v.to_sql(ty, out),
            Value::ChronoDateTime(v) => v.to_sql(ty, out),
            Value::ChronoDate(v) => v.to_sql(ty, out),
            Value::Uuid(v) => v.to_sql(ty, out),
            other => Err(format!("raw baseline cannot bind {other:?}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Raw rusqlite, with the spine's SQLite settings (WAL, synchronous=NORMAL, foreign keys,
/// busy timeout).
pub(crate) struct RawSqlite {
    pool: std::sync::Arc<Pool<rusqlite::Connection>>,
}

impl RawSqlite {
    /// Opens `size` connections to the database file at `path`.
    pub(crate) fn open(path: &std::path::Path, size: usize) -> Result<Self> {
        let mut connections = Vec::with_capacity(size);
        for _ in 0..size {
            // As the spine reaches it: the account database attached as `account` to a
            // private in-memory main, so the captured statements' qualified names resolve.
            let conn = rusqlite::Connection::open_in_memory()?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.execute("ATTACH DATABASE ?1 AS account", [path.to_string_lossy()])?;
            conn.execute_batch(
                "PRAGMA account.journal_mode = WAL; PRAGMA account.synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON;",
            )?;
            connections.push(conn);
        }
        Ok(Self {
            pool: std::sync::Arc::new(Pool::new(connections)),
        })
    }

    /// Runs `statements`; on a blocking thread when `blocking` (concurrent callers), else
    /// inline (the single-caller floor: no thread hop).
    pub(crate) async fn run(
        &self,
        statements: Vec<Statement>,
        transactional: bool,
        blocking: bool,
    ) -> Result<u64> {
        let (conn, permit) = self.pool.take().await?;
        if blocking {
            let pool = self.pool.clone();
            tokio::task::spawn_blocking(move || {
                let outcome = run_sqlite(&conn, statements, transactional);
                pool.put(conn, permit);
                outcome
            })
            .await?
        } else {
            let outcome = run_sqlite(&conn, statements, transactional);
            self.pool.put(conn, permit);
            outcome
        }
    }
}

fn run_sqlite(
    conn: &rusqlite::Connection,
    statements: Vec<Statement>,
    transactional: bool,
) -> Result<u64> {
    if transactional {
        conn.execute_batch("BEGIN IMMEDIATE")?;
    }
    let outcome = run_sqlite_statements(conn, statements);
    if transactional {
        match &outcome {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(_) => {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
    outcome
}

fn run_sqlite_statements(conn: &rusqlite::Connection, statements: Vec<Statement>) -> Result<u64> {
    let mut total = 0;
    for statement in statements {
        let mut prepared = conn.prepare_cached(&statement.sql)?;
        let values: Vec<rusqlite::types::Value> = statement
            .values
            .map(|v| v.0)
            .unwrap_or_default()
            .iter()
            .map(sqlite_value)
            .collect::<Result<_>>()?;
        if returns_rows(&statement.sql) {
            let columns = prepared.column_count();
            let mut rows = prepared.query(rusqlite::params_from_iter(values.iter()))?;
            while let Some(row) = rows.next()? {
                let mut width = 0usize;
                for index in 0..columns {
                    width += match row.get_ref(index)? {
                        rusqlite::types::ValueRef::Null => 0,
                        rusqlite::types::ValueRef::Integer(v) => v as usize,
                        rusqlite::types::ValueRef::Real(_) => 1,
                        rusqlite::types::ValueRef::Text(t) => {
                            std::str::from_utf8(t).map_or(0, str::len)
                        }
                        rusqlite::types::ValueRef::Blob(b) => b.len(),
                    };
                }
                std::hint::black_box(width);
                total += 1;
            }
        } else {
            total += prepared.execute(rusqlite::params_from_iter(values.iter()))? as u64;
        }
    }
    Ok(total)
}

/// A sea-query value as sqlx-sqlite encodes it (UUIDs as 16-byte blobs, times as RFC 3339
/// text, JSON as text).
fn sqlite_value(value: &Value) -> Result<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    let null = V::Null;
    Ok(match value {
        Value::Bool(v) => v.map_or(null, |b| V::Integer(i64::from(b))),
        Value::TinyInt(v) => v.map_or(null, |i| V::Integer(i64::from(i))),
        Value::SmallInt(v) => v.map_or(null, |i| V::Integer(i64::from(i))),
        Value::Int(v) => v.map_or(null, |i| V::Integer(i64::from(i))),
        Value::BigInt(v) => v.map_or(null, V::Integer),
        Value::Unsigned(v) => v.map_or(null, |i| V::Integer(i64::from(i))),
        Value::BigUnsigned(v) => match v {
            Some(i) => V::Integer(i64::try_from(*i)?),
            None => null,
        },
        Value::Float(v) => v.map_or(null, |f| V::Real(f64::from(f))),
        Value::Double(v) => v.map_or(null, V::Real),
        Value::String(v) => v.clone().map_or(null, V::Text),
        Value::Bytes(v) => v.clone().map_or(null, V::Blob),
        Value::Json(v) => v.as_ref().map_or(null, |j| V::Text(j.to_string())),
        Value::ChronoDateTimeUtc(v) => v.map_or(null, |t| {
            V::Text(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
        }),
        Value::ChronoDateTime(v) => v.map_or(null, |t| V::Text(t.format("%F %T%.f").to_string())),
        Value::ChronoDate(v) => v.map_or(null, |d| V::Text(d.format("%F").to_string())),
        Value::Uuid(v) => v.map_or(null, |u| V::Blob(u.as_bytes().to_vec())),
        other => bail!("raw baseline cannot bind {other:?}"),
    })
}
