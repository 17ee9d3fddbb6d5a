//! Rows seeded with plain SQL, for tests that must arrange a database without going through
//! the layer under test (a spine test has no driver access). Each helper writes one row
//! exactly as given and panics when the insert fails: a test that cannot set up should fail
//! loudly.

#![allow(clippy::unwrap_used)] // a fixture that cannot insert must fail the test that asked

use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Alias, Expr, Query};
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
/// `member`, `viewer`); returns the membership's id.
pub async fn insert_membership(
    conn: &impl ConnectionTrait,
    tenant: Uuid,
    user: Uuid,
    role: &str,
    at: DateTimeUtc,
) -> Uuid {
    let id = Uuid::now_v7();
    insert_row(
        conn,
        "tenant_memberships",
        vec![
            ("id", id.into()),
            ("tenant_id", tenant.into()),
            ("user_id", user.into()),
            ("role", role.into()),
            ("created_at", at.into()),
            ("updated_at", at.into()),
        ],
    )
    .await;
    id
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
}
