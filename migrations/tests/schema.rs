//! The schema on every backend: migrations go up, down and up again; named constraints and
//! guards refuse what they must.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_migrations::{Migrator, MigratorTrait};
use account_testkit::{TestDb, backends, empty_db, fresh_db};
use sea_orm_migration::sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use sea_orm_migration::sea_query::{Query, SimpleExpr};

const NOW: &str = "2026-11-25T10:00:00+00:00";

async fn insert(
    db: &TestDb,
    table: &'static str,
    columns: &[&'static str],
    values: Vec<Value>,
) -> Result<(), DbErr> {
    let mut query = Query::insert();
    query.into_table(table).columns(columns.iter().copied());
    query
        .values(values.into_iter().map(SimpleExpr::Value))
        .expect("as many values as columns");
    db.conn().execute(&query).await.map(|_| ())
}

fn uuid() -> Value {
    Value::from(uuid::Uuid::now_v7())
}

fn now() -> Value {
    Value::from(chrono::DateTime::parse_from_rfc3339(NOW).unwrap().to_utc())
}

async fn insert_tenant(db: &TestDb, id: Value, slug: &str) -> Result<(), DbErr> {
    insert(
        db,
        "tenants",
        &[
            "id",
            "name",
            "slug",
            "plan",
            "max_workers",
            "max_runs_per_day",
            "max_concurrent_runs",
            "max_tokens_per_month",
            "max_api_keys",
            "status",
            "created_at",
            "updated_at",
        ],
        vec![
            id,
            "T".into(),
            slug.into(),
            "free".into(),
            3.into(),
            100.into(),
            5.into(),
            1_000_000i64.into(),
            5.into(),
            "active".into(),
            now(),
            now(),
        ],
    )
    .await
}

async fn insert_user(db: &TestDb, id: Value, email: &str) {
    insert(
        db,
        "users",
        &["id", "email", "status", "created_at", "updated_at"],
        vec![id, email.into(), "active".into(), now(), now()],
    )
    .await
    .expect("user inserted");
}

async fn insert_invitation(
    db: &TestDb,
    tenant: Value,
    inviter: Value,
    email: &str,
    status: &str,
) -> Result<(), DbErr> {
    insert(
        db,
        "invitations",
        &[
            "id",
            "tenant_id",
            "email",
            "role",
            "status",
            "token_digest",
            "invited_by",
            "created_at",
            "expires_at",
            "updated_at",
        ],
        vec![
            uuid(),
            tenant,
            email.into(),
            "member".into(),
            status.into(),
            uuid::Uuid::now_v7().simple().to_string().into(),
            inviter,
            now(),
            now(),
            now(),
        ],
    )
    .await
}

fn error_text(error: &DbErr) -> String {
    format!("{error} {error:?}")
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    for backend in backends().expect("backends") {
        let db = empty_db(&backend).await.expect("database");
        Migrator::up(db.conn(), None).await.expect("first up");
        let applied = Migrator::get_applied_migrations(db.conn())
            .await
            .expect("status")
            .len();
        assert_eq!(applied, Migrator::migrations().len(), "{}", backend.name());
        Migrator::down(db.conn(), None).await.expect("down");
        assert!(
            Migrator::get_applied_migrations(db.conn())
                .await
                .expect("status")
                .is_empty()
        );
        Migrator::up(db.conn(), None).await.expect("second up");
    }
}

#[tokio::test]
async fn a_duplicate_slug_names_its_constraint() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        insert_tenant(&db, uuid(), "acme")
            .await
            .expect("first tenant");
        let error = insert_tenant(&db, uuid(), "acme")
            .await
            .expect_err("duplicate refused");
        let text = error_text(&error);
        let named = text.contains("uq_tenants_slug") || text.contains("tenants.slug");
        assert!(named, "{}: {text}", backend.name());
    }
}

#[tokio::test]
async fn check_constraints_refuse_unknown_enum_values() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let error = insert(
            &db,
            "tenants",
            &[
                "id",
                "name",
                "slug",
                "plan",
                "max_workers",
                "max_runs_per_day",
                "max_concurrent_runs",
                "max_tokens_per_month",
                "max_api_keys",
                "status",
                "created_at",
                "updated_at",
            ],
            vec![
                uuid(),
                "T".into(),
                "t".into(),
                "platinum".into(),
                3.into(),
                100.into(),
                5.into(),
                1i64.into(),
                5.into(),
                "active".into(),
                now(),
                now(),
            ],
        )
        .await
        .expect_err("unknown plan refused");
        assert!(
            error_text(&error).contains("ck_tenants_plan"),
            "{}: {error}",
            backend.name()
        );
    }
}

#[tokio::test]
async fn one_pending_invitation_per_tenant_and_address_in_any_case() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let tenant = uuid::Uuid::now_v7();
        let other_tenant = uuid::Uuid::now_v7();
        let inviter = uuid::Uuid::now_v7();
        insert_tenant(&db, tenant.into(), "a")
            .await
            .expect("tenant");
        insert_tenant(&db, other_tenant.into(), "b")
            .await
            .expect("tenant");
        insert_user(&db, inviter.into(), "owner@example.com").await;

        insert_invitation(
            &db,
            tenant.into(),
            inviter.into(),
            "ann@example.com",
            "pending",
        )
        .await
        .expect("first");
        let error = insert_invitation(
            &db,
            tenant.into(),
            inviter.into(),
            "ANN@example.com",
            "pending",
        )
        .await
        .expect_err("second pending refused");
        assert!(
            error_text(&error).contains("uq_invitations_pending_email"),
            "{}: {error}",
            backend.name()
        );

        // Another tenant, or a finished invitation, does not collide.
        insert_invitation(
            &db,
            other_tenant.into(),
            inviter.into(),
            "ann@example.com",
            "pending",
        )
        .await
        .expect("other tenant");
        insert_invitation(
            &db,
            tenant.into(),
            inviter.into(),
            "ann@example.com",
            "revoked",
        )
        .await
        .expect("revoked one");
    }
}

#[tokio::test]
async fn a_finished_run_cannot_be_rewritten() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let tenant = uuid::Uuid::now_v7();
        insert_tenant(&db, tenant.into(), "runs")
            .await
            .expect("tenant");
        let run = uuid::Uuid::now_v7();
        insert(
            &db,
            "worker_runs",
            &[
                "id",
                "tenant_id",
                "worker_id",
                "task",
                "status",
                "created_at",
            ],
            vec![
                run.into(),
                tenant.into(),
                "w".into(),
                "t".into(),
                "running".into(),
                now(),
            ],
        )
        .await
        .expect("run");
        let backend_kind = db.conn().get_database_backend();
        let update =
            |sql: &str| Statement::from_sql_and_values(backend_kind, sql, [Value::from(run)]);
        let placeholder = if backend.name() == "postgres" {
            "$1"
        } else {
            "?"
        };
        db.conn()
            .execute_raw(update(&format!("UPDATE worker_runs SET status = 'completed', total_tokens = 5 WHERE id = {placeholder}")))
            .await
            .expect("a running run may finish");
        let error = db
            .conn()
            .execute_raw(update(&format!(
                "UPDATE worker_runs SET total_tokens = 50 WHERE id = {placeholder}"
            )))
            .await
            .expect_err("a finished run is frozen");
        assert!(
            error_text(&error).contains("tg_worker_runs_immutable"),
            "{}: {error}",
            backend.name()
        );
    }
}
