//! Run use cases end to end through the spine, on each backend: committed changes are
//! visible from a second connection with their audit row; a failure after the first write
//! leaves nothing behind and publishes nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::runs::AdmitRun;
use account_spine::types::*;
use account_spine::{
    Actor, DomainEvent, FixedClock, Principal, RecordedEvents, RequestMeta, Spine, SpineError,
};
use account_testkit::fixtures::{TenantSeed, seed_tenant};
use account_testkit::{TestDb, backends, fresh_db};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::sync::Arc;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn count(conn: &DatabaseConnection, table: &'static str, filter: &str) -> i64 {
    let backend = conn.get_database_backend();
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

struct Fixture {
    db: TestDb,
    spine: Spine,
    events: Arc<RecordedEvents>,
    tenant: TenantId,
    /// A member, then a viewer, of the tenant.
    member: UserId,
    viewer: UserId,
}

async fn fixture(backend: &account_testkit::Backend) -> Fixture {
    let db = fresh_db(backend).await.unwrap();
    // A tenant on the free plan with a member and a viewer: the spine reads their roles.
    let seed = TenantSeed::new("Acme", "free", support::limits(PlanCode::free()), now())
        .user("ann", Some("member"))
        .user("vic", Some("viewer"));
    let seeded = seed_tenant(db.conn(), &seed).await;
    let (tenant, member, viewer) = (
        TenantId::from_uuid(seeded.id),
        UserId::from_uuid(seeded.users[0]),
        UserId::from_uuid(seeded.users[1]),
    );
    let events = Arc::new(RecordedEvents::default());
    let spine = Spine::from_connection(db.host_conn().clone())
        .with_clock(Arc::new(FixedClock::new(now())))
        .with_events(events.clone());
    Fixture {
        db,
        spine,
        events,
        tenant,
        member,
        viewer,
    }
}

/// The fixture's user who has `role` (a member or a viewer).
fn member(f: &Fixture, role: MembershipRole) -> Principal {
    let user_id = if role == MembershipRole::Viewer {
        f.viewer
    } else {
        f.member
    };
    Principal {
        tenant_id: f.tenant,
        actor: Actor::User { user_id, role },
        request: RequestMeta::default().with_request_id("req-1"),
    }
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
        token_estimate: 0,
    }
}

#[tokio::test]
async fn an_admitted_run_is_committed_with_its_audit_row_and_event() {
    for backend in backends().unwrap() {
        let f = fixture(&backend).await;
        let run = f
            .spine
            .admit_run(&member(&f, MembershipRole::Member), admit())
            .await
            .unwrap();

        let other = f.db.second_connection().await.unwrap();
        assert_eq!(
            count(&other, "worker_runs", "1 = 1").await,
            1,
            "{}",
            backend.name()
        );
        assert_eq!(
            count(
                &other,
                "audit_log",
                "action = 'run.admitted' AND request_id = 'req-1'"
            )
            .await,
            1
        );
        assert_eq!(count(&other, "tenants", "runs_today = 1").await, 1);
        assert_eq!(
            f.events.all(),
            vec![DomainEvent::RunAdmitted {
                tenant_id: f.tenant,
                run_id: run.id
            }]
        );
    }
}

#[tokio::test]
async fn a_failure_after_the_first_write_leaves_nothing_and_publishes_nothing() {
    for backend in backends().unwrap() {
        let f = fixture(&backend).await;
        // The admission bumps the tenant's counters, then the run insert fails: the key
        // it references does not exist.
        let ghost_key = Principal {
            tenant_id: f.tenant,
            actor: Actor::ApiKey {
                key_id: ApiKeyId::new(),
                permissions: vec!["run:*".into()],
                allowed_workers: None,
                max_concurrent_runs: None,
                rate_limit_rpm: None,
                user_id: None,
            },
            request: RequestMeta::default(),
        };
        let error = f.spine.admit_run(&ghost_key, admit()).await.unwrap_err();
        assert!(matches!(error, SpineError::Run(_)), "{error:?}");

        let other = f.db.second_connection().await.unwrap();
        assert_eq!(
            count(&other, "tenants", "runs_today = 0").await,
            1,
            "the counter update rolled back"
        );
        assert_eq!(count(&other, "worker_runs", "1 = 1").await, 0);
        assert_eq!(
            count(&other, "audit_log", "action = 'run.admitted'").await,
            0
        );
        assert!(f.events.all().is_empty());
    }
}

#[tokio::test]
async fn refusals_are_typed_and_audited() {
    for backend in backends().unwrap() {
        let f = fixture(&backend).await;
        let error = f
            .spine
            .admit_run(&member(&f, MembershipRole::Viewer), admit())
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                SpineError::Forbidden {
                    operation: "runs.admit",
                    ..
                }
            ),
            "{error:?}"
        );
        let other = f.db.second_connection().await.unwrap();
        assert_eq!(
            count(&other, "audit_log", "action = 'authorization.refused'").await,
            1
        );

        // A suspended tenant reads but does not run.
        other
            .execute_unprepared("UPDATE tenants SET status = 'suspended'")
            .await
            .unwrap();
        let error = f
            .spine
            .admit_run(&member(&f, MembershipRole::Member), admit())
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                SpineError::TenantStatusForbids {
                    status: TenantStatus::Suspended,
                    ..
                }
            ),
            "{error:?}"
        );
        let page = f
            .spine
            .list_runs(
                &member(&f, MembershipRole::Viewer),
                &Default::default(),
                account_spine::OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 0);
    }
}

#[tokio::test]
async fn quota_refusals_publish_an_event_after_rollback() {
    for backend in backends().unwrap() {
        let f = fixture(&backend).await;
        for _ in 0..5 {
            f.spine
                .admit_run(&member(&f, MembershipRole::Member), admit())
                .await
                .unwrap();
        }
        let error = f
            .spine
            .admit_run(&member(&f, MembershipRole::Member), admit())
            .await
            .unwrap_err();
        assert_eq!(account_spine::ErrorCode::http_status(&error), 429);
        assert!(f.events.all().contains(&DomainEvent::QuotaRefused {
            tenant_id: f.tenant,
            quota: "quota_concurrent_runs"
        }));
    }
}

#[test]
fn every_operation_declares_authority_and_audit() {
    for op in account_spine::Operation::ALL {
        let _ = op.authority();
        let _ = op.capability();
        assert!(op.name().contains('.'));
    }
}
