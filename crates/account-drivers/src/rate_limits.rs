//! `rate_limits`: request allowances shared by every instance on one database.
//!
//! Each limited subject (an API key, under its tenant) has one row holding its GCRA state:
//! `tat_us`, the instant (microseconds since the Unix epoch, by the database's clock, so
//! instances with skewed clocks agree) at which its allowance is full again. A subject with
//! no row, or a row in the past, has its whole allowance. A limit of `rpm` requests per
//! minute with a burst of `burst` gives each request an interval `T = 60 s / rpm`; a request
//! at `now` fits while `tat - now <= (burst - 1) × T`.
//!
//! [`lease_allowance`] takes up to `wanted` requests at once in one conditional upsert: as
//! many as fit (possibly none), moving `tat` by as many intervals. The caller spends them
//! locally, so the shared row is touched once per batch, not per request, and never grants
//! more than the limit allows: instances together stay within it whatever they lease.

use crate::db::param;
use crate::{Db, DriverError};
use account_models::TenantId;
use sea_orm::prelude::Uuid;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

/// One limit, as the shared state counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowanceRule {
    /// Microseconds one request takes to refill (`T`, at least 1).
    pub interval_us: i64,
    /// Requests the allowance holds when full (at least 1).
    pub burst: i64,
}

/// What a lease got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Requests granted, from 0 (the allowance is used up) to the number asked for.
    pub granted: i64,
    /// How far the allowance's full instant lies ahead of the database's now, after the
    /// grant, in microseconds (0 when it is full).
    pub debt_us: i64,
}

/// The table, in the installed schema.
fn table() -> String {
    format!("\"{}\".rate_limit_states", crate::schema::current())
}

/// The database's clock in microseconds since the Unix epoch, stable within a statement.
fn now_us(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000)::bigint",
        _ => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
    }
}

/// Takes up to `wanted` requests of `subject`'s allowance under `rule`, in one statement on
/// the caller's handle (a pool: the lease commits at once). Concurrent leases queue on the
/// subject's row, so together they never grant more than the rule allows.
pub async fn lease_allowance(
    db: Db<'_>,
    tenant: TenantId,
    subject: Uuid,
    rule: AllowanceRule,
    wanted: i64,
) -> Result<Lease, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let (greatest, least) = match backend {
        DbBackend::Postgres => ("GREATEST", "LEAST"),
        _ => ("MAX", "MIN"),
    };
    let now = now_us(backend);
    let [tenant_p, subject_p, wanted_p, interval_p, burst_p] =
        [1, 2, 3, 4, 5].map(|n| param(backend, n));
    let t = table();
    // How far the existing row's full instant lies ahead of now (0 if it is past).
    let debt = format!("{greatest}(rate_limit_states.tat_us - {now}, 0)");
    // Requests that fit in what is left of the burst, capped by the ask: never negative.
    let fits = format!(
        "{least}({wanted_p}, {greatest}(({burst_p} * {interval_p} - {debt}) / {interval_p}, 0))"
    );
    let sql = format!(
        "INSERT INTO {t} (tenant_id, subject_id, tat_us, granted) \
         VALUES ({tenant_p}, {subject_p}, {now} + {least}({wanted_p}, {burst_p}) * {interval_p}, \
                 {least}({wanted_p}, {burst_p})) \
         ON CONFLICT (tenant_id, subject_id) DO UPDATE SET \
           granted = {fits}, \
           tat_us = {greatest}(rate_limit_states.tat_us, {now}) + {fits} * {interval_p} \
         RETURNING granted, tat_us - {now} AS debt_us"
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            Value::from(tenant.as_uuid()),
            Value::from(subject),
            Value::from(wanted.max(1)),
            Value::from(rule.interval_us.max(1)),
            Value::from(rule.burst.max(1)),
        ],
    );
    let row = conn
        .query_one_raw(statement)
        .await?
        .ok_or_else(|| DriverError::from(sea_orm::DbErr::RecordNotFound(t)))?;
    Ok(Lease {
        granted: row.try_get("", "granted")?,
        debt_us: row.try_get::<i64>("", "debt_us")?.max(0),
    })
}

/// How far `subject`'s full instant lies ahead of the database's now, in microseconds (0
/// when its allowance is full or it has no row): one read, nothing counted.
pub async fn fetch_allowance_debt(
    db: Db<'_>,
    tenant: TenantId,
    subject: Uuid,
) -> Result<i64, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let now = now_us(backend);
    let greatest = match backend {
        DbBackend::Postgres => "GREATEST",
        _ => "MAX",
    };
    let sql = format!(
        "SELECT {greatest}(tat_us - {now}, 0) AS debt_us FROM {} \
         WHERE tenant_id = {} AND subject_id = {}",
        table(),
        param(backend, 1),
        param(backend, 2),
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(tenant.as_uuid()), Value::from(subject)],
    );
    let row = conn.query_one_raw(statement).await?;
    Ok(row
        .map(|row| row.try_get::<i64>("", "debt_us"))
        .transpose()?
        .unwrap_or(0))
}
