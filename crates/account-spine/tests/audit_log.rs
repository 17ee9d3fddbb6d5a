//! The audit log through the spine, on each backend: pages by keyset cover every matching row
//! once, newest first, under every filter and never another tenant's; an export streams its
//! window in chunks of at most 1,000 rows, in the list's order; the retention purge removes
//! exactly the rows past each tenant's retention, in batches, audited once per tenant, and
//! leaves tenants kept forever and platform rows alone; plans set the retention; and audit
//! rows cannot be updated (both backends) or deleted (PostgreSQL) through the application's
//! own connection, while the purge can delete them.
//!
//! Over 600 lines on purpose: one binary for the area (link time on 2 cores), its tests
//! sharing the row seeding and the expected orders at the top.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::audit::purge::AuditPurged;
use account_spine::audit::{AuditFilter, AuditRecord, EXPORT_CHUNK_ROWS, parse_action};
use account_spine::types::*;
use account_spine::{Actor, ErrorCode, Principal, RequestMeta, Spine};
use account_testkit::backends;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use support::{Env, World, count, env, operator, owner, start, world};

/// One audit row as the test seeds it.
#[derive(Clone, Debug)]
struct Row {
    id: uuid::Uuid,
    tenant: Option<TenantId>,
    actor_type: &'static str,
    user: Option<uuid::Uuid>,
    key: Option<uuid::Uuid>,
    action: String,
    resource: (&'static str, String),
    at: DateTime<Utc>,
}

/// Inserts `rows` with plain SQL, 200 to a statement.
async fn insert(conn: &DatabaseConnection, rows: &[Row]) {
    for chunk in rows.chunks(200) {
        let mut query = Query::insert();
        query.into_table(Alias::new("audit_log")).columns(
            [
                "id",
                "tenant_id",
                "actor_type",
                "user_id",
                "api_key_id",
                "action",
                "resource_type",
                "resource_id",
                "created_at",
            ]
            .map(Alias::new),
        );
        for row in chunk {
            query
                .values([
                    Expr::val(row.id),
                    Expr::val(row.tenant.map(|t| t.as_uuid())),
                    Expr::val(row.actor_type),
                    Expr::val(row.user),
                    Expr::val(row.key),
                    Expr::val(row.action.clone()),
                    Expr::val(row.resource.0),
                    Expr::val(row.resource.1.clone()),
                    Expr::val(row.at),
                ])
                .unwrap();
        }
        conn.execute(&query).await.unwrap();
    }
}

/// `n` rows of `tenant`, a second apart from `start()` (three to an instant, so ties occur),
/// by the owner or by a key, over a few actions and resources.
fn rows_of(tenant: TenantId, owner: UserId, key: uuid::Uuid, n: usize) -> Vec<Row> {
    let actions = [
        "api_key.created",
        "api_key.revoked",
        "run.admitted",
        "user.profile_updated",
    ];
    (0..n)
        .map(|i| {
            let by_key = i % 3 == 0;
            Row {
                id: uuid::Uuid::now_v7(),
                tenant: Some(tenant),
                actor_type: if by_key { "api_key" } else { "user" },
                user: (!by_key).then(|| owner.as_uuid()),
                key: by_key.then_some(key),
                action: actions[i % actions.len()].to_owned(),
                resource: ("run", format!("r{}", i % 5)),
                at: start() + TimeDelta::seconds((i / 3) as i64),
            }
        })
        .collect()
}

/// Every page of the owner's list under `filter`, `limit` at a time; the ids in order.
async fn list_all(
    spine: &Spine,
    principal: &Principal,
    filter: &AuditFilter,
    limit: u64,
) -> Vec<uuid::Uuid> {
    let (mut ids, mut after) = (Vec::new(), None);
    for _ in 0..1_000 {
        let page = spine
            .list_audit_log(principal, filter.clone(), after, limit)
            .await
            .unwrap();
        assert!(page.items.len() as u64 <= limit);
        ids.extend(page.items.iter().map(|e| e.id.as_uuid()));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
    panic!("paging never ended: a position that does not move on");
}

/// Which seeded rows a filter must keep.
type Keep = Box<dyn Fn(&Row) -> bool>;

/// The ids of `rows` that `keep` keeps, newest first (by time, then id).
fn expected(rows: &[Row], keep: impl Fn(&Row) -> bool) -> Vec<uuid::Uuid> {
    let mut kept: Vec<&Row> = rows.iter().filter(|r| keep(r)).collect();
    kept.sort_by_key(|r| std::cmp::Reverse((r.at, r.id)));
    kept.iter().map(|r| r.id).collect()
}

/// The world, its 200 seeded rows, and the other tenant's rows at the same instants.
async fn seeded(env: &Env) -> (World, Vec<Row>, uuid::Uuid) {
    let conn = env.second().await;
    let world = world(&conn).await;
    let key = uuid::Uuid::now_v7();
    let rows = rows_of(world.tenant, world.owner, key, 200);
    let other = TenantId::new();
    let mut theirs = rows_of(other, world.owner, key, 50);
    theirs
        .iter_mut()
        .for_each(|r| r.action = "api_key.created".into());
    insert(&conn, &rows).await;
    insert(&conn, &theirs).await;
    (world, rows, key)
}

#[tokio::test]
async fn pages_cover_every_matching_row_once_newest_first_under_every_filter() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        let (world, rows, key) = seeded(&env).await;
        let principal = owner(&world, "audit-list");
        let spine = &env.spine;

        let mut filters: Vec<(&str, AuditFilter, Keep)> = Vec::new();
        filters.push(("none", AuditFilter::default(), Box::new(|_| true)));
        let mut f = AuditFilter::default();
        f.user_id = Some(world.owner);
        filters.push(("user", f, Box::new(|r| r.user.is_some())));
        let mut f = AuditFilter::default();
        f.api_key_id = Some(ApiKeyId::from_uuid(key));
        filters.push(("key", f, Box::new(|r| r.key.is_some())));
        let mut f = AuditFilter::default();
        f.actor_type = Some(ActorType::ApiKey);
        filters.push(("actor type", f, Box::new(|r| r.actor_type == "api_key")));
        let mut f = AuditFilter::default();
        f.action = Some(parse_action("api_key.*").unwrap());
        filters.push((
            "action family",
            f,
            Box::new(|r| r.action.starts_with("api_key.")),
        ));
        let mut f = AuditFilter::default();
        f.action = Some(parse_action("run.admitted").unwrap());
        filters.push(("action", f, Box::new(|r| r.action == "run.admitted")));
        let mut f = AuditFilter::default();
        (f.resource_type, f.resource_id) = (Some("run".into()), Some("r3".into()));
        filters.push(("resource", f, Box::new(|r| r.resource.1 == "r3")));
        let (from, to) = (
            start() + TimeDelta::seconds(10),
            start() + TimeDelta::seconds(40),
        );
        let mut f = AuditFilter::default();
        (f.from, f.to) = (Some(from), Some(to));
        filters.push(("window", f, Box::new(move |r| r.at >= from && r.at < to)));
        let mut f = AuditFilter::default();
        (f.from, f.action) = (Some(from), Some(parse_action("api_key.*").unwrap()));
        f.user_id = Some(world.owner);
        filters.push((
            "combined",
            f,
            Box::new(move |r| r.at >= from && r.action.starts_with("api_key.") && r.user.is_some()),
        ));

        for (what, filter, keep) in &filters {
            let want = expected(&rows, keep);
            assert!(!want.is_empty(), "{name}: {what} keeps something");
            for limit in [7, 100] {
                let got = list_all(spine, &principal, filter, limit).await;
                assert_eq!(got, want, "{name}: {what}, {limit} a page");
            }
        }

        // Out-of-bounds input is refused with a field to point at.
        let refused = spine
            .list_audit_log(&principal, AuditFilter::default(), None, 101)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), refused.field()),
            ("invalid_page", Some("limit"))
        );
        let mut backwards = AuditFilter::default();
        (backwards.from, backwards.to) = (Some(to), Some(from));
        let refused = spine
            .list_audit_log(&principal, backwards, None, 10)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_window");
    }
}

/// Every chunk of an export of `filter`, as the owner.
async fn export(
    spine: &Spine,
    principal: &Principal,
    filter: AuditFilter,
) -> Vec<Vec<AuditRecord>> {
    let mut export = spine.export_audit_log(principal, filter);
    let mut chunks = Vec::new();
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        chunks.push(chunk);
        assert!(chunks.len() < 100, "the export never ended");
    }
    chunks
}

#[tokio::test]
async fn an_export_streams_its_window_in_chunks_in_the_lists_order() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        let conn = env.second().await;
        let world = world(&conn).await;
        let rows = rows_of(world.tenant, world.owner, uuid::Uuid::now_v7(), 2_600);
        insert(&conn, &rows).await;
        let principal = owner(&world, "audit-export");
        // A window that leaves the first 30 and the last 60 rows out (three rows a second).
        let (from, to) = (
            start() + TimeDelta::seconds(10),
            start() + TimeDelta::seconds(846),
        );
        let mut window = AuditFilter::default();
        (window.from, window.to) = (Some(from), Some(to));
        let chunks = export(&env.spine, &principal, window.clone()).await;
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [1_000, 1_000, 508],
            "{name}: chunks of EXPORT_CHUNK_ROWS"
        );
        assert_eq!(EXPORT_CHUNK_ROWS, 1_000);
        let ids: Vec<_> = chunks.iter().flatten().map(|e| e.id.as_uuid()).collect();
        assert_eq!(
            ids,
            expected(&rows, |r| r.at >= from && r.at < to),
            "{name}: every row of the window once, newest first"
        );
        // The list reads the same rows in the same order: one order, one query.
        assert_eq!(list_all(&env.spine, &principal, &window, 100).await, ids);

        // An export needs both ends of its window; the refusal comes with the first chunk.
        let mut open = AuditFilter::default();
        open.from = Some(from);
        let refused = env
            .spine
            .export_audit_log(&principal, open)
            .next_chunk()
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "export_needs_window", "{name}");
        // An empty window ends at once.
        let mut empty = AuditFilter::default();
        (empty.from, empty.to) = (Some(start() - TimeDelta::days(2)), Some(start()));
        assert!(export(&env.spine, &principal, empty).await.is_empty());
    }
}

#[tokio::test]
async fn members_and_viewers_read_no_audit_log_and_the_refusal_is_audited() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let world = world(&env.second().await).await;
        let member = Principal {
            tenant_id: world.tenant,
            actor: Actor::User {
                user_id: world.member,
                role: MembershipRole::Member,
            },
            request: RequestMeta::default().with_request_id("audit-by-member"),
        };
        let refused = env
            .spine
            .list_audit_log(&member, AuditFilter::default(), None, 10)
            .await
            .unwrap_err();
        assert_eq!((refused.code(), refused.http_status()), ("forbidden", 403));
        let mut window = AuditFilter::default();
        (window.from, window.to) = (Some(start() - TimeDelta::days(1)), Some(start()));
        let refused = env
            .spine
            .export_audit_log(&member, window)
            .next_chunk()
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "forbidden");
        let conn = env.second().await;
        let refusals = count(
            &conn,
            "audit_log",
            &[
                ("action", "authorization.refused".into()),
                ("request_id", "audit-by-member".into()),
            ],
        )
        .await;
        assert_eq!(refusals, 2, "{}: both refusals audited", env.backend);
    }
}

/// Sets `tenant`'s retention with plain SQL (`None`: kept forever).
async fn set_retention(conn: &DatabaseConnection, tenant: TenantId, days: Option<i32>) {
    let mut update = Query::update();
    update
        .table(Alias::new("tenants"))
        .value(Alias::new("audit_retention_days"), days)
        .and_where(Expr::col(Alias::new("id")).eq(tenant.as_uuid()));
    conn.execute(&update).await.unwrap();
}

/// The actions of `tenant`'s rows (`None`: the platform's), sorted.
async fn actions(conn: &DatabaseConnection, tenant: Option<TenantId>) -> Vec<String> {
    let mut query = Query::select();
    query
        .column(Alias::new("action"))
        .from(Alias::new("audit_log"))
        .order_by(Alias::new("action"), sea_orm::Order::Asc);
    match tenant {
        Some(tenant) => query.and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_uuid())),
        None => query.and_where(Expr::col(Alias::new("tenant_id")).is_null()),
    };
    let rows = conn
        .query_all_raw(conn.get_database_backend().build(&query))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "action").unwrap())
        .collect()
}

/// A row of `tenant` written `days_ago` days before the clock's now, with `action`.
fn aged(tenant: Option<TenantId>, action: &str, now: DateTime<Utc>, days_ago: i64) -> Row {
    Row {
        id: uuid::Uuid::now_v7(),
        tenant,
        actor_type: "system",
        user: None,
        key: None,
        action: action.to_owned(),
        resource: ("run", "r".into()),
        at: now - TimeDelta::days(days_ago),
    }
}

#[tokio::test]
async fn the_purge_removes_exactly_the_rows_past_each_retention_in_batches_audited_once() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        let conn = env.second().await;
        let now = start();
        let world = world(&conn).await;
        set_retention(&conn, world.tenant, Some(30)).await;
        let mut rows = Vec::new();
        // 7 rows past 30 days (three batches of 3: 3, 3, 1), the boundary and newer kept.
        for days_ago in [400, 90, 60, 45, 40, 31, 31] {
            rows.push(aged(Some(world.tenant), "x.expired", now, days_ago));
        }
        for days_ago in [30, 29, 1, 0] {
            rows.push(aged(Some(world.tenant), "x.kept", now, days_ago));
        }
        // A tenant kept forever, one with a long retention, and the platform's own rows.
        let forever = TenantId::new();
        let long = TenantId::new();
        for tenant in [forever, long] {
            rows.push(aged(Some(tenant), "x.kept", now, 400));
        }
        rows.push(aged(None, "x.kept", now, 4_000));
        insert(&conn, &rows).await;
        let seed_tenant = async |tenant: TenantId, slug: &str, days: Option<i32>| {
            let plan = PlanCode::free();
            let q = account_spine::types::PlanQuotas::built_in(&plan).unwrap();
            account_testkit::fixtures::insert_tenant(
                &conn,
                &account_testkit::fixtures::TenantRow {
                    id: tenant.as_uuid(),
                    name: slug,
                    slug,
                    plan: plan.as_str(),
                    max_workers: q.max_workers,
                    max_runs_per_day: q.max_runs_per_day,
                    max_concurrent_runs: q.max_concurrent_runs,
                    max_tokens_per_month: q.max_tokens_per_month,
                    max_api_keys: q.max_api_keys,
                    at: now,
                },
            )
            .await;
            set_retention(&conn, tenant, days).await;
        };
        seed_tenant(forever, "forever", None).await;
        seed_tenant(long, "long", Some(2_555)).await;

        let pass = env.spine.purge_expired_audit_logs(3).await.unwrap();
        assert_eq!(
            (pass.tenants, pass.removed, pass.failed),
            (2, 7, 0),
            "{name}: the world's tenant and the long one"
        );
        let mut left = vec!["x.kept"; 4];
        left.push("audit.purged");
        left.sort_unstable();
        assert_eq!(actions(&conn, Some(world.tenant)).await, left, "{name}");
        assert_eq!(actions(&conn, Some(forever)).await, ["x.kept"], "{name}");
        assert_eq!(actions(&conn, Some(long)).await, ["x.kept"], "{name}");
        assert_eq!(
            actions(&conn, None).await,
            ["x.kept"],
            "{name}: platform rows"
        );
        let purged = count(
            &conn,
            "audit_log",
            &[
                ("action", "audit.purged".into()),
                ("actor_type", "system".into()),
                ("tenant_id", world.tenant.as_uuid().into()),
                ("resource_type", "audit_log".into()),
            ],
        )
        .await;
        assert_eq!(purged, 1, "{name}: one row for the whole purge");
        let detail = purge_detail(&conn).await;
        assert_eq!(detail["removed"], 7, "{name}: {detail}");
        assert_eq!(detail["retention_days"], 30, "{name}: {detail}");

        // Nothing left to purge: no batch deletes, nothing more is audited.
        let again = env.spine.purge_audit_log(world.tenant, 3).await.unwrap();
        assert_eq!(again.removed, 0);
        assert_eq!(again.before, Some(now - TimeDelta::days(30)));
        assert_eq!(
            env.spine.purge_audit_log(forever, 3).await.unwrap(),
            AuditPurged::default(),
            "{name}: kept forever"
        );
        assert_eq!(
            count(&conn, "audit_log", &[("action", "audit.purged".into())]).await,
            1
        );
    }
}

/// The `new_value` of the one `audit.purged` row.
async fn purge_detail(conn: &DatabaseConnection) -> serde_json::Value {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT new_value FROM audit_log WHERE action = 'audit.purged'",
        ))
        .await
        .unwrap()
        .unwrap();
    match conn.get_database_backend() {
        DbBackend::Sqlite => {
            serde_json::from_str(&row.try_get::<String>("", "new_value").unwrap()).unwrap()
        }
        _ => row.try_get::<serde_json::Value>("", "new_value").unwrap(),
    }
}

#[tokio::test]
async fn a_plan_sets_the_tenants_retention() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (created, _) = env
            .spine
            .bootstrap(&operator("audit-plan"), "owner@example.com", "Acme")
            .await
            .unwrap();
        let tenant = created.tenant.id;
        let conn = env.second().await;
        let retention = async || -> Option<i32> {
            let row = conn
                .query_one_raw(
                    conn.get_database_backend().build(
                        Query::select()
                            .column(Alias::new("audit_retention_days"))
                            .from(Alias::new("tenants"))
                            .and_where(Expr::col(Alias::new("id")).eq(tenant.as_uuid())),
                    ),
                )
                .await
                .unwrap()
                .unwrap();
            row.try_get::<Option<i32>>("", "audit_retention_days")
                .unwrap()
        };
        assert_eq!(retention().await, Some(30), "{}: free", env.backend);
        for (plan, days) in [(PlanCode::pro(), 365), (PlanCode::enterprise(), 2_555)] {
            env.spine
                .change_plan(&operator("audit-plan"), tenant, plan.clone())
                .await
                .unwrap();
            assert_eq!(retention().await, Some(days), "{}: {plan}", env.backend);
        }
    }
}

/// Runs `sql` on `conn`; the database's error text when it fails.
async fn run(conn: &DatabaseConnection, sql: &str) -> Result<u64, String> {
    conn.execute_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn the_applications_connection_cannot_rewrite_audit_rows_but_the_purge_deletes_them() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let name = env.backend;
        // The application's role and connection settings: a pool opened as the spine's is.
        let conn = env.second().await;
        let world = world(&conn).await;
        let now = start();
        let rows: Vec<Row> = (0..3)
            .map(|i| aged(Some(world.tenant), "x.old", now, 100 + i))
            .collect();
        insert(&conn, &rows).await;

        let refused = run(&conn, "UPDATE audit_log SET action = 'x.forged'").await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("tg_audit_log_append_only")),
            "{name}: {refused:?}"
        );
        if name == "postgres" {
            for sql in ["DELETE FROM audit_log", "TRUNCATE audit_log"] {
                let refused = run(&conn, sql).await;
                assert!(
                    refused
                        .as_ref()
                        .is_err_and(|e| e.contains("tg_audit_log_append_only")),
                    "{name}: {sql}: {refused:?}"
                );
            }
            // The purge's permission names its own transaction: `on`, or another
            // transaction's id (a setting left on a pooled session), allows nothing.
            let stale = {
                let txn = conn.begin().await.unwrap();
                let row = txn
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT txid_current()::text AS id",
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                txn.commit().await.unwrap();
                row.try_get::<String>("", "id").unwrap()
            };
            for value in ["on", stale.as_str()] {
                let txn = conn.begin().await.unwrap();
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config('account.audit_purge', $1, false)",
                    [Value::from(value)],
                ))
                .await
                .unwrap();
                let refused = txn
                    .execute_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "DELETE FROM audit_log",
                    ))
                    .await;
                assert!(
                    refused.is_err_and(|e| format!("{e:?}").contains("tg_audit_log_append_only")),
                    "{name}: allowed by {value:?}"
                );
                txn.rollback().await.unwrap();
            }
        }
        assert_eq!(
            count(&conn, "audit_log", &[("action", "x.old".into())]).await,
            3,
            "{name}: nothing changed"
        );
        set_retention(&conn, world.tenant, Some(30)).await;
        let purged = env.spine.purge_audit_log(world.tenant, 2).await.unwrap();
        assert_eq!(purged.removed, 3, "{name}: the purge deletes them");
        assert_eq!(
            count(&conn, "audit_log", &[("action", "x.old".into())]).await,
            0
        );
    }
}
