//! Our schema inside a host's database: beside the host's own `users` table and sea-orm
//! migrations in either order, through the host's `fresh` and `refresh`, from a 0.0.0
//! database, and refusing what it must (a failing migration names itself and applies
//! nothing; a half-applied schema is refused).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_migrations::{MIGRATION_TABLE, MigrationError, OUR_TABLES, SchemaName, migrate};
use account_testkit::host::HostMigrator;
use account_testkit::{Backend, TestDb, backends, empty_db};
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::collections::BTreeMap;

async fn scalar(conn: &DatabaseConnection, sql: &str) -> i64 {
    conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

async fn strings(conn: &DatabaseConnection, sql: &str) -> Vec<String> {
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Rows of each of our tables, read through the qualified names the entities use.
async fn our_counts(db: &TestDb) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for table in OUR_TABLES {
        let n = scalar(db.conn(), &format!("SELECT COUNT(*) FROM account.{table}")).await;
        counts.insert(*table, n);
    }
    counts
}

/// Host migrations recorded in the host's `seaql_migrations`, as the host sees them.
async fn host_versions(db: &TestDb) -> Vec<String> {
    strings(
        db.host_conn(),
        "SELECT version FROM seaql_migrations ORDER BY version",
    )
    .await
}

async fn seed_some_rows(db: &TestDb) {
    use account_testkit::fixtures::{Limits, TenantSeed, seed_tenant};
    let limits = Limits {
        workers: 3,
        runs_per_day: 10,
        concurrent_runs: 2,
        tokens_per_month: 1000,
        api_keys: 5,
    };
    let at = chrono::Utc::now();
    let seed = TenantSeed::new("Acme", "free", limits, at).user("owner", Some("owner"));
    seed_tenant(db.conn(), &seed).await;
}

#[tokio::test]
async fn host_and_account_migrators_coexist_in_both_orders_and_host_fresh_keeps_ours() {
    for backend in backends().unwrap() {
        for ours_first in [true, false] {
            let what = format!("{} ours_first={ours_first}", backend.name());
            let db = empty_db(&backend).await.unwrap();
            let schema = SchemaName::default();
            if ours_first {
                migrate(db.direct_conn(), &schema).await.unwrap();
                account_testkit::host::migrate(db.host_conn())
                    .await
                    .unwrap();
            } else {
                account_testkit::host::migrate(db.host_conn())
                    .await
                    .unwrap();
                migrate(db.direct_conn(), &schema).await.unwrap();
            }
            seed_some_rows(&db).await;
            let ours = our_counts(&db).await;
            assert_eq!(ours["tenants"], 1, "{what}");
            assert_eq!(ours["users"], 1, "{what}: our users, not the host's");
            // Each migrator records only its own migrations, in its own table.
            assert_eq!(host_versions(&db).await.len(), 1, "{what}");
            let recorded = scalar(
                db.conn(),
                &format!("SELECT COUNT(*) FROM account.{MIGRATION_TABLE}"),
            )
            .await;
            assert_eq!(
                recorded as usize,
                account_migrations::Migrator::migrations().len(),
                "{what}"
            );
            assert_eq!(
                strings(db.host_conn(), "SELECT login FROM users").await,
                ["host-admin"],
                "{what}: the host's users table is the host's"
            );
            // The host's fresh and refresh drop and rebuild the host's schema only.
            HostMigrator::fresh(db.host_conn()).await.unwrap();
            HostMigrator::refresh(db.host_conn()).await.unwrap();
            assert_eq!(host_versions(&db).await.len(), 1, "{what}");
            assert_eq!(
                our_counts(&db).await,
                ours,
                "{what}: ours survive the host's fresh"
            );
            // And ours still has nothing pending.
            let again = migrate(db.direct_conn(), &schema).await.unwrap();
            assert!(again.migrations.is_empty(), "{what}");
            assert!(!again.upgraded_from_0_0_0, "{what}");
        }
    }
}

/// Creates, in our schema, a table named like an index `m20261125_000004_create_api_keys`
/// creates: that migration fails on both backends ("already exists").
#[tokio::test]
async fn a_failing_migration_names_itself_and_applies_nothing() {
    for backend in backends().unwrap() {
        let db = empty_db(&backend).await.unwrap();
        db.direct_conn()
            .execute_unprepared("CREATE TABLE uq_api_keys_key_digest (x INTEGER)")
            .await
            .unwrap();
        let error = migrate(db.direct_conn(), &SchemaName::default())
            .await
            .unwrap_err();
        let message = error.to_string();
        match &error {
            MigrationError::Failed { migration, .. } => {
                assert_eq!(migration, "m20261125_000004_create_api_keys", "{message}")
            }
            other => panic!("{}: {other:?}", backend.name()),
        }
        assert!(
            message.contains("m20261125_000004_create_api_keys"),
            "{message}"
        );
        assert!(message.contains("already"), "{message}");
        // Nothing of that run was kept: not the first three migrations, not their record.
        let ours = tables_in_our_schema(&db).await;
        assert_eq!(ours, ["uq_api_keys_key_digest"], "{}", backend.name());
    }
}

#[tokio::test]
async fn a_half_applied_schema_is_refused_and_left_as_it_is() {
    for backend in backends().unwrap() {
        let db = empty_db(&backend).await.unwrap();
        // What 0.0.0 left behind when its second migration collided with a host's `users`.
        db.direct_conn()
            .execute_unprepared("CREATE TABLE tenants (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        let error = migrate(db.direct_conn(), &SchemaName::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, MigrationError::HalfApplied { tables, .. } if tables == &["tenants"]),
            "{}: {error:?}",
            backend.name()
        );
        assert!(error.to_string().contains("half-applied"), "{error}");
        assert_eq!(
            tables_in_our_schema(&db).await,
            ["tenants"],
            "{}",
            backend.name()
        );
    }
}

async fn tables_in_our_schema(db: &TestDb) -> Vec<String> {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
        Backend::Postgres { .. } => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = 'account' ORDER BY 1"
        }
    };
    strings(db.direct_conn(), sql).await
}

/// Migrations written after the 0.0.0 snapshots, which the upgrade applies.
const NEWER_THAN_0_0_0: &[&str] = &[
    "m20261210_000020_add_api_key_successor",
    "m20261210_000021_add_api_key_metadata",
    "m20261210_000022_create_identity_links",
    "m20261211_000023_create_usage_hourly",
    "m20261212_000024_add_run_admission_counters",
    "m20261212_000025_add_tenant_totals",
    "m20261212_000026_add_run_leases",
    "m20261213_000027_create_cache_versions",
    "m20261214_000028_create_rate_limit_states",
    "m20261214_000029_add_tenant_request_limit",
    "m20261215_000030_create_event_outbox",
    "m20261215_000032_create_idempotency_keys",
    "m20261215_000033_audit_log_retention_and_guard",
    "m20261216_000034_create_webhook_endpoints",
    "m20261217_000035_create_tenant_limit_overrides",
    "m20261217_000036_add_tenant_max_members",
    "m20261218_000037_create_plans",
    "m20261218_000038_create_user_erasures",
    "m20261218_000039_create_tenant_deletions",
    "m20261218_000040_add_subscription_grace",
];

/// Tables those migrations create: empty, but for the hourly usage totals, which sum the
/// records already there, and the tenants' workers, one per worker with active runs.
const TABLES_NEWER_THAN_0_0_0: &[&str] = &[
    "identity_links",
    "usage_hourly",
    "tenant_workers",
    "cache_versions",
    "rate_limit_states",
    "event_streams",
    "event_outbox",
    "idempotency_keys",
    "webhook_endpoints",
    "webhook_attempts",
    "webhook_replays",
    "tenant_limit_overrides",
    "plans",
    "user_erasures",
    "tenant_deletions",
];

/// Our tables that the 0.0.0 snapshots hold.
fn tables_of_0_0_0() -> impl Iterator<Item = &'static &'static str> {
    OUR_TABLES
        .iter()
        .filter(|table| !TABLES_NEWER_THAN_0_0_0.contains(table))
}

/// The 0.0.0 snapshots (`fixtures/v0_0_0`): our tables in the default schema (SQLite: the
/// database file itself), recorded in `seaql_migrations`.
#[tokio::test]
async fn a_0_0_0_database_is_moved_into_our_schema_with_nothing_lost() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = empty_db(&backend).await.unwrap();
        let dump = match backend {
            Backend::Sqlite => include_str!("fixtures/v0_0_0/sqlite.sql"),
            Backend::Postgres { .. } => include_str!("fixtures/v0_0_0/postgres.sql"),
        };
        // 0.0.0 lived in the default schema: on PostgreSQL a connection of its own (the dump
        // clears its search path), on SQLite the account database file itself.
        let before = match backend {
            Backend::Sqlite => {
                db.direct_conn().execute_unprepared(dump).await.unwrap();
                let mut counts = BTreeMap::new();
                for table in tables_of_0_0_0() {
                    let n =
                        scalar(db.direct_conn(), &format!("SELECT COUNT(*) FROM {table}")).await;
                    counts.insert(*table, n);
                }
                counts
            }
            Backend::Postgres { .. } => {
                let loader = sea_orm_migration::sea_orm::Database::connect(db.url())
                    .await
                    .unwrap();
                loader.execute_unprepared(dump).await.unwrap();
                let mut counts = BTreeMap::new();
                for table in tables_of_0_0_0() {
                    let n = scalar(&loader, &format!("SELECT COUNT(*) FROM public.{table}")).await;
                    counts.insert(*table, n);
                }
                loader.close().await.unwrap();
                counts
            }
        };
        assert_eq!(before["worker_runs"], 3, "{name}: the snapshot loaded");

        let applied = migrate(db.direct_conn(), &SchemaName::default())
            .await
            .unwrap();
        assert!(applied.upgraded_from_0_0_0, "{name}");
        assert_eq!(
            applied.migrations, NEWER_THAN_0_0_0,
            "{name}: 0.0.0 had all but the newer ones"
        );
        let mut after = our_counts(&db).await;
        let hours = "SELECT COUNT(*) FROM (SELECT DISTINCT tenant_id, meter_name, unit, \
                     period_start FROM account.usage_records) AS h";
        assert_eq!(
            after.remove("usage_hourly"),
            Some(scalar(db.conn(), hours).await),
            "{name}: a row per tenant, meter, unit and hour of the records"
        );
        let summed = |table: &str, column: &str| {
            format!("SELECT CAST(COALESCE(SUM({column}), 0) AS BIGINT) FROM account.{table}")
        };
        assert_eq!(
            scalar(db.conn(), &summed("usage_hourly", "total")).await,
            scalar(db.conn(), &summed("usage_records", "amount")).await,
            "{name}: the hourly totals sum the records"
        );
        assert!(scalar(db.conn(), &summed("usage_records", "amount")).await > 0);
        let workers = "SELECT COUNT(*) FROM (SELECT DISTINCT tenant_id, worker_id \
                       FROM account.worker_runs WHERE status IN ('queued', 'running')) AS w";
        assert_eq!(
            after.remove("tenant_workers"),
            Some(scalar(db.conn(), workers).await),
            "{name}: a row per tenant and worker with queued or running runs"
        );
        assert_eq!(
            scalar(db.conn(), &summed("tenant_workers", "active_runs")).await,
            scalar(db.conn(), &summed("tenants", "active_runs")).await,
            "{name}: the tenants' active runs are their workers'"
        );
        // Migration 25 filled the tenant totals from the rows and copied members' emails.
        let wrong_totals = "SELECT COUNT(*) FROM account.tenants t WHERE \
            t.member_count <> (SELECT COUNT(*) FROM account.tenant_memberships m WHERE m.tenant_id = t.id) \
            OR t.api_key_count <> (SELECT COUNT(*) FROM account.api_keys k \
                WHERE k.tenant_id = t.id AND k.status <> 'revoked') \
            OR t.run_count <> (SELECT COUNT(*) FROM account.worker_runs r WHERE r.tenant_id = t.id)";
        assert_eq!(scalar(db.conn(), wrong_totals).await, 0, "{name}: totals");
        assert!(
            scalar(db.conn(), &summed("tenants", "run_count")).await > 0,
            "{name}: the snapshot's runs are counted"
        );
        // Migration 33 gave every tenant its plan's audit retention.
        let wrong_retention = "SELECT COUNT(*) FROM account.tenants WHERE \
            COALESCE(audit_retention_days, -1) <> \
            CASE plan WHEN 'free' THEN 30 WHEN 'pro' THEN 365 ELSE 2555 END";
        assert_eq!(
            scalar(db.conn(), wrong_retention).await,
            0,
            "{name}: retention"
        );
        let wrong_emails = "SELECT COUNT(*) FROM account.tenant_memberships m \
            JOIN account.users u ON u.id = m.user_id WHERE m.member_email <> u.email";
        assert_eq!(scalar(db.conn(), wrong_emails).await, 0, "{name}: emails");
        assert_eq!(
            after.remove("cache_versions"),
            Some(1),
            "{name}: the one version row"
        );
        assert_eq!(after.remove("plans"), Some(3), "{name}: the built-in plans");
        let plan_versions = "SELECT COUNT(*) FROM account.tenants t JOIN account.plans p \
            ON p.code = t.plan AND p.version = t.plan_version";
        assert_eq!(
            scalar(db.conn(), plan_versions).await,
            scalar(db.conn(), "SELECT COUNT(*) FROM account.tenants").await,
            "{name}: every tenant on version 1 of its plan"
        );
        for table in TABLES_NEWER_THAN_0_0_0
            .iter()
            .filter(|t| !["usage_hourly", "tenant_workers", "cache_versions", "plans"].contains(*t))
        {
            assert_eq!(
                after.remove(table),
                Some(0),
                "{name}: {table} created empty"
            );
        }
        assert_eq!(after, before, "{name}: every row moved");
        let recorded = scalar(
            db.conn(),
            &format!("SELECT COUNT(*) FROM account.{MIGRATION_TABLE}"),
        )
        .await;
        assert_eq!(recorded, 19 + NEWER_THAN_0_0_0.len() as i64, "{name}");
        // Nothing of ours is left in the default schema, and the legacy table is gone.
        if let Backend::Postgres { .. } = backend {
            let left = strings(
                db.host_conn(),
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .await;
            assert!(left.is_empty(), "{name}: {left:?}");
            let guard = scalar(
                db.conn(),
                "SELECT COUNT(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE p.proname = 'worker_runs_immutable_guard' AND n.nspname = 'account'",
            )
            .await;
            assert_eq!(guard, 1, "{name}: the guard function moved with its table");
        }
        let legacy = strings(
            db.direct_conn(),
            match backend {
                Backend::Sqlite => "SELECT name FROM sqlite_master WHERE name = 'seaql_migrations'",
                Backend::Postgres { .. } => "SELECT CAST(to_regclass('public.seaql_migrations') AS TEXT) WHERE to_regclass('public.seaql_migrations') IS NOT NULL",
            },
        )
        .await;
        assert!(legacy.is_empty(), "{name}: {legacy:?}");
        // The finished-run guard still holds after the move.
        let rewrite = db
            .conn()
            .execute_unprepared(
                "UPDATE account.worker_runs SET task = 'rewritten' WHERE status = 'completed'",
            )
            .await;
        assert!(
            rewrite.is_err(),
            "{name}: a finished run must stay as it was"
        );
        // A second start finds nothing to do.
        let again = migrate(db.direct_conn(), &SchemaName::default())
            .await
            .unwrap();
        assert!(
            !again.upgraded_from_0_0_0 && again.migrations.is_empty(),
            "{name}"
        );
    }
}
