//! The schema on every backend: migrations go up, down and up again; every constraint, index
//! and trigger is named by the scheme; the unique indexes are exactly the documented ones and
//! include `tenant_id` on tenant-owned tables; named constraints and guards refuse what they
//! must.
//!
//! Over 600 lines on purpose: one binary for the whole schema (link time on 2 cores); each
//! constraint and guard is one short probe over the shared migrated databases.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_migrations::{Migrator, MigratorTrait};
use account_testkit::{TestDb, backends, empty_db, fresh_db};
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr, RuntimeErr, Statement, Value};
use sea_orm_migration::sea_query::{Query, SimpleExpr};
use std::collections::BTreeSet;

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
    db.direct_conn().execute(&query).await.map(|_| ())
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

/// What the database itself said: (SQLSTATE or SQLite code, constraint name, message).
fn database_report(error: &DbErr) -> Option<(String, Option<String>, String)> {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) =
        error
    else {
        return None;
    };
    let db = sqlx.as_database_error()?;
    Some((
        db.code().map(|c| c.into_owned()).unwrap_or_default(),
        db.constraint().map(str::to_owned),
        db.message().to_owned(),
    ))
}

async fn strings(db: &TestDb, sql: &str) -> Vec<Vec<String>> {
    let conn = db.direct_conn();
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|row| {
            (0..)
                .map_while(|i| row.try_get_by_index::<Option<String>>(i).ok())
                .map(Option::unwrap_or_default)
                .collect()
        })
        .collect()
}

/// The application's tables (not the migration bookkeeping).
async fn tables(db: &TestDb) -> Vec<String> {
    let sql = match db.direct_conn().get_database_backend() {
        DbBackend::Postgres => {
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename <> 'account_migrations' ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> 'account_migrations' ORDER BY 1"
        }
    };
    strings(db, sql)
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// A named object of the schema: (kind, name, table).
type Named = (&'static str, String, String);

/// Every constraint, index and trigger with the table it belongs to. Primary keys keep the
/// backend's own names (`<table>_pkey`, `sqlite_autoindex_<table>_1`) and are left out. SQLite
/// does not keep foreign-key names, so there they are not listed either.
async fn named_objects(db: &TestDb) -> Vec<Named> {
    let mut named = Vec::new();
    match db.direct_conn().get_database_backend() {
        DbBackend::Postgres => {
            for row in strings(
                db,
                "SELECT contype::text, conname::text, conrelid::regclass::text FROM pg_constraint \
                 WHERE connamespace = current_schema()::regnamespace AND contype <> 'p'",
            )
            .await
            {
                let kind = match row[0].as_str() {
                    "c" => "check",
                    "f" => "foreign key",
                    "u" => "unique",
                    _ => "other constraint",
                };
                named.push((kind, row[1].clone(), row[2].clone()));
            }
            for row in strings(
                db,
                "SELECT indexname::text, tablename::text FROM pg_indexes \
                 WHERE schemaname = current_schema() AND indexname NOT LIKE '%\\_pkey'",
            )
            .await
            {
                named.push(("index", row[0].clone(), row[1].clone()));
            }
            for row in strings(
                db,
                "SELECT tgname::text, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal",
            )
            .await
            {
                named.push(("trigger", row[0].clone(), row[1].clone()));
            }
        }
        _ => {
            for row in strings(
                db,
                "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master \
                 WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> 'account_migrations'",
            )
            .await
            {
                match row[0].as_str() {
                    "index" => named.push(("index", row[1].clone(), row[2].clone())),
                    "trigger" => named.push(("trigger", row[1].clone(), row[2].clone())),
                    "table" => {
                        // CHECK constraints live in the table's SQL: every one must be named.
                        let sql = &row[3];
                        let checks = sql.matches(" CHECK (").count();
                        let names: Vec<&str> = sql
                            .split("CONSTRAINT \"")
                            .skip(1)
                            .filter_map(|rest| rest.split('"').next())
                            .collect();
                        assert_eq!(checks, names.len(), "unnamed CHECK in {}: {sql}", row[1]);
                        for name in names {
                            named.push(("check", name.to_owned(), row[2].clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    named
}

/// A unique index as the backend describes it: its name, table, and columns (`None` for an
/// expression).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct UniqueIndex {
    name: String,
    table: String,
    columns: Vec<Option<String>>,
}

async fn unique_indexes(db: &TestDb) -> BTreeSet<UniqueIndex> {
    let mut found = BTreeSet::new();
    match db.direct_conn().get_database_backend() {
        DbBackend::Postgres => {
            // One row per key column, in key order; expressions have attnum 0.
            let rows = strings(
                db,
                "SELECT i.relname::text, t.relname::text, k.n::text, a.attname::text \
                 FROM pg_index x \
                 JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_class t ON t.oid = x.indrelid \
                 CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                 WHERE x.indisunique AND NOT x.indisprimary \
                   AND t.relnamespace = current_schema()::regnamespace \
                 ORDER BY 1, k.n",
            )
            .await;
            let mut current: Option<UniqueIndex> = None;
            for row in rows {
                if current.as_ref().is_none_or(|c| c.name != row[0]) {
                    found.extend(current.take());
                    current = Some(UniqueIndex {
                        name: row[0].clone(),
                        table: row[1].clone(),
                        columns: Vec::new(),
                    });
                }
                if let Some(index) = current.as_mut() {
                    index
                        .columns
                        .push(Some(row[3].clone()).filter(|c| !c.is_empty()));
                }
            }
            found.extend(current);
        }
        _ => {
            for table in tables(db).await {
                let list = strings(
                    db,
                    &format!(
                        "SELECT name, origin FROM pragma_index_list('{table}') WHERE \"unique\" = 1"
                    ),
                )
                .await;
                for index in list {
                    if index[1] == "pk" {
                        continue;
                    }
                    let columns = strings(
                        db,
                        &format!(
                            "SELECT name FROM pragma_index_info('{}') ORDER BY seqno",
                            index[0]
                        ),
                    )
                    .await
                    .into_iter()
                    .map(|r| Some(r[0].clone()).filter(|c| !c.is_empty()))
                    .collect();
                    found.insert(UniqueIndex {
                        name: index[0].clone(),
                        table: table.clone(),
                        columns,
                    });
                }
            }
        }
    }
    found
}

/// Every unique index, and what SQLite prints when it is violated: the `table.column` list
/// (`UNIQUE constraint failed: tenants.slug`) or, for an expression index, `index 'name'`.
/// The drivers' `SQLITE_UNIQUE_COLUMNS` must map each column list here back to its name.
const UNIQUE_INDEXES: &[(&str, &str, &str)] = &[
    ("uq_tenants_slug", "tenants", "tenants.slug"),
    (
        "uq_tenants_external_org_id",
        "tenants",
        "tenants.external_org_id",
    ),
    ("uq_users_email", "users", "users.email"),
    (
        "uq_users_external_user_id",
        "users",
        "users.external_user_id",
    ),
    (
        "uq_tenant_memberships_tenant_id_user_id",
        "tenant_memberships",
        "tenant_memberships.tenant_id, tenant_memberships.user_id",
    ),
    ("uq_api_keys_key_digest", "api_keys", "api_keys.key_digest"),
    (
        "uq_operator_keys_key_digest",
        "operator_keys",
        "operator_keys.key_digest",
    ),
    (
        "uq_identity_links_issuer_subject",
        "identity_links",
        "identity_links.issuer, identity_links.subject",
    ),
    (
        "uq_usage_records_tenant_id_idempotency_key",
        "usage_records",
        "usage_records.tenant_id, usage_records.idempotency_key",
    ),
    (
        "uq_subscriptions_tenant_id_external_id",
        "subscriptions",
        "subscriptions.tenant_id, subscriptions.external_id",
    ),
    (
        "uq_invoices_tenant_id_external_id",
        "invoices",
        "invoices.tenant_id, invoices.external_id",
    ),
    (
        "uq_invitations_tenant_id_token_digest",
        "invitations",
        "invitations.tenant_id, invitations.token_digest",
    ),
    (
        "uq_invitations_pending_email",
        "invitations",
        "index 'uq_invitations_pending_email'",
    ),
    (
        "uq_memory_pins_tenant_id_key",
        "memory_pins",
        "memory_pins.tenant_id, memory_pins.key",
    ),
    (
        "uq_sdk_attestations_tenant_id_attestation_hash",
        "sdk_attestations",
        "sdk_attestations.tenant_id, sdk_attestations.attestation_hash",
    ),
];

/// Unique indexes on tenant-owned tables that cannot include `tenant_id`, and why (see
/// ARCHITECTURE.md, "Schema and distribution").
const GLOBAL_UNIQUE_ON_TENANT_TABLES: &[(&str, &str)] = &[(
    "uq_api_keys_key_digest",
    "a request presents only its key: the digest must find the key before any tenant is known",
)];

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    for backend in backends().expect("backends") {
        let db = empty_db(&backend).await.expect("database");
        Migrator::up(db.direct_conn(), None)
            .await
            .expect("first up");
        let applied = Migrator::get_applied_migrations(db.direct_conn())
            .await
            .expect("status")
            .len();
        assert_eq!(applied, Migrator::migrations().len(), "{}", backend.name());
        let created = tables(&db).await;
        assert_eq!(created.len(), 31, "{}: {created:?}", backend.name());
        Migrator::down(db.direct_conn(), None).await.expect("down");
        assert!(
            Migrator::get_applied_migrations(db.direct_conn())
                .await
                .expect("status")
                .is_empty()
        );
        // `down` removes everything `up` made: tables (with their indexes), triggers and the
        // PostgreSQL guard function.
        assert_eq!(
            tables(&db).await,
            Vec::<String>::new(),
            "{}",
            backend.name()
        );
        assert_eq!(
            named_objects(&db).await,
            Vec::<Named>::new(),
            "{}",
            backend.name()
        );
        if backend.name() == "postgres" {
            let functions = strings(
                &db,
                "SELECT proname::text FROM pg_proc WHERE pronamespace = current_schema()::regnamespace",
            )
            .await;
            assert!(functions.is_empty(), "{functions:?}");
        }
        Migrator::up(db.direct_conn(), None)
            .await
            .expect("second up");
        assert_eq!(tables(&db).await, created, "{}", backend.name());
    }
}

#[tokio::test]
async fn every_constraint_index_and_trigger_is_named_by_the_scheme() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let named = named_objects(&db).await;
        let mut bad = Vec::new();
        for (kind, name, table) in &named {
            let prefix = match *kind {
                "check" => "ck",
                "foreign key" => "fk",
                "trigger" => "tg",
                "index" if name.starts_with("uq_") => "uq",
                "index" => "ix",
                _ => "??",
            };
            let expected = format!("{prefix}_{table}_");
            let rest = name.strip_prefix(&expected).unwrap_or_default();
            let well_formed = !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !well_formed {
                bad.push(format!(
                    "{kind} {name} on {table}: expected {expected}<what>"
                ));
            }
        }
        assert!(bad.is_empty(), "{}:\n{}", backend.name(), bad.join("\n"));
        // Names are unique across the schema, so a name alone identifies the constraint.
        let names: BTreeSet<&str> = named.iter().map(|(_, name, _)| name.as_str()).collect();
        assert_eq!(names.len(), named.len(), "{}", backend.name());
        assert!(names.contains("tg_worker_runs_immutable"));
        assert!(names.contains("tg_audit_log_append_only"));
        assert!(names.contains("ix_audit_log_tenant_id_created_at_id"));
        assert!(
            !names.contains("ix_audit_log_tenant_id_created_at"),
            "superseded"
        );
        assert!(names.contains("ck_tenants_status"));
        // Plans are data since migration 37: the code is checked against `plans`, not a list.
        assert!(!names.contains("ck_tenants_plan"), "{}", backend.name());
        assert!(!names.contains("ck_subscriptions_plan"));
        if backend.name() == "postgres" {
            assert!(names.contains("fk_tenant_memberships_tenant_id"));
            assert!(names.contains("tg_audit_log_no_truncate"));
        }
    }
}

#[tokio::test]
async fn unique_indexes_are_exactly_the_documented_ones() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let expected: BTreeSet<UniqueIndex> = UNIQUE_INDEXES
            .iter()
            .map(|(name, table, report)| UniqueIndex {
                name: (*name).to_owned(),
                table: (*table).to_owned(),
                columns: match report.strip_prefix("index ") {
                    // The expression index: tenant_id, then lower(email).
                    Some(_) => vec![Some("tenant_id".to_owned()), None],
                    None => report
                        .split(", ")
                        .map(|c| c.split_once('.').map(|(_, column)| column.to_owned()))
                        .collect(),
                },
            })
            .collect();
        assert_eq!(unique_indexes(&db).await, expected, "{}", backend.name());
    }
}

#[tokio::test]
async fn unique_indexes_on_tenant_owned_tables_include_tenant_id() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let mut tenant_owned = BTreeSet::new();
        for table in tables(&db).await {
            let sql = match db.direct_conn().get_database_backend() {
                DbBackend::Postgres => format!(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = '{table}' \
                     AND column_name = 'tenant_id'"
                ),
                _ => format!(
                    "SELECT name FROM pragma_table_info('{table}') WHERE name = 'tenant_id'"
                ),
            };
            if !strings(&db, &sql).await.is_empty() {
                tenant_owned.insert(table);
            }
        }
        assert_eq!(tenant_owned.len(), 24, "{tenant_owned:?}");
        for index in unique_indexes(&db).await {
            let global = GLOBAL_UNIQUE_ON_TENANT_TABLES
                .iter()
                .any(|(name, _)| *name == index.name);
            let scoped = index.columns.first() == Some(&Some("tenant_id".to_owned()));
            if tenant_owned.contains(&index.table) {
                assert!(
                    scoped || global,
                    "{}: {} on {} must lead with tenant_id",
                    backend.name(),
                    index.name,
                    index.table
                );
                assert!(!(scoped && global), "{} is listed as global", index.name);
            }
        }
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
        let (_, constraint, message) = database_report(&error).expect("a database error");
        // PostgreSQL names the constraint; SQLite names its columns.
        match backend.name() {
            "postgres" => assert_eq!(constraint.as_deref(), Some("uq_tenants_slug")),
            _ => assert_eq!(message, "UNIQUE constraint failed: tenants.slug"),
        }
    }
}

#[tokio::test]
async fn sqlite_reports_a_composite_unique_violation_by_its_column_list() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let tenant = uuid::Uuid::now_v7();
        insert_tenant(&db, tenant.into(), "pins")
            .await
            .expect("tenant");
        let pin = |id: Value| {
            vec![
                id,
                tenant.into(),
                "agent:config".into(),
                Value::from(serde_json::json!({})),
                "api".into(),
                now(),
                now(),
            ]
        };
        let columns = &[
            "id",
            "tenant_id",
            "key",
            "value",
            "source",
            "created_at",
            "updated_at",
        ];
        insert(&db, "memory_pins", columns, pin(uuid()))
            .await
            .expect("first pin");
        let error = insert(&db, "memory_pins", columns, pin(uuid()))
            .await
            .expect_err("same key twice");
        let (_, constraint, message) = database_report(&error).expect("a database error");
        match backend.name() {
            "postgres" => assert_eq!(constraint.as_deref(), Some("uq_memory_pins_tenant_id_key")),
            _ => assert_eq!(
                message,
                "UNIQUE constraint failed: memory_pins.tenant_id, memory_pins.key"
            ),
        }
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
                "free".into(),
                3.into(),
                100.into(),
                5.into(),
                1i64.into(),
                5.into(),
                "churned".into(),
                now(),
                now(),
            ],
        )
        .await
        .expect_err("unknown status refused");
        assert!(
            error_text(&error).contains("ck_tenants_status"),
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

async fn insert_run(db: &TestDb, tenant: uuid::Uuid, status: &str) -> uuid::Uuid {
    let run = uuid::Uuid::now_v7();
    insert(
        db,
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
            status.into(),
            now(),
        ],
    )
    .await
    .expect("run");
    run
}

async fn update_run(db: &TestDb, run: uuid::Uuid, set: &str) -> Result<(), DbErr> {
    let backend = db.direct_conn().get_database_backend();
    let placeholder = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    db.direct_conn()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!("UPDATE worker_runs SET {set} WHERE id = {placeholder}"),
            [Value::from(run)],
        ))
        .await
        .map(|_| ())
}

/// The guard's token: SQLite's message starts with it; PostgreSQL reports it as the
/// constraint name too (SQLSTATE 23001, restrict_violation).
const IMMUTABLE_RUN: &str = "tg_worker_runs_immutable";

fn assert_refused_by_the_guard(backend: &str, error: &DbErr) {
    let (code, constraint, message) = database_report(error).expect("a database error");
    assert!(message.starts_with(IMMUTABLE_RUN), "{backend}: {message}");
    if backend == "postgres" {
        assert_eq!(code, "23001");
        assert_eq!(constraint.as_deref(), Some(IMMUTABLE_RUN));
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

        // Unfinished runs move freely, and may finish.
        let run = insert_run(&db, tenant, "queued").await;
        update_run(&db, run, "status = 'running'")
            .await
            .expect("start");
        update_run(
            &db,
            run,
            "status = 'completed', success = TRUE, total_tokens = 5",
        )
        .await
        .expect("a running run may finish");
        // A crashed run (its lease expired) is finished too.
        let crashed = insert_run(&db, tenant, "crashed").await;
        let error = update_run(&db, crashed, "status = 'running'")
            .await
            .expect_err("a crashed run is frozen");
        assert_refused_by_the_guard(backend.name(), &error);

        // Finished runs refuse every change, status included; writing the same values again
        // changes nothing and passes.
        update_run(&db, run, "total_tokens = 5")
            .await
            .expect("a no-op update");
        for set in [
            "total_tokens = 50",
            "status = 'running'",
            "error = 'late'",
            "success = FALSE",
            "task = 'other'",
        ] {
            let error = update_run(&db, run, set)
                .await
                .expect_err("a completed run is frozen");
            assert_refused_by_the_guard(backend.name(), &error);
        }
        let failed = insert_run(&db, tenant, "failed").await;
        let error = update_run(&db, failed, "status = 'queued'")
            .await
            .expect_err("a failed run is frozen");
        assert_refused_by_the_guard(backend.name(), &error);

        // Retries are new rows pointing at the finished one.
        let retry = insert_run(&db, tenant, "queued").await;
        let kind = db.direct_conn().get_database_backend();
        let sql = if kind == DbBackend::Postgres {
            "UPDATE worker_runs SET attempt = 2, parent_run_id = $1 WHERE id = $2"
        } else {
            "UPDATE worker_runs SET attempt = 2, parent_run_id = ? WHERE id = ?"
        };
        db.direct_conn()
            .execute_raw(Statement::from_sql_and_values(
                kind,
                sql,
                [Value::from(failed), Value::from(retry)],
            ))
            .await
            .expect("a retry links to its parent");
    }
}

async fn insert_key(db: &TestDb, tenant: uuid::Uuid, user: uuid::Uuid) -> uuid::Uuid {
    let key = uuid::Uuid::now_v7();
    insert(
        db,
        "api_keys",
        &[
            "id",
            "tenant_id",
            "user_id",
            "name",
            "key_prefix",
            "key_digest",
            "permissions",
            "status",
            "created_at",
        ],
        vec![
            key.into(),
            tenant.into(),
            user.into(),
            "k".into(),
            "ak_live_0123456789ab".into(),
            key.simple().to_string().into(),
            Value::from(serde_json::json!(["run:*"])),
            "active".into(),
            now(),
        ],
    )
    .await
    .expect("key");
    key
}

/// Runs `sql` with `$n` placeholders written as `?` on SQLite.
async fn exec(db: &TestDb, sql: &str, values: Vec<Value>) -> Result<(), DbErr> {
    let kind = db.direct_conn().get_database_backend();
    let sql = if kind == DbBackend::Postgres {
        sql.to_owned()
    } else {
        (1..=values.len()).fold(sql.to_owned(), |sql, n| sql.replace(&format!("${n}"), "?"))
    };
    db.direct_conn()
        .execute_raw(Statement::from_sql_and_values(kind, sql, values))
        .await
        .map(|_| ())
}

async fn run_outcome(db: &TestDb, run: uuid::Uuid) -> Vec<String> {
    let kind = db.direct_conn().get_database_backend();
    let placeholder = if kind == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let row = db
        .direct_conn()
        .query_one_raw(Statement::from_sql_and_values(
            kind,
            format!(
                "SELECT status, total_tokens, api_key_id IS NULL, user_id IS NULL \
                 FROM worker_runs WHERE id = {placeholder}"
            ),
            [Value::from(run)],
        ))
        .await
        .expect("query")
        .expect("the run is still there");
    vec![
        row.try_get_by_index::<String>(0).expect("status"),
        row.try_get_by_index::<i64>(1).expect("tokens").to_string(),
        row.try_get_by_index::<bool>(2).expect("key").to_string(),
        row.try_get_by_index::<bool>(3).expect("user").to_string(),
    ]
}

#[tokio::test]
async fn deleting_what_a_finished_run_points_at_only_detaches_it() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let tenant = uuid::Uuid::now_v7();
        insert_tenant(&db, tenant.into(), "runs")
            .await
            .expect("tenant");
        let user = uuid::Uuid::now_v7();
        insert_user(&db, user.into(), "u@example.com").await;
        let key = insert_key(&db, tenant, user).await;
        let run = insert_run(&db, tenant, "running").await;
        exec(
            &db,
            "UPDATE worker_runs SET api_key_id = $1, user_id = $2, status = 'completed', \
             total_tokens = 7 WHERE id = $3",
            vec![key.into(), user.into(), run.into()],
        )
        .await
        .expect("finish");

        // Pointing a finished run elsewhere is a rewrite.
        let other_key = insert_key(&db, tenant, user).await;
        let error = exec(
            &db,
            "UPDATE worker_runs SET api_key_id = $1 WHERE id = $2",
            vec![other_key.into(), run.into()],
        )
        .await
        .expect_err("re-pointing is refused");
        assert_refused_by_the_guard(backend.name(), &error);

        // Deleting the key and the user sets the references to NULL (ON DELETE SET NULL) and
        // leaves the outcome alone.
        exec(&db, "DELETE FROM api_keys WHERE id = $1", vec![key.into()])
            .await
            .expect("a key a finished run used can be deleted");
        exec(&db, "DELETE FROM users WHERE id = $1", vec![user.into()])
            .await
            .expect("a user a finished run names can be deleted");
        assert_eq!(
            run_outcome(&db, run).await,
            ["completed", "7", "true", "true"],
            "{}",
            backend.name()
        );

        // Deleting the tenant takes its runs with it.
        exec(
            &db,
            "DELETE FROM tenants WHERE id = $1",
            vec![tenant.into()],
        )
        .await
        .expect("a tenant with finished runs can be deleted");
    }
}
