//! Use cases in a host's own transaction, on each backend: the host's row and ours commit or
//! roll back together; events go out once, and only after the host commits; a refusal rolls
//! back to its savepoint and leaves the host's earlier writes and the refusal row.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::runs::AdmitRun;
use account_spine::types::*;
use account_spine::{
    Actor, DomainEvent, FixedClock, Principal, RecordedEvents, RequestMeta, Spine,
};
use account_testkit::fixtures::{TenantSeed, seed_tenant};
use account_testkit::{backends, fresh_db};
use chrono::{TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::sync::Arc;

async fn count(conn: &DatabaseConnection, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let statement = sea_orm::Statement::from_string(conn.get_database_backend(), sql);
    let row = conn.query_one_raw(statement).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "in the host's transaction".into(),
        input: None,
        token_estimate: 0,
    }
}

fn member(tenant: TenantId, user: uuid::Uuid, role: MembershipRole) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User {
            user_id: UserId::from_uuid(user),
            role,
        },
        request: RequestMeta::default(),
    }
}

fn admitted(events: &RecordedEvents) -> usize {
    let all = events.all();
    all.iter()
        .filter(|e| matches!(e, DomainEvent::RunAdmitted { .. }))
        .count()
}

#[tokio::test]
async fn the_hosts_writes_and_ours_commit_or_roll_back_together() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let conn = db.conn();
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let seed = TenantSeed::new("Acme", "free", support::limits(PlanCode::free()), at)
            .user("owner", Some("owner"))
            .user("viewer", Some("viewer"));
        let seeded = seed_tenant(conn, &seed).await;
        let tenant = TenantId::from_uuid(seeded.id);
        let owner = member(tenant, seeded.users[0], MembershipRole::Owner);
        let viewer = member(tenant, seeded.users[1], MembershipRole::Viewer);
        // The host's table, in the host's own schema (or main database on SQLite).
        let host = db.host_conn();
        host.execute_unprepared("CREATE TABLE host_orders (id VARCHAR(20) PRIMARY KEY)")
            .await
            .unwrap();
        let events = Arc::new(RecordedEvents::default());
        let spine = Spine::from_connection(host.clone())
            .with_clock(Arc::new(FixedClock::new(at)))
            .with_events(events.clone());
        let other = db.second_connection().await.unwrap();
        let other_host = db.second_host_connection().await.unwrap();

        // The host rolls back: neither its order nor the run, no counter, no event.
        let mut txn = spine.begin_host_transaction().await.unwrap();
        let host_insert = "INSERT INTO host_orders (id) VALUES ('o-1')";
        txn.connection()
            .execute_unprepared(host_insert)
            .await
            .unwrap();
        txn.execute(&owner, admit()).await.unwrap();
        assert_eq!(
            admitted(&events),
            0,
            "{name}: nothing before the host commits"
        );
        txn.rollback().await.unwrap();
        assert_eq!(
            count(&other_host, "host_orders", "1 = 1").await,
            0,
            "{name}"
        );
        assert_eq!(count(&other, "worker_runs", "1 = 1").await, 0, "{name}");
        assert_eq!(
            count(&other, "audit_log", "action = 'run.admitted'").await,
            0
        );
        assert_eq!(
            count(&other, "tenants", "runs_today > 0").await,
            0,
            "{name}"
        );
        assert_eq!(admitted(&events), 0, "{name}: a rollback publishes nothing");

        // The host commits: both rows, the audit row, and the event once, after commit.
        let mut txn = spine.begin_host_transaction().await.unwrap();
        let host_insert = "INSERT INTO host_orders (id) VALUES ('o-2')";
        txn.connection()
            .execute_unprepared(host_insert)
            .await
            .unwrap();
        let run = txn.execute(&owner, admit()).await.unwrap();
        assert_eq!(admitted(&events), 0, "{name}");
        txn.commit().await.unwrap();
        assert_eq!(
            count(&other_host, "host_orders", "id = 'o-2'").await,
            1,
            "{name}"
        );
        assert_eq!(count(&other, "worker_runs", "1 = 1").await, 1, "{name}");
        assert_eq!(run.tenant_id, tenant);
        assert_eq!(
            count(&other, "audit_log", "action = 'run.admitted'").await,
            1
        );
        assert_eq!(admitted(&events), 1, "{name}: published once, on commit");

        // A refusal rolls back to its savepoint: the host's earlier row stays, and so does
        // the refusal's audit row, in the host's transaction.
        let mut txn = spine.begin_host_transaction().await.unwrap();
        let host_insert = "INSERT INTO host_orders (id) VALUES ('o-3')";
        txn.connection()
            .execute_unprepared(host_insert)
            .await
            .unwrap();
        let refused = txn.execute(&viewer, admit()).await.unwrap_err();
        assert_eq!(
            account_spine::ErrorCode::code(&refused),
            "forbidden",
            "{name}"
        );
        txn.commit().await.unwrap();
        assert_eq!(
            count(&other_host, "host_orders", "id = 'o-3'").await,
            1,
            "{name}"
        );
        assert_eq!(count(&other, "worker_runs", "1 = 1").await, 1, "{name}");
        let refusals = "action = 'authorization.refused'";
        assert_eq!(count(&other, "audit_log", refusals).await, 1, "{name}");
        assert_eq!(admitted(&events), 1, "{name}");

        // Dropping the value without committing rolls back too.
        let mut txn = spine.begin_host_transaction().await.unwrap();
        txn.execute(&owner, admit()).await.unwrap();
        drop(txn);
        assert_eq!(count(&other, "worker_runs", "1 = 1").await, 1, "{name}");
        assert_eq!(admitted(&events), 1, "{name}");
    }
}
