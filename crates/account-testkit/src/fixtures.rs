//! Rows seeded with plain SQL, for tests that must arrange a database without going through
//! the layer under test (a spine test has no driver access). Each helper writes one row
//! exactly as given and panics when the insert fails: a test that cannot set up should fail
//! loudly.

#![allow(clippy::unwrap_used)] // a fixture that cannot insert must fail the test that asked

use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

/// Inserts one row into `table`, one value per named column.
pub async fn insert_row(conn: &impl ConnectionTrait, table: &str, values: Vec<(&str, Value)>) {
    let mut query = Query::insert();
    query
        .into_table(Alias::new(table))
        .columns(values.iter().map(|(column, _)| Alias::new(*column)));
    query
        .values(values.into_iter().map(|(_, value)| Expr::val(value)))
        .unwrap();
    conn.execute(&query).await.unwrap();
}

/// How many rows of `table` match `filter`, an SQL condition the test wrote (never input):
/// for tests that reach the database only through an API or another process and must see
/// what was stored.
pub async fn count_rows(conn: &impl ConnectionTrait, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let statement = sea_orm::Statement::from_string(conn.get_database_backend(), sql);
    let row = conn.query_one_raw(statement).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// An active tenant as a fixture writes it: every column a test chooses, nothing defaulted.
#[derive(Clone, Debug)]
pub struct TenantRow<'a> {
    /// The tenant's id.
    pub id: Uuid,
    /// Display name.
    pub name: &'a str,
    /// Unique slug.
    pub slug: &'a str,
    /// Plan name as stored (`free`, `pro`, `enterprise`).
    pub plan: &'a str,
    /// Quota: workers.
    pub max_workers: i32,
    /// Quota: runs a day.
    pub max_runs_per_day: i32,
    /// Quota: runs at once.
    pub max_concurrent_runs: i32,
    /// Quota: tokens a month.
    pub max_tokens_per_month: i64,
    /// Quota: API keys.
    pub max_api_keys: i32,
    /// `created_at` and `updated_at`.
    pub at: DateTimeUtc,
}

/// Inserts an `active` tenant.
pub async fn insert_tenant(conn: &impl ConnectionTrait, tenant: &TenantRow<'_>) {
    insert_row(
        conn,
        "tenants",
        vec![
            ("id", tenant.id.into()),
            ("name", tenant.name.into()),
            ("slug", tenant.slug.into()),
            ("plan", tenant.plan.into()),
            ("max_workers", tenant.max_workers.into()),
            ("max_runs_per_day", tenant.max_runs_per_day.into()),
            ("max_concurrent_runs", tenant.max_concurrent_runs.into()),
            ("max_tokens_per_month", tenant.max_tokens_per_month.into()),
            ("max_api_keys", tenant.max_api_keys.into()),
            ("status", "active".into()),
            ("created_at", tenant.at.into()),
            ("updated_at", tenant.at.into()),
        ],
    )
    .await;
}

/// Inserts an `active` user created (and last updated) `at`.
pub async fn insert_user(conn: &impl ConnectionTrait, id: Uuid, email: &str, at: DateTimeUtc) {
    insert_row(
        conn,
        "users",
        vec![
            ("id", id.into()),
            ("email", email.into()),
            ("status", "active".into()),
            ("created_at", at.into()),
            ("updated_at", at.into()),
        ],
    )
    .await;
}

/// Inserts `user`'s membership of `tenant` with `role` as stored (`owner`, `admin`,
/// `member`, `viewer`); returns the membership's id. As the drivers do, the row carries the
/// user's email (`member_email`) and the tenant's membership total counts it.
pub async fn insert_membership(
    conn: &impl ConnectionTrait,
    tenant: Uuid,
    user: Uuid,
    role: &str,
    at: DateTimeUtc,
) -> Uuid {
    let id = Uuid::now_v7();
    let email = Query::select()
        .column(Alias::new("email"))
        .from(Alias::new("users"))
        .and_where(Expr::col(Alias::new("id")).eq(user))
        .to_owned();
    let mut query = Query::insert();
    query
        .into_table(Alias::new("tenant_memberships"))
        .columns(
            [
                "id",
                "tenant_id",
                "user_id",
                "role",
                "created_at",
                "updated_at",
                "member_email",
            ]
            .map(Alias::new),
        )
        .values([
            Expr::val(id),
            Expr::val(tenant),
            Expr::val(user),
            Expr::val(role),
            Expr::val(at),
            Expr::val(at),
            Expr::SubQuery(None, Box::new(email.into())),
        ])
        .unwrap();
    conn.execute(&query).await.unwrap();
    let total = Query::update()
        .table(Alias::new("tenants"))
        .value(
            Alias::new("member_count"),
            Expr::col(Alias::new("member_count")).add(1_i64),
        )
        .and_where(Expr::col(Alias::new("id")).eq(tenant))
        .to_owned();
    conn.execute(&total).await.unwrap();
    id
}

/// The quotas of a seeded tenant, as stored.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Workers.
    pub workers: i32,
    /// Runs a day.
    pub runs_per_day: i32,
    /// Runs at once.
    pub concurrent_runs: i32,
    /// Tokens a month.
    pub tokens_per_month: i64,
    /// API keys.
    pub api_keys: i32,
}

/// A tenant and its users as a test wants them, for [`seed_tenant`]: the one way tests seed
/// a tenant with plain SQL. What differs between tests is data here (name, plan, limits,
/// users and their roles), never another seeder.
#[derive(Clone, Debug)]
pub struct TenantSeed<'a> {
    /// Display name; the slug is its lower case.
    pub name: &'a str,
    /// Plan name as stored (`free`, `pro`, `enterprise`).
    pub plan: &'a str,
    /// Quotas.
    pub limits: Limits,
    /// The users to create, in order: the local part of each email, and the role of their
    /// membership of the tenant (`None`: an account with no membership).
    pub users: Vec<(String, Option<&'a str>)>,
    /// Whether the slug and the emails carry the tenant's id (`acme-<id>`,
    /// `owner-<id>@example.com`), so many seeded tenants can share one database.
    pub tagged: bool,
    /// `created_at` and `updated_at` of every row.
    pub at: DateTimeUtc,
}

impl<'a> TenantSeed<'a> {
    /// A tenant without users, its slug untagged.
    pub fn new(name: &'a str, plan: &'a str, limits: Limits, at: DateTimeUtc) -> Self {
        Self {
            name,
            plan,
            limits,
            users: Vec::new(),
            tagged: false,
            at,
        }
    }

    /// Adds a user `local@example.com` with a membership of `role` (`None`: none).
    pub fn user(mut self, local: impl Into<String>, role: Option<&'a str>) -> Self {
        self.users.push((local.into(), role));
        self
    }

    /// Adds `n` owners, `owner0`, `owner1`, ...
    pub fn owners(mut self, n: usize) -> Self {
        for i in 0..n {
            self.users.push((format!("owner{i}"), Some("owner")));
        }
        self
    }

    /// Tags the slug and the emails with the tenant's id (see [`TenantSeed::tagged`]).
    pub fn tagged(mut self) -> Self {
        self.tagged = true;
        self
    }
}

/// What [`seed_tenant`] wrote: the tenant's id and its users' ids, in the seed's order.
#[derive(Clone, Debug)]
pub struct SeededTenant {
    /// The tenant.
    pub id: Uuid,
    /// Its users, in [`TenantSeed::users`] order.
    pub users: Vec<Uuid>,
}

/// Inserts an `active` tenant as `seed` describes it, then each user (and their membership).
pub async fn seed_tenant(conn: &impl ConnectionTrait, seed: &TenantSeed<'_>) -> SeededTenant {
    let id = Uuid::now_v7();
    let tag = |text: &str| {
        if seed.tagged {
            format!("{text}-{}", id.simple())
        } else {
            text.to_owned()
        }
    };
    let slug = tag(&seed.name.to_lowercase());
    insert_tenant(
        conn,
        &TenantRow {
            id,
            name: seed.name,
            slug: &slug,
            plan: seed.plan,
            max_workers: seed.limits.workers,
            max_runs_per_day: seed.limits.runs_per_day,
            max_concurrent_runs: seed.limits.concurrent_runs,
            max_tokens_per_month: seed.limits.tokens_per_month,
            max_api_keys: seed.limits.api_keys,
            at: seed.at,
        },
    )
    .await;
    let mut users = Vec::new();
    for (local, role) in &seed.users {
        let user = Uuid::now_v7();
        insert_user(conn, user, &format!("{}@example.com", tag(local)), seed.at).await;
        if let Some(role) = role {
            insert_membership(conn, id, user, role, seed.at).await;
        }
        users.push(user);
    }
    SeededTenant { id, users }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{backends, fresh_db};
    use sea_orm::sea_query::ExprTrait;
    use sea_orm::{DatabaseConnection, Statement};

    async fn text(conn: &DatabaseConnection, sql: &str) -> String {
        let row = conn
            .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "t").unwrap()
    }

    /// Every column a fixture is given lands in its row, on every backend.
    #[tokio::test]
    async fn fixtures_write_the_rows_they_are_given() {
        for backend in backends().unwrap() {
            let db = fresh_db(&backend).await.unwrap();
            let conn = db.conn();
            let at = DateTimeUtc::from_timestamp(1_764_064_800, 0).unwrap();
            let (tenant, user) = (Uuid::now_v7(), Uuid::now_v7());
            insert_tenant(
                conn,
                &TenantRow {
                    id: tenant,
                    name: "Acme",
                    slug: "acme",
                    plan: "pro",
                    max_workers: 1,
                    max_runs_per_day: 2,
                    max_concurrent_runs: 3,
                    max_tokens_per_month: 4_000_000_000,
                    max_api_keys: 5,
                    at,
                },
            )
            .await;
            insert_user(conn, user, "ann@example.com", at).await;
            let membership = insert_membership(conn, tenant, user, "admin", at).await;
            assert_eq!(
                text(
                    conn,
                    "SELECT name || '/' || slug || '/' || plan || '/' || status || '/' || \
                     CAST(max_workers AS TEXT) || '/' || CAST(max_runs_per_day AS TEXT) || '/' || \
                     CAST(max_concurrent_runs AS TEXT) || '/' || \
                     CAST(max_tokens_per_month AS TEXT) || '/' || CAST(max_api_keys AS TEXT) \
                     AS t FROM tenants",
                )
                .await,
                "Acme/acme/pro/active/1/2/3/4000000000/5",
                "{}: tenant row",
                backend.name()
            );
            assert_eq!(
                text(conn, "SELECT email || '/' || status AS t FROM users").await,
                "ann@example.com/active",
                "{}: user row",
                backend.name()
            );
            let memberships = Query::select()
                .expr(Expr::col(Alias::new("id")).count())
                .from(Alias::new("tenant_memberships"))
                .and_where(Expr::col(Alias::new("id")).eq(membership))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("user_id")).eq(user))
                .and_where(Expr::col(Alias::new("role")).eq("admin"))
                .to_owned();
            let row = conn.query_one(&memberships).await.unwrap().unwrap();
            assert_eq!(
                row.try_get_by_index::<i64>(0).unwrap(),
                1,
                "{}: membership row",
                backend.name()
            );
        }
    }
    /// A seed's slug and emails carry the tenant's id when tagged, and users without a role
    /// get no membership.
    #[tokio::test]
    async fn a_tenant_seed_writes_its_tenant_users_and_memberships() {
        for backend in backends().unwrap() {
            let db = fresh_db(&backend).await.unwrap();
            let conn = db.conn();
            let at = DateTimeUtc::from_timestamp(1_764_064_800, 0).unwrap();
            let limits = Limits {
                workers: 1,
                runs_per_day: 2,
                concurrent_runs: 3,
                tokens_per_month: 4,
                api_keys: 5,
            };
            let seed = TenantSeed::new("Race", "enterprise", limits, at)
                .owners(2)
                .user("guest", None)
                .tagged();
            let seeded = seed_tenant(conn, &seed).await;
            assert_eq!(seeded.users.len(), 3, "{}", backend.name());
            let tag = seeded.id.simple();
            assert_eq!(
                text(conn, "SELECT slug AS t FROM tenants").await,
                format!("race-{tag}")
            );
            assert_eq!(
                text(
                    conn,
                    "SELECT CAST(COUNT(*) AS TEXT) AS t FROM tenant_memberships"
                )
                .await,
                "2"
            );
            assert_eq!(
                text(conn, "SELECT MAX(email) AS t FROM users").await,
                format!("owner1-{tag}@example.com")
            );
        }
    }
}
