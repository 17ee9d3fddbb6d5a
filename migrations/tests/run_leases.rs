//! Run leases in the schema (`m20261212_000026_add_run_leases`): runs in flight get a lease
//! when the migration arrives, the reaper's scan is served by the partial index on both
//! backends, and the finished-run guard covers expired (`crashed`) runs and, on SQLite, every
//! column (its trigger lists them, so a column added later without re-creating it would be
//! unguarded: this test names it).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_migrations::{Migrator, MigratorTrait};
use account_testkit::{TestDb, backends, empty_db, fresh_db};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait, Value,
};

/// `sql` with `$n` placeholders, written `?n` on SQLite.
fn statement(db: &TestDb, sql: &str, values: Vec<Value>) -> Statement {
    let kind = db.direct_conn().get_database_backend();
    let sql = match kind {
        DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    };
    Statement::from_sql_and_values(kind, sql, values)
}

async fn exec(db: &TestDb, sql: &str, values: Vec<Value>) -> Result<(), DbErr> {
    let statement = statement(db, sql, values);
    db.direct_conn().execute_raw(statement).await.map(|_| ())
}

/// The first column of every row of `sql`, as text.
async fn texts(db: &TestDb, sql: &str) -> Vec<String> {
    let statement = statement(db, sql, Vec::new());
    let rows = db.direct_conn().query_all_raw(statement).await.unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn tenant(db: &TestDb) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    exec(
        db,
        "INSERT INTO tenants (id, name, slug, plan, max_workers, max_runs_per_day, \
         max_concurrent_runs, max_tokens_per_month, max_api_keys, status, created_at, \
         updated_at) VALUES ($1, 'T', $2, 'free', 3, 100, 5, 1000000, 5, 'active', $3, $3)",
        vec![id.into(), id.simple().to_string().into(), Utc::now().into()],
    )
    .await
    .unwrap();
    id
}

async fn run(db: &TestDb, tenant: uuid::Uuid, status: &str) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    exec(
        db,
        "INSERT INTO worker_runs (id, tenant_id, worker_id, task, status, created_at) \
         VALUES ($1, $2, 'w', 't', $3, $4)",
        vec![id.into(), tenant.into(), status.into(), Utc::now().into()],
    )
    .await
    .unwrap();
    id
}

async fn lease(db: &TestDb, run: uuid::Uuid) -> Option<DateTime<Utc>> {
    let statement = statement(
        db,
        "SELECT lease_expires_at FROM worker_runs WHERE id = $1",
        vec![run.into()],
    );
    let row = db.direct_conn().query_one_raw(statement).await.unwrap();
    row.unwrap().try_get_by_index(0).unwrap()
}

#[tokio::test]
async fn runs_in_flight_get_a_default_lease_when_leases_arrive() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = empty_db(&backend).await.unwrap();
        let before_leases = Migrator::migrations()
            .iter()
            .position(|m| m.name() == "m20261212_000026_add_run_leases")
            .expect("the leases migration");
        Migrator::up(db.direct_conn(), Some(before_leases as u32))
            .await
            .unwrap();
        let tenant = tenant(&db).await;
        let statuses = ["queued", "running", "completed", "failed", "crashed"];
        let mut runs = Vec::new();
        for status in statuses {
            runs.push(run(&db, tenant, status).await);
        }
        let started = Utc::now();
        Migrator::up(db.direct_conn(), None).await.unwrap();
        let ended = Utc::now();
        for (status, run) in statuses.iter().zip(runs) {
            let lease = lease(&db, run).await;
            if ["queued", "running"].contains(status) {
                // The database's clock, a minute ahead (whole seconds may be cut on the way).
                let lease = lease.unwrap_or_else(|| panic!("{name}: {status} has a lease"));
                let minute = TimeDelta::seconds(60);
                let slack = TimeDelta::seconds(1);
                assert!(
                    lease >= started + minute - slack && lease <= ended + minute + slack,
                    "{name}: {status} leased until {lease}, migrated {started}..{ended}"
                );
            } else {
                assert_eq!(lease, None, "{name}: a {status} run holds no lease");
            }
        }
        if backend.name() == "sqlite" {
            // Stored as the application writes it, so text comparisons order it correctly.
            let stored = texts(
                &db,
                "SELECT lease_expires_at FROM worker_runs WHERE lease_expires_at IS NOT NULL",
            )
            .await;
            for text in stored {
                assert!(
                    DateTime::parse_from_rfc3339(&text).is_ok() && text.ends_with("+00:00"),
                    "{text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_reapers_scan_is_served_by_the_partial_lease_index() {
    // The shape of the drivers' `fetch_lapsed_leases`, as sea-query renders it (its unit test
    // pins the predicate).
    const SCAN: &str = "SELECT tenant_id, id, lease_expires_at FROM worker_runs \
                        WHERE (status IN ('queued', 'running')) AND lease_expires_at < $1 \
                        ORDER BY lease_expires_at ASC LIMIT 100";
    for backend in backends().unwrap() {
        let db = fresh_db(&backend).await.unwrap();
        let tenant = tenant(&db).await;
        for status in ["queued", "running", "completed", "failed"] {
            run(&db, tenant, status).await;
        }
        let plan = match db.direct_conn().get_database_backend() {
            DbBackend::Postgres => {
                // Tiny tables are read whole whatever the indexes; forbidding that shows
                // whether the planner can match the partial index at all.
                let txn = db.direct_conn().begin().await.unwrap();
                txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                    .await
                    .unwrap();
                let explain = statement(&db, &format!("EXPLAIN {SCAN}"), vec![Utc::now().into()]);
                let rows = txn.query_all_raw(explain).await.unwrap();
                txn.rollback().await.unwrap();
                rows.iter()
                    .map(|row| row.try_get_by_index::<String>(0).unwrap())
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            _ => {
                let explain = statement(
                    &db,
                    &format!("EXPLAIN QUERY PLAN {SCAN}"),
                    vec![Utc::now().into()],
                );
                let rows = db.direct_conn().query_all_raw(explain).await.unwrap();
                rows.iter()
                    .map(|row| row.try_get::<String>("", "detail").unwrap())
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        assert!(
            plan.contains("ix_worker_runs_lease_expires_at"),
            "{}: {plan}",
            backend.name()
        );
        assert!(!plan.contains("Seq Scan"), "{}: {plan}", backend.name());
    }
}

#[tokio::test]
async fn an_expired_run_is_final_and_the_sqlite_guard_names_every_column() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let tenant = tenant(&db).await;
        let run = run(&db, tenant, "running").await;
        let now = Utc::now();
        exec(
            &db,
            "UPDATE worker_runs SET status = 'crashed', success = FALSE, \
             error = 'lease expired', completed_at = $1, lease_expires_at = $1 WHERE id = $2",
            vec![now.into(), run.into()],
        )
        .await
        .expect("an expiry finishes a running run");
        for set in [
            "status = 'running'",
            "error = NULL",
            "lease_expires_at = NULL",
        ] {
            let refused = exec(
                &db,
                &format!("UPDATE worker_runs SET {set} WHERE id = $1"),
                vec![run.into()],
            )
            .await
            .expect_err("an expired run is frozen");
            let text = format!("{refused}");
            assert!(text.contains("tg_worker_runs_immutable"), "{name}: {text}");
        }
        if name == "sqlite" {
            let columns = texts(&db, "SELECT name FROM pragma_table_info('worker_runs')").await;
            let trigger = texts(
                &db,
                "SELECT sql FROM sqlite_master WHERE name = 'tg_worker_runs_immutable'",
            )
            .await
            .concat();
            assert!(columns.contains(&"lease_expires_at".to_owned()));
            let unguarded: Vec<_> = columns
                .iter()
                .filter(|c| !trigger.contains(&format!("NEW.{c} IS OLD.{c}")))
                .collect();
            assert!(
                unguarded.is_empty(),
                "re-create tg_worker_runs_immutable with {unguarded:?}"
            );
        }
    }
}
