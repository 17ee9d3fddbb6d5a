//! Bulk seeding: one `INSERT ... SELECT` over a generated series per table, so a million rows
//! take seconds. Values are written in the encodings the application uses (PostgreSQL native
//! types; on SQLite UUIDs as 16-byte blobs and times as RFC 3339 text, as sqlx writes them).

use anyhow::Result;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use uuid::Uuid;

/// SQL fragments that differ between the backends.
pub(crate) struct Dialect {
    backend: DbBackend,
}

impl Dialect {
    /// For `db`'s backend.
    pub(crate) fn of(db: &DatabaseConnection) -> Self {
        Self {
            backend: db.get_database_backend(),
        }
    }

    fn postgres(&self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// A UUID literal.
    pub(crate) fn uuid(&self, id: Uuid) -> String {
        if self.postgres() {
            format!("'{id}'::uuid")
        } else {
            format!("X'{}'", id.simple())
        }
    }

    fn random_uuid(&self) -> &'static str {
        if self.postgres() {
            "gen_random_uuid()"
        } else {
            "randomblob(16)"
        }
    }

    /// A timestamp literal from `2026-11-01T00:00:00+00:00`-style text.
    fn time(&self, rfc3339: &str) -> String {
        if self.postgres() {
            format!("'{rfc3339}'::timestamptz")
        } else {
            format!("'{rfc3339}'")
        }
    }

    /// `start` plus `(s.i % days)` days, as a timestamp.
    fn day_offset(&self, start: &str, days: u32) -> String {
        if self.postgres() {
            format!("'{start}'::timestamptz + (s.i % {days}) * interval '1 day'")
        } else {
            format!(
                "strftime('%Y-%m-%dT%H:%M:%S+00:00', '{}', '+' || (s.i % {days}) || ' days')",
                &start[..19]
            )
        }
    }

    fn json(&self, json: &str) -> String {
        if self.postgres() {
            format!("'{json}'::jsonb")
        } else {
            format!("'{json}'")
        }
    }

    fn concat(&self, prefix: &str, suffix: &str) -> String {
        format!("'{prefix}' || s.i || '{suffix}'")
    }

    /// `INSERT INTO table (columns) SELECT select FROM <1..=rows>`.
    fn insert_series(&self, table: &str, columns: &str, select: &str, rows: u64) -> String {
        if self.postgres() {
            format!(
                "INSERT INTO {table} ({columns}) SELECT {select} FROM generate_series(1, {rows}) AS s(i)"
            )
        } else {
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows}) \
                 INSERT INTO {table} ({columns}) SELECT {select} FROM s"
            )
        }
    }
}

/// Lifts every quota of every tenant so admission measures the statements, not refusals.
pub(crate) async fn lift_quotas(db: &DatabaseConnection) -> Result<()> {
    db.execute_unprepared(
        "UPDATE tenants SET plan = 'enterprise', max_runs_per_day = 2000000000, \
         max_concurrent_runs = 2000000000, max_tokens_per_month = 4000000000000000, \
         max_api_keys = 1000000, max_workers = 1000000, max_requests_per_minute = NULL, \
         max_members = 2000000000",
    )
    .await?;
    Ok(())
}

/// `count` users, members of `tenant`, emails `member-<i>@bench.test`.
pub(crate) async fn members(db: &DatabaseConnection, tenant: Uuid, count: u64) -> Result<()> {
    let sql = Dialect::of(db);
    let created = sql.time("2026-11-01T00:00:00+00:00");
    db.execute_unprepared(&sql.insert_series(
        "users",
        "id, email, email_verified, status, created_at, updated_at",
        &format!(
            "{}, {}, false, 'active', {created}, {created}",
            sql.random_uuid(),
            sql.concat("member-", "@bench.test"),
        ),
        count,
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO tenant_memberships \
         (id, tenant_id, user_id, role, created_at, updated_at, member_email) \
         SELECT {}, {}, id, 'member', {created}, {created}, email FROM users \
         WHERE email LIKE 'member-%'",
        sql.random_uuid(),
        sql.uuid(tenant),
    ))
    .await?;
    // What the memberships' writes would have kept, had they gone through the driver.
    db.execute_unprepared(&format!(
        "UPDATE tenants SET member_count = member_count + {count} WHERE id = {}",
        sql.uuid(tenant)
    ))
    .await?;
    Ok(())
}

/// `count` usage records of `tenant` spread over November 2026, three meters.
pub(crate) async fn usage(db: &DatabaseConnection, tenant: Uuid, count: u64) -> Result<()> {
    let sql = Dialect::of(db);
    let start = sql.day_offset("2026-11-01T00:00:00+00:00", 28);
    let end = sql.day_offset("2026-11-01T01:00:00+00:00", 28);
    let meter = "CASE s.i % 3 WHEN 0 THEN 'runs' WHEN 1 THEN 'tokens' ELSE 'seconds' END";
    let unit = "CASE s.i % 3 WHEN 0 THEN 'count' WHEN 1 THEN 'tokens' ELSE 'seconds' END";
    db.execute_unprepared(&sql.insert_series(
        "usage_records",
        "id, tenant_id, meter_name, amount, unit, period_start, period_end, recorded_at",
        &format!(
            "{}, {}, {meter}, s.i % 100 + 1, {unit}, {start}, {end}, {start}",
            sql.random_uuid(),
            sql.uuid(tenant),
        ),
        count,
    ))
    .await?;
    // What the records' writes would have kept, had they gone through the driver.
    db.execute_unprepared(&format!(
        "INSERT INTO usage_hourly (tenant_id, meter_name, unit, hour_start, total) \
         SELECT tenant_id, meter_name, unit, period_start, SUM(amount) FROM usage_records \
         WHERE tenant_id = {} GROUP BY tenant_id, meter_name, unit, period_start",
        sql.uuid(tenant)
    ))
    .await?;
    Ok(())
}

/// `count` pins of `tenant` that expired in 2020, keys `expired:<i>`.
pub(crate) async fn expired_pins(db: &DatabaseConnection, tenant: Uuid, count: u64) -> Result<()> {
    let sql = Dialect::of(db);
    let created = sql.time("2019-12-31T00:00:00+00:00");
    let expired = sql.time("2020-01-01T00:00:00+00:00");
    db.execute_unprepared(&sql.insert_series(
        "memory_pins",
        "id, tenant_id, key, value, source, ttl_seconds, expires_at, created_at, updated_at",
        &format!(
            "{}, {}, {}, {}, 'api', 86400, {expired}, {created}, {created}",
            sql.random_uuid(),
            sql.uuid(tenant),
            sql.concat("expired:", ""),
            sql.json(r#"{"v":1}"#),
        ),
        count,
    ))
    .await?;
    Ok(())
}

/// Removes every pin of `tenant` (before reseeding a cleanup run).
pub(crate) async fn remove_pins(db: &DatabaseConnection, tenant: Uuid) -> Result<()> {
    let sql = Dialect::of(db);
    db.execute_unprepared(&format!(
        "DELETE FROM memory_pins WHERE tenant_id = {}",
        sql.uuid(tenant)
    ))
    .await?;
    Ok(())
}

/// Makes `user` a plain member of `tenant` again (between role-change calls).
pub(crate) async fn demote(db: &DatabaseConnection, tenant: Uuid, user: Uuid) -> Result<()> {
    let sql = Dialect::of(db);
    db.execute_unprepared(&format!(
        "UPDATE tenant_memberships SET role = 'member' WHERE tenant_id = {} AND user_id = {}",
        sql.uuid(tenant),
        sql.uuid(user)
    ))
    .await?;
    Ok(())
}

/// Refreshes planner statistics after bulk loads; on PostgreSQL also the visibility map
/// (`VACUUM`), as autovacuum would soon after such a load, so index-only scans read no heap.
pub(crate) async fn analyze(db: &DatabaseConnection) -> Result<()> {
    let sql = if Dialect::of(db).postgres() {
        "VACUUM (ANALYZE)"
    } else {
        "ANALYZE"
    };
    db.execute_unprepared(sql).await?;
    Ok(())
}
