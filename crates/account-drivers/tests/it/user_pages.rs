//! The tenant's users list at size: every offset page exact from either end, and the index on
//! `(tenant_id, member_email, user_id)` serving the list and a member found by email.

use crate::support::*;
use account_drivers::types::*;
use account_drivers::users::{UserFilter, UserPosition};
use account_drivers::{OffsetPage, StatementCounter, get_accounts_facade_driver};

/// Every offset page of the unfiltered list, read from the start (front half) or from the
/// end (back half), is the slice of the list in email order; past the end it costs the total
/// alone.
#[tokio::test]
async fn unfiltered_offset_pages_are_exact_from_either_end() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_accounts_facade_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "pages").await;
        let other = seed_tenant(db, "pages-other").await;
        let mut expected = Vec::new();
        for i in [4, 0, 6, 2, 5, 1, 3] {
            let user = seed_user(db, &format!("m{i}@example.test")).await;
            seed_membership(db, tenant, user, MembershipRole::Member).await;
            expected.push((format!("m{i}@example.test"), user));
        }
        // Another tenant's members sort among them and never show.
        for i in [0, 3, 9] {
            let user = seed_user(db, &format!("m{i}x@example.test")).await;
            seed_membership(db, other, user, MembershipRole::Member).await;
        }
        expected.sort();
        let n = expected.len() as u64;
        for limit in 1..=4 {
            for offset in 0..=n + 1 {
                counter.take();
                let page = driver
                    .fetch_users(tenant, UserFilter::default(), OffsetPage { limit, offset })
                    .await
                    .unwrap();
                let statements = if offset >= n { 1 } else { 2 };
                assert_eq!(counter.take(), statements, "limit {limit}, offset {offset}");
                let want: Vec<_> = expected
                    .iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .map(|(_, id)| *id)
                    .collect();
                let got: Vec<_> = page.items.iter().map(|u| u.id).collect();
                assert_eq!(got, want, "limit {limit}, offset {offset}");
                assert_eq!(page.total, n);
                assert_eq!(page.has_more, offset + limit < n);
            }
        }
    })
    .await;
}

/// Plans of `statements` as the backend explains them, one text each (PostgreSQL `EXPLAIN`,
/// SQLite `EXPLAIN QUERY PLAN`); with `analyze`, PostgreSQL runs them and reports timings.
async fn plans(
    conn: &sea_orm::DatabaseConnection,
    statements: &[sea_orm::Statement],
    analyze: bool,
) -> Vec<String> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = conn.get_database_backend();
    let mut plans = Vec::new();
    for statement in statements {
        let prefix = match (backend, analyze) {
            (DbBackend::Sqlite, _) => "EXPLAIN QUERY PLAN",
            (_, true) => "EXPLAIN (ANALYZE, BUFFERS)",
            (_, false) => "EXPLAIN",
        };
        let explain = Statement {
            sql: format!("{prefix} {}", statement.sql),
            ..statement.clone()
        };
        let rows = conn.query_all_raw(explain).await.unwrap();
        let column = if backend == DbBackend::Sqlite {
            "detail"
        } else {
            "QUERY PLAN"
        };
        let lines: Vec<String> = rows
            .iter()
            .map(|row| row.try_get::<String>("", column).unwrap())
            .collect();
        plans.push(lines.join("\n"));
    }
    plans
}

/// One index, `(tenant_id, member_email, user_id)`, serves the tenant's users in list order
/// (the offset page's id scan, the keyset page's range) and a member found by email, on both
/// backends: the plans of the statements the driver sends name it.
/// `ACCOUNT_EXPLAIN_MEMBERS=100000 cargo test -p account-drivers --test it email_index --
/// --nocapture` seeds that many members instead of 3,000 and prints PostgreSQL's
/// `EXPLAIN (ANALYZE, BUFFERS)` of each statement (the figures in BENCHMARKS.md).
#[tokio::test]
async fn the_list_and_members_by_email_are_served_by_the_email_index() {
    use account_models::entities::{memberships, tenants, users};
    use sea_orm::{ConnectionTrait, EntityTrait, Set, Statement};
    use std::sync::{Arc, Mutex};
    const INDEX: &str = "ix_tenant_memberships_tenant_id_member_email";
    let members: usize = std::env::var("ACCOUNT_EXPLAIN_MEMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_000);
    let print = std::env::var("ACCOUNT_EXPLAIN_MEMBERS").is_ok();
    each_backend(async |db| {
        let (tenant, other) = (seed_tenant(db, "big").await, seed_tenant(db, "small").await);
        // The big tenant's members, and as many again in another tenant, in batches.
        let ids: Vec<UserId> = (0..members * 2).map(|_| UserId::new()).collect();
        for (batch, chunk) in ids.chunks(500).enumerate() {
            let people = chunk.iter().enumerate().map(|(i, id)| users::ActiveModel {
                id: Set(*id),
                email: Set(format!("member-{}@example.test", batch * 500 + i)),
                email_verified: Set(false),
                status: Set(UserStatus::Active),
                created_at: Set(now()),
                updated_at: Set(now()),
                ..Default::default()
            });
            users::Entity::insert_many(people)
                .exec(db.conn())
                .await
                .unwrap();
            let joined = chunk.iter().enumerate().map(|(i, id)| {
                let n = batch * 500 + i;
                memberships::ActiveModel {
                    id: Set(MembershipId::new()),
                    tenant_id: Set(if n % 2 == 0 { tenant } else { other }),
                    user_id: Set(*id),
                    role: Set(MembershipRole::Member),
                    invited_by: Set(None),
                    created_at: Set(now()),
                    updated_at: Set(now()),
                    member_email: Set(format!("member-{n}@example.test")),
                }
            });
            memberships::Entity::insert_many(joined)
                .exec(db.conn())
                .await
                .unwrap();
        }
        tenants::Entity::update_many()
            .col_expr(
                tenants::Column::MemberCount,
                sea_orm::sea_query::Expr::value(i64::try_from(members).unwrap()),
            )
            .exec(db.conn())
            .await
            .unwrap();
        // Statistics, and on PostgreSQL the visibility map an index-only scan needs (what
        // autovacuum keeps after a bulk load).
        let backend = db.conn().get_database_backend();
        let analyze = if backend == sea_orm::DbBackend::Postgres {
            "VACUUM (ANALYZE)"
        } else {
            "ANALYZE"
        };
        db.conn()
            .execute_raw(Statement::from_string(backend, analyze))
            .await
            .unwrap();

        // The statements the driver sends, as sent (SQL and values).
        let mut conn = account_testkit::schema_connection(db.url()).await.unwrap();
        let sent = Arc::new(Mutex::new(Vec::<Statement>::new()));
        let sink = sent.clone();
        conn.set_metric_callback(move |info| sink.lock().unwrap().push(info.statement.clone()));
        let driver = get_accounts_facade_driver(account_drivers::Db::for_pool(&conn));
        let deep = (members / 10 * 9) as u64;
        let page = |offset| OffsetPage { limit: 50, offset };
        let mut reads = Vec::new();
        for (what, offset) in [("first page", 0), ("90 % page", deep)] {
            let listed = driver
                .fetch_users(tenant, UserFilter::default(), page(offset))
                .await
                .unwrap();
            assert_eq!(listed.items.len(), 50);
            // The second statement is the page (the first reads the total).
            reads.push((what, sent.lock().unwrap().drain(..).nth(1).unwrap()));
        }
        let after = UserPosition {
            email: "member-5000@example.test".into(),
            id: UserId::new(),
        };
        driver
            .fetch_users_after(tenant, UserFilter::default(), Some(after), 50)
            .await
            .unwrap();
        reads.push(("keyset page", sent.lock().unwrap().remove(0)));
        let found = driver
            .fetch_membership_by_email(tenant, "member-42@example.test")
            .await
            .unwrap();
        assert!(found.is_some());
        reads.push(("member by email", sent.lock().unwrap().remove(0)));

        let statements: Vec<Statement> = reads.iter().map(|(_, s)| s.clone()).collect();
        let backend_name = db.backend().name();
        for ((what, _), plan) in reads.iter().zip(plans(db.conn(), &statements, false).await) {
            assert!(
                plan.contains(INDEX),
                "{backend_name}: {what} is not served by {INDEX}:\n{plan}"
            );
        }
        if print {
            let analyzed = plans(db.conn(), &statements, true).await;
            for ((what, statement), plan) in reads.iter().zip(analyzed) {
                println!(
                    "--- {backend_name}, {members} members: {what}\n{}\n{plan}\n",
                    statement.sql
                );
            }
        }
    })
    .await;
}
