//! `plans`: plans as data, one row per version of a plan (not tenant data: every tenant reads
//! the same rows, so the table is global, a Citus reference table).
//!
//! A version is never edited: operators add a version, and retire versions they no longer
//! sell. Tenants keep the version they are on until their plan changes.

use crate::db::{execute_raw, our_table, params, query_raw};
use crate::{Db, DriverError};
use account_models::{PlanCode, PlanQuotas};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::{ConnectionTrait, QueryResult, Value};

fn plans() -> String {
    our_table("plans")
}

/// One version of one plan, as stored (and as written: the engines build it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRow {
    /// The plan's code.
    pub code: PlanCode,
    /// Its version, from 1.
    pub version: i32,
    /// Display name.
    pub name: String,
    /// The limits this version grants.
    pub quotas: PlanQuotas,
    /// Entitlements: a JSON object of feature name to `true` or a number.
    pub entitlements: String,
    /// Usage, in percent of a limit, at which a warning event goes out (`None`: no warnings).
    pub warn_at_percent: Option<i32>,
    /// When the version was created.
    pub created_at: DateTimeUtc,
    /// When it was retired (it takes no new tenants since).
    pub retired_at: Option<DateTimeUtc>,
}

const COLUMNS: &str = "code, version, name, max_workers, max_runs_per_day, max_concurrent_runs, \
    max_tokens_per_month, max_api_keys, max_requests_per_minute, audit_retention_days, \
    max_members, max_memory_pins, max_pin_value_bytes, entitlements, warn_at_percent, \
    created_at, retired_at";

fn plan_row(row: &QueryResult) -> Result<PlanRow, DriverError> {
    let code: String = row.try_get("", "code")?;
    Ok(PlanRow {
        code: PlanCode::parse(&code).map_err(|e| corrupt(e.to_string()))?,
        version: row.try_get("", "version")?,
        name: row.try_get("", "name")?,
        quotas: PlanQuotas {
            max_workers: row.try_get("", "max_workers")?,
            max_runs_per_day: row.try_get("", "max_runs_per_day")?,
            max_concurrent_runs: row.try_get("", "max_concurrent_runs")?,
            max_tokens_per_month: row.try_get("", "max_tokens_per_month")?,
            max_api_keys: row.try_get("", "max_api_keys")?,
            max_requests_per_minute: row.try_get("", "max_requests_per_minute")?,
            audit_retention_days: row.try_get("", "audit_retention_days")?,
            max_members: row.try_get("", "max_members")?,
            max_memory_pins: row.try_get("", "max_memory_pins")?,
            max_pin_value_bytes: row.try_get("", "max_pin_value_bytes")?,
        },
        entitlements: row.try_get("", "entitlements")?,
        warn_at_percent: row.try_get("", "warn_at_percent")?,
        created_at: row.try_get("", "created_at")?,
        retired_at: row.try_get("", "retired_at")?,
    })
}

/// A row the schema should never hold, or a statement that answered nothing.
fn corrupt(message: String) -> DriverError {
    DriverError::Other(sea_orm::DbErr::Custom(message))
}

/// Version `version` of `code`, retired or not.
pub async fn fetch_plan_version(
    db: Db<'_>,
    code: &PlanCode,
    version: i32,
) -> Result<Option<PlanRow>, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE code = {p1} AND version = {p2}",
        plans()
    );
    let values = vec![Value::from(code.as_str()), Value::from(version)];
    let rows = query_raw(db, sql, values).await?;
    rows.first().map(plan_row).transpose()
}

/// The newest version of `code` that is not retired: the one new tenants and plan changes get.
pub async fn fetch_current_plan(
    db: Db<'_>,
    code: &PlanCode,
) -> Result<Option<PlanRow>, DriverError> {
    let [p1] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE code = {p1} AND retired_at IS NULL \
         ORDER BY version DESC LIMIT 1",
        plans()
    );
    let rows = query_raw(db, sql, vec![Value::from(code.as_str())]).await?;
    rows.first().map(plan_row).transpose()
}

/// Every version of every plan, by code then version (a few dozen rows: plans are a catalogue).
pub async fn list_plans(db: Db<'_>) -> Result<Vec<PlanRow>, DriverError> {
    let sql = format!("SELECT {COLUMNS} FROM {} ORDER BY code, version", plans());
    let rows = query_raw(db, sql, Vec::new()).await?;
    rows.iter().map(plan_row).collect()
}

/// Stores `row` as the next version of its code (1 for a new code), numbered in the same
/// statement; the version stored. Two racing writers of one code: one gets the primary-key
/// conflict (`DriverError::UniqueViolation`), never the same number.
pub async fn insert_next_version(db: Db<'_>, row: &PlanRow) -> Result<i32, DriverError> {
    let [
        p1,
        p2,
        p3,
        p4,
        p5,
        p6,
        p7,
        p8,
        p9,
        p10,
        p11,
        p12,
        p13,
        p14,
        p15,
    ] = params(db.conn().get_database_backend());
    let table = plans();
    let sql = format!(
        "INSERT INTO {table} (code, version, name, max_workers, max_runs_per_day, \
           max_concurrent_runs, max_tokens_per_month, max_api_keys, max_requests_per_minute, \
           audit_retention_days, max_members, max_memory_pins, max_pin_value_bytes, \
           entitlements, warn_at_percent, created_at) \
         SELECT {p1}, COALESCE(MAX(version), 0) + 1, {p2}, {p3}, {p4}, {p5}, {p6}, {p7}, {p8}, \
           {p9}, {p10}, {p11}, {p12}, {p13}, {p14}, {p15} \
         FROM {table} WHERE code = {p1} RETURNING version"
    );
    let q = &row.quotas;
    let values = vec![
        Value::from(row.code.as_str()),
        Value::from(row.name.as_str()),
        Value::from(q.max_workers),
        Value::from(q.max_runs_per_day),
        Value::from(q.max_concurrent_runs),
        Value::from(q.max_tokens_per_month),
        Value::from(q.max_api_keys),
        Value::Int(q.max_requests_per_minute),
        Value::Int(q.audit_retention_days),
        Value::from(q.max_members),
        Value::from(q.max_memory_pins),
        Value::from(q.max_pin_value_bytes),
        Value::from(row.entitlements.as_str()),
        Value::Int(row.warn_at_percent),
        Value::from(row.created_at),
    ];
    let rows = query_raw(db, sql, values).await?;
    let row = rows
        .first()
        .ok_or_else(|| corrupt("INSERT ... RETURNING gave no row".into()))?;
    Ok(row.try_get("", "version")?)
}

/// Retires version `version` of `code` at `at`; whether a version not yet retired was found.
pub async fn retire_version(
    db: Db<'_>,
    code: &PlanCode,
    version: i32,
    at: DateTimeUtc,
) -> Result<bool, DriverError> {
    let [p1, p2, p3] = params(db.conn().get_database_backend());
    let sql = format!(
        "UPDATE {} SET retired_at = {p1} WHERE code = {p2} AND version = {p3} \
         AND retired_at IS NULL",
        plans()
    );
    let values = vec![
        Value::from(at),
        Value::from(code.as_str()),
        Value::from(version),
    ];
    Ok(execute_raw(db, sql, values).await? == 1)
}

/// How many tenants are on version `version` of `code`.
pub async fn count_tenants_on(
    db: Db<'_>,
    code: &PlanCode,
    version: i32,
) -> Result<u64, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT COUNT(*) AS n FROM {} WHERE plan = {p1} AND plan_version = {p2}",
        our_table("tenants")
    );
    let values = vec![Value::from(code.as_str()), Value::from(version)];
    let rows = query_raw(db, sql, values).await?;
    let n: i64 = match rows.first() {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or_default())
}

/// What a tenant uses of the limits that count rows rather than keep counters on its row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowUsage {
    /// Members plus pending invitations live at the time asked (seats taken).
    pub seats: i64,
    /// API keys active and unexpired.
    pub api_keys: i64,
    /// Memory pins live (unexpired).
    pub memory_pins: i64,
}

/// `tenant`'s [`RowUsage`] at `now`, in one statement; `None` when there is no such tenant.
pub async fn fetch_row_usage(
    db: Db<'_>,
    tenant: account_models::TenantId,
    now: DateTimeUtc,
) -> Result<Option<RowUsage>, DriverError> {
    let [p1, p2] = params(db.conn().get_database_backend());
    let sql = format!(
        "SELECT CAST(t.member_count + (SELECT COUNT(*) FROM {i} i WHERE i.tenant_id = t.id \
           AND i.status = 'pending' AND i.expires_at > {p2}) AS BIGINT) AS seats, \
         CAST((SELECT COUNT(*) FROM {k} k WHERE k.tenant_id = t.id AND k.status = 'active' \
           AND (k.expires_at IS NULL OR k.expires_at > {p2})) AS BIGINT) AS api_keys, \
         CAST((SELECT COUNT(*) FROM {m} m WHERE m.tenant_id = t.id \
           AND (m.expires_at IS NULL OR m.expires_at > {p2})) AS BIGINT) AS memory_pins \
         FROM {t} t WHERE t.id = {p1}",
        i = our_table("invitations"),
        k = our_table("api_keys"),
        m = our_table("memory_pins"),
        t = our_table("tenants"),
    );
    let values = vec![Value::from(tenant.as_uuid()), Value::from(now)];
    let rows = query_raw(db, sql, values).await?;
    rows.first()
        .map(|row| {
            Ok(RowUsage {
                seats: row.try_get("", "seats")?,
                api_keys: row.try_get("", "api_keys")?,
                memory_pins: row.try_get("", "memory_pins")?,
            })
        })
        .transpose()
}
