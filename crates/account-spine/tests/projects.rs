//! Self-service projects on each backend (issue 23): a deleted project is gone to every
//! request and comes back whole when restored; once its window closed the purge leaves no
//! row of it in any table, the tables read from the database's own schema (a new table with
//! a `tenant_id` column fails here until the purge lists it and this fixture fills it), and
//! another tenant's rows untouched.
//!
//! Over 600 lines: the fixture fills every tenant-owned table, and the lifecycle it checks
//! (create, rename, leave, delete, restore, purge) is one story.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::identities::SignedIn;
use account_spine::projects::{MAX_OWNED_PROJECTS, RESTORE_WINDOW_DAYS};
use account_spine::types::*;
use account_spine::{Actor, ErrorCode, Principal, RequestMeta, Spine};
use account_testkit::backends;
use account_testkit::fixtures::{Limits, TenantSeed, insert_row, seed_tenant};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use std::collections::{BTreeMap, BTreeSet};
use support::{env, start};
use uuid::Uuid;

/// The tables of the schema with a column whose name ends in `tenant_id`, each with those
/// columns, read from the database itself.
async fn tenant_columns(conn: &DatabaseConnection) -> BTreeMap<String, Vec<String>> {
    let sql = match conn.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name LIKE '%tenant_id'"
        }
        _ => {
            "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name LIKE '%tenant_id'"
        }
    };
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let table: String = row.try_get("", "t").unwrap();
        let column: String = row.try_get("", "c").unwrap();
        tables.entry(table).or_default().push(column);
    }
    tables
}

/// Rows of every table that name `tenant` in any of its tenant columns.
async fn rows_of(
    conn: &DatabaseConnection,
    tables: &BTreeMap<String, Vec<String>>,
    tenant: Uuid,
) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for (table, columns) in tables {
        let mut total = 0;
        for column in columns {
            let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1");
            let sql = match conn.get_database_backend() {
                DbBackend::Sqlite => sql.replace("$1", "?"),
                _ => sql,
            };
            let statement = Statement::from_sql_and_values(
                conn.get_database_backend(),
                sql,
                [Value::from(tenant)],
            );
            let row = conn.query_one_raw(statement).await.unwrap().unwrap();
            total += row.try_get::<i64>("", "n").unwrap();
        }
        counts.insert(table.clone(), total);
    }
    counts
}

fn at(t: DateTime<Utc>) -> Value {
    Value::from(t)
}

/// Three rows of the tenant in every tenant-owned table but `tenant_deletions` (plain SQL:
/// the fixture must reach tables no use case fills in a few calls), and the owner's default
/// tenant.
async fn fill(conn: &DatabaseConnection, tenant: Uuid, owner: Uuid) {
    let t = start();
    let id = || Value::from(Uuid::now_v7());
    let tid = || Value::from(tenant);
    let text = |s: String| Value::from(s);
    let json = |v: serde_json::Value| Value::Json(Some(Box::new(v)));
    let bytes = |b: &[u8]| Value::Bytes(Some(b.to_vec()));
    let sql = "UPDATE users SET default_tenant_id = $1 WHERE id = $2".to_owned();
    let sql = match conn.get_database_backend() {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql,
    };
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        [Value::from(tenant), Value::from(owner)],
    ))
    .await
    .unwrap();
    let mut endpoints = Vec::new();
    for i in 0..3_i64 {
        let tag = format!("{}-{i}", tenant.simple());
        let key = Uuid::now_v7();
        let endpoint = Uuid::now_v7();
        endpoints.push(endpoint);
        insert_row(
            conn,
            "api_keys",
            vec![
                ("id", key.into()),
                ("tenant_id", tid()),
                ("name", text(format!("k{i}"))),
                ("key_prefix", text(format!("acc_{i}"))),
                ("key_digest", text(format!("digest-{tag}"))),
                ("permissions", json(serde_json::json!(["read:*"]))),
                ("created_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "worker_runs",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("api_key_id", key.into()),
                ("worker_id", text("w".into())),
                ("task", text("t".into())),
                ("status", text("completed".into())),
                ("created_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "tenant_workers",
            vec![
                ("tenant_id", tid()),
                ("worker_id", text(format!("w{i}"))),
                ("active_runs", Value::from(0)),
            ],
        )
        .await;
        insert_row(
            conn,
            "usage_records",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("meter_name", text("tokens".into())),
                ("amount", Value::from(5_i64)),
                ("period_start", at(t)),
                ("period_end", at(t + TimeDelta::hours(1))),
                ("recorded_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "usage_hourly",
            vec![
                ("tenant_id", tid()),
                ("meter_name", text(format!("m{i}"))),
                ("unit", text("count".into())),
                ("hour_start", at(t)),
                ("total", Value::from(5_i64)),
            ],
        )
        .await;
        insert_row(
            conn,
            "audit_log",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("actor_type", text("user".into())),
                ("user_id", owner.into()),
                ("action", text("test.fixture".into())),
                ("resource_type", text("fixture".into())),
                ("ip_address", text("203.0.113.9".into())),
                ("created_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "subscriptions",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("external_id", text(format!("sub-{i}"))),
                ("plan", text("free".into())),
                ("created_at", at(t)),
                ("updated_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "invoices",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("external_id", text(format!("inv-{i}"))),
                ("status", text("paid".into())),
                ("currency", text("usd".into())),
                ("amount_due_cents", Value::from(100_i64)),
                ("period_start", at(t)),
                ("period_end", at(t)),
                ("issued_at", at(t)),
                ("created_at", at(t)),
                ("updated_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "invitations",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("email", text(format!("guest{i}@example.com"))),
                ("token_digest", text(format!("tok-{tag}"))),
                ("invited_by", owner.into()),
                ("created_at", at(t)),
                ("expires_at", at(t + TimeDelta::days(7))),
                ("updated_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "support_tickets",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("user_id", owner.into()),
                ("subject", text("help".into())),
                ("description", text("please".into())),
                ("created_at", at(t)),
                ("updated_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "memory_pins",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("key", text(format!("pin{i}"))),
                ("value", json(serde_json::json!({"v": i}))),
                ("created_at", at(t)),
                ("updated_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "memory_pin_audit",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("operation", text("upsert".into())),
                ("key", text(format!("pin{i}"))),
                ("created_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "sdk_attestations",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("sdk_version", text("1.0".into())),
                ("sdk_language", text("rust".into())),
                ("attestation_hash", text(format!("h{i}"))),
                ("attested_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "lifecycle_events",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("from_status", text("active".into())),
                ("to_status", text("suspended".into())),
                ("action", text("suspend".into())),
                ("actor_type", text("operator".into())),
                ("actor_id", text("ops".into())),
                ("created_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "rate_limit_states",
            vec![
                ("tenant_id", tid()),
                ("subject_id", id()),
                ("tat_us", Value::from(0_i64)),
            ],
        )
        .await;
        insert_row(
            conn,
            "event_outbox",
            vec![
                ("tenant_id", tid()),
                ("seq", Value::from(i + 1)),
                ("event_id", id()),
                ("event_type", text("run.admitted".into())),
                ("payload", text("{}".into())),
                ("occurred_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "idempotency_keys",
            vec![
                ("tenant_id", tid()),
                ("credential", text("key".into())),
                ("key", text(format!("idem-{i}"))),
                ("request_hash", bytes(b"h")),
                ("created_at", at(t)),
                ("expires_at", at(t + TimeDelta::days(1))),
            ],
        )
        .await;
        insert_row(
            conn,
            "webhook_endpoints",
            vec![
                ("id", endpoint.into()),
                ("tenant_id", tid()),
                ("url", text(format!("https://example.com/{i}"))),
                ("description", text(String::new())),
                ("event_types", text("[]".into())),
                ("secret", bytes(b"s")),
                ("enabled", Value::from(true)),
                ("created_at", at(t)),
                ("updated_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "webhook_attempts",
            vec![
                ("id", id()),
                ("tenant_id", tid()),
                ("endpoint_id", endpoint.into()),
                ("event_id", id()),
                ("seq", Value::from(i + 1)),
                ("event_type", text("run.admitted".into())),
                ("attempt", Value::from(1)),
                ("replay", Value::from(false)),
                ("latency_ms", Value::from(3)),
                ("snippet", text(String::new())),
                ("attempted_at", at(t)),
            ],
        )
        .await;
        insert_row(
            conn,
            "webhook_replays",
            vec![
                ("tenant_id", tid()),
                ("endpoint_id", endpoint.into()),
                ("seq", Value::from(i + 1)),
                ("next_attempt_at", at(t)),
            ],
        )
        .await;
    }
    insert_row(
        conn,
        "event_streams",
        vec![
            ("tenant_id", tid()),
            ("last_seq", Value::from(3_i64)),
            ("dispatched_seq", Value::from(3_i64)),
        ],
    )
    .await;
    for (i, limit) in ["max_workers", "max_api_keys", "max_members"]
        .iter()
        .enumerate()
    {
        insert_row(
            conn,
            "tenant_limit_overrides",
            vec![
                ("tenant_id", tid()),
                ("limit_name", text((*limit).into())),
                ("value", Value::from(i as i64 + 1)),
                ("reason", text("fixture".into())),
                ("set_by", text("ops".into())),
                ("created_at", at(t)),
            ],
        )
        .await;
    }
}

const LIMITS: Limits = Limits {
    workers: 10,
    runs_per_day: 100,
    concurrent_runs: 5,
    tokens_per_month: 1_000_000,
    api_keys: 10,
};

fn owner_of(tenant: Uuid, user: Uuid) -> Principal {
    Principal {
        tenant_id: TenantId::from_uuid(tenant),
        actor: Actor::User {
            user_id: UserId::from_uuid(user),
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    }
}

/// Links `user` to the identity `sub` (what accepting an invitation signed in does).
async fn signed_in(conn: &DatabaseConnection, user: Uuid, sub: &str) -> SignedIn {
    let issuer = "https://idp.example.com";
    insert_row(
        conn,
        "identity_links",
        vec![
            ("id", Uuid::now_v7().into()),
            ("issuer", issuer.into()),
            ("subject", sub.into()),
            ("user_id", user.into()),
            ("created_at", at(start())),
        ],
    )
    .await;
    SignedIn::new(issuer, sub)
}

async fn seed(conn: &DatabaseConnection, name: &str) -> (Uuid, Uuid) {
    let seed = TenantSeed::new(name, "free", LIMITS, start())
        .user("owner", Some("owner"))
        .tagged();
    let seeded = seed_tenant(conn, &seed).await;
    (seeded.id, seeded.users[0])
}

fn code<T: std::fmt::Debug>(result: Result<T, account_spine::SpineError>) -> &'static str {
    result.expect_err("refused").code()
}

#[tokio::test]
async fn a_deleted_project_is_gone_until_restored_whole_and_purged_without_a_trace() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        let conn = env.second().await;
        let (tenant, owner) = seed(&conn, "Doomed").await;
        let (other, other_owner) = seed(&conn, "Bystander").await;
        fill(&conn, tenant, owner).await;
        fill(&conn, other, other_owner).await;

        // The purge's list is the schema's: every table with a tenant column.
        let tables = tenant_columns(&conn).await;
        let listed: BTreeSet<String> = account_spine::projects::purged_tables()
            .iter()
            .map(|t| (*t).to_owned())
            .chain(["tenant_deletions".to_owned(), "users".to_owned()])
            .collect();
        let in_schema: BTreeSet<String> = tables.keys().cloned().collect();
        assert_eq!(
            in_schema, listed,
            "{name}: a table with a tenant column the purge does not list (or the other way round)"
        );
        let before = rows_of(&conn, &tables, tenant).await;
        for (table, n) in &before {
            assert!(
                *n > 0 || table == "tenant_deletions",
                "{name}: the fixture leaves {table} empty; give it rows"
            );
        }
        let other_before = rows_of(&conn, &tables, other).await;

        // Delete: gone to the owner's principal, keys and the project list alike.
        let principal = owner_of(tenant, owner);
        let deletion = env.spine.delete_project(&principal).await.unwrap();
        assert_eq!(
            deletion.purge_after,
            start() + TimeDelta::days(RESTORE_WINDOW_DAYS)
        );
        let project = TenantId::from_uuid(tenant);
        assert_eq!(
            code(env.spine.get_project(&principal, project).await),
            "tenant_not_found",
            "{name}"
        );
        assert_eq!(
            code(env.spine.delete_project(&principal).await),
            "tenant_not_found",
            "{name}"
        );
        assert_eq!(
            code(
                env.spine
                    .user_principal(project, UserId::from_uuid(owner), RequestMeta::default())
                    .await
            ),
            "tenant_not_found",
            "{name}: a member's principal is refused"
        );

        // Restore (a signed-in owner; a stranger meets not-found): every row is back.
        let stranger = signed_in(&conn, other_owner, "stranger").await;
        assert_eq!(
            code(
                env.spine
                    .restore_project(&stranger, project, RequestMeta::default())
                    .await
            ),
            "project_not_found",
            "{name}"
        );
        let me = signed_in(&conn, owner, "owner").await;
        env.spine
            .restore_project(&me, project, RequestMeta::default())
            .await
            .unwrap();
        assert_eq!(
            code(
                env.spine
                    .restore_project(&me, project, RequestMeta::default())
                    .await
            ),
            "project_not_deleted",
            "{name}"
        );
        let restored = rows_of(&conn, &tables, tenant).await;
        for (table, n) in &before {
            let logs = [
                "audit_log",
                "event_outbox",
                "event_streams",
                "identity_links",
            ];
            if logs.contains(&table.as_str()) {
                assert!(restored[table] >= *n, "{name}: {table} lost rows");
            } else {
                assert_eq!(restored[table], *n, "{name}: {table} after restore");
            }
        }
        env.spine.get_project(&principal, project).await.unwrap();

        // Delete again; past the window a restore is refused and the purge removes it all,
        // in batches of 2 rows.
        env.spine.delete_project(&principal).await.unwrap();
        env.clock
            .advance(TimeDelta::days(RESTORE_WINDOW_DAYS) + TimeDelta::seconds(1));
        assert_eq!(
            code(
                env.spine
                    .restore_project(&me, project, RequestMeta::default())
                    .await
            ),
            "restore_window_closed",
            "{name}"
        );
        let pass = env.spine.purge_deleted_projects(10, 2).await.unwrap();
        assert_eq!(pass.purged, vec![project], "{name}");
        assert!(pass.rows > 60, "{name}: {} rows", pass.rows);
        let after = rows_of(&conn, &tables, tenant).await;
        assert!(
            after.values().all(|n| *n == 0),
            "{name}: rows of the purged tenant left: {after:?}"
        );
        let tenants =
            account_testkit::fixtures::count_rows(&conn, "tenants", "slug LIKE 'doomed-%'").await;
        assert_eq!(tenants, 0, "{name}: the tenant row");
        assert_eq!(
            rows_of(&conn, &tables, other).await,
            other_before,
            "{name}: the other tenant untouched"
        );
        // The platform's record of it survives, without a tenant and without a person.
        let filter = format!(
            "action = 'project.purged' AND tenant_id IS NULL AND user_id IS NULL AND ip_address IS NULL AND resource_id = '{project}'"
        );
        assert_eq!(
            account_testkit::fixtures::count_rows(&conn, "audit_log", &filter).await,
            1,
            "{name}"
        );
        // A second pass finds nothing.
        assert!(
            env.spine
                .purge_deleted_projects(10, 2)
                .await
                .unwrap()
                .purged
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_person_creates_projects_up_to_the_limit_renames_and_leaves_them_but_not_as_last_owner() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        let conn = env.second().await;
        let (tenant, owner) = seed(&conn, "Home").await;
        let me = signed_in(&conn, owner, "me").await;
        let created = env
            .spine
            .create_project(&me, "Side Project", RequestMeta::default())
            .await
            .unwrap();
        assert_eq!(created.owner.role, MembershipRole::Owner, "{name}");
        let project = created.tenant.id;
        let principal = owner_of(project.as_uuid(), owner);
        assert_eq!(
            env.spine
                .rename_project(&principal, "Main Project")
                .await
                .unwrap(),
            "Main Project"
        );
        assert_eq!(
            env.spine
                .get_project(&principal, project)
                .await
                .unwrap()
                .name,
            "Main Project"
        );
        assert_eq!(
            code(env.spine.rename_project(&principal, "").await),
            "invalid_name",
            "{name}"
        );
        // The last owner cannot leave.
        assert_eq!(
            code(env.spine.leave_project(&principal).await),
            "last_owner",
            "{name}"
        );
        // A second member can.
        let guest = Uuid::now_v7();
        account_testkit::fixtures::insert_user(
            &conn,
            guest,
            &format!("guest-{}@example.com", guest.simple()),
            start(),
        )
        .await;
        account_testkit::fixtures::insert_membership(
            &conn,
            project.as_uuid(),
            guest,
            "viewer",
            start(),
        )
        .await;
        let guest_principal = Principal {
            tenant_id: project,
            actor: Actor::User {
                user_id: UserId::from_uuid(guest),
                role: MembershipRole::Viewer,
            },
            request: RequestMeta::default(),
        };
        assert_eq!(
            code(env.spine.delete_project(&guest_principal).await),
            "forbidden",
            "{name}: owners only"
        );
        env.spine.leave_project(&guest_principal).await.unwrap();
        assert_eq!(
            code(env.spine.get_project(&guest_principal, project).await),
            "tenant_not_found",
            "{name}"
        );
        // Up to the limit: the seeded one and the created one count.
        for i in 2..MAX_OWNED_PROJECTS {
            env.spine
                .create_project(&me, &format!("Project {i}"), RequestMeta::default())
                .await
                .unwrap();
        }
        assert_eq!(
            code(
                env.spine
                    .create_project(&me, "One Too Many", RequestMeta::default())
                    .await
            ),
            "project_limit",
            "{name}"
        );
        // An unlinked identity is told so.
        let nobody = SignedIn::new("https://idp.example.com", "nobody");
        assert_eq!(
            code(
                env.spine
                    .create_project(&nobody, "X", RequestMeta::default())
                    .await
            ),
            "identity_not_linked",
            "{name}"
        );
        let _ = (Spine::clone(&env.spine), tenant);
    }
}
