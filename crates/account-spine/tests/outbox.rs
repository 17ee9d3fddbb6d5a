//! The transactional outbox on each backend: events exist only if their transaction
//! committed, a dispatcher that dies mid-stream leaves its tenants to another (at least once,
//! nothing lost, in order), and dispatchers running together deliver every tenant's events
//! in the order they committed.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::api_keys::ApiKeyPepper;
use account_spine::runs::AdmitRun;
use account_spine::types::*;
use account_spine::{
    Actor, DispatchSettings, DomainEvent, EventSink, FixedClock, Principal, RecordedEvents,
    RequestMeta, Spine,
};
use account_testkit::backends;
use account_testkit::fixtures::{TenantSeed, seed_tenant};
use chrono::TimeDelta;
use sea_orm::ConnectionTrait;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::story::*;

fn admit(task: &str) -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: task.into(),
        input: None,
        token_estimate: 0,
    }
}

fn roomy() -> Quotas {
    Quotas {
        runs_per_day: 10_000,
        concurrent_runs: 10_000,
        ..Quotas::default()
    }
}

/// A spine on `w`'s database, another instance: its own clock (`ahead` of the world's) and
/// sink, dispatching only when asked.
fn instance(w: &World, ahead: TimeDelta, sink: Arc<dyn EventSink>) -> Spine {
    Spine::from_connection(w.db.host_conn().clone())
        .with_clock(Arc::new(FixedClock::new(now() + ahead)))
        .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap())
        .with_events(sink)
        .with_inline_dispatch(false)
}

fn admitted_runs(events: &[DomainEvent], tenant: TenantId) -> Vec<RunId> {
    events
        .iter()
        .filter_map(|event| match event {
            DomainEvent::RunAdmitted { tenant_id, run_id } if *tenant_id == tenant => Some(*run_id),
            _ => None,
        })
        .collect()
}

/// A sink that dies (panics, as a killed process stops) at its `after`th event.
#[derive(Debug)]
struct DyingSink {
    seen: AtomicUsize,
    after: usize,
}

impl EventSink for DyingSink {
    fn publish(&self, _: &DomainEvent) {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            panic!("the dispatcher's process died");
        }
    }
}

#[tokio::test]
async fn a_rolled_back_host_transactions_events_are_never_delivered() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-rollback");
        let mut txn = w.spine.begin_host_transaction().await.unwrap();
        txn.execute(&owner, admit("rolled back")).await.unwrap();
        txn.rollback().await.unwrap();
        let report = w.spine.dispatch_events().await.unwrap();
        assert_eq!(report.events, 0, "{}", w.backend);
        assert!(w.events.all().is_empty(), "{}", w.backend);
        assert_eq!(w.spine.undispatched_events().await.unwrap(), 0);

        // The same call committed: its event is written, then delivered.
        let mut txn = w.spine.begin_host_transaction().await.unwrap();
        let run = txn.execute(&owner, admit("committed")).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(admitted_runs(&w.events.all(), w.tenant), vec![run.id]);
    }
}

#[tokio::test]
async fn a_dead_dispatchers_tenant_is_taken_over_and_delivered_whole_in_order() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let writer = w.spine.clone().with_inline_dispatch(false);
        let owner = w.owner("req-writer");
        let mut runs = Vec::new();
        for i in 0..20 {
            runs.push(
                writer
                    .admit_run(&owner, admit(&format!("run {i}")))
                    .await
                    .unwrap()
                    .id,
            );
        }
        assert_eq!(writer.undispatched_events().await.unwrap(), 20);

        // The first dispatcher dies at its 5th event, holding the tenant's lease (30 s).
        let dying = Arc::new(DyingSink {
            seen: AtomicUsize::new(0),
            after: 5,
        });
        let first = instance(&w, TimeDelta::zero(), dying.clone());
        let died = tokio::spawn(async move { first.dispatch_events().await }).await;
        assert!(died.is_err(), "{}: the first dispatcher died", w.backend);
        assert_eq!(dying.seen.load(Ordering::SeqCst), 5);

        // Within the lease nobody else takes the tenant; after it, another dispatcher does
        // and delivers everything from the last event the cursor passed (here: all).
        let recorded = Arc::new(RecordedEvents::default());
        let early = instance(&w, TimeDelta::seconds(10), recorded.clone());
        assert_eq!(
            early.dispatch_events().await.unwrap().events,
            0,
            "{}",
            w.backend
        );
        let later = instance(&w, TimeDelta::seconds(31), recorded.clone());
        let report = later.dispatch_events().await.unwrap();
        assert_eq!(report.events, 20, "{}", w.backend);
        assert_eq!(
            admitted_runs(&recorded.all(), w.tenant),
            runs,
            "{}",
            w.backend
        );
        assert_eq!(later.undispatched_events().await.unwrap(), 0);
        assert_eq!(
            later.dispatch_events().await.unwrap().events,
            0,
            "once only"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatchers_running_together_deliver_each_tenants_events_in_commit_order() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let other = seed_tenant(
            w.db.conn(),
            &TenantSeed::new(
                "Beta",
                "free",
                account_testkit::fixtures::Limits {
                    runs_per_day: 10_000,
                    concurrent_runs: 10_000,
                    ..support::limits(PlanCode::free())
                },
                now(),
            )
            .user("beta-owner", Some("owner")),
        )
        .await;
        let tenants = [
            (w.tenant, w.owner("req-a")),
            (
                TenantId::from_uuid(other.id),
                Principal {
                    tenant_id: TenantId::from_uuid(other.id),
                    actor: Actor::User {
                        user_id: UserId::from_uuid(other.users[0]),
                        role: MembershipRole::Owner,
                    },
                    request: RequestMeta::default(),
                },
            ),
        ];
        let writer = w.spine.clone().with_inline_dispatch(false);

        // One sink for both dispatchers: what it records is the order of delivery.
        let recorded = Arc::new(RecordedEvents::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut dispatchers = Vec::new();
        for _ in 0..2 {
            let spine = instance(&w, TimeDelta::zero(), recorded.clone());
            let mut stopped = stopped.clone();
            let settings = DispatchSettings::default()
                .with_poll(Duration::from_millis(5))
                .with_batch(7);
            dispatchers.push(tokio::spawn(async move {
                spine
                    .run_dispatcher(settings, async move {
                        let _ = stopped.changed().await;
                    })
                    .await;
            }));
        }
        // Four writers per tenant, racing.
        let mut writers = Vec::new();
        for (_, principal) in &tenants {
            for n in 0..4 {
                let (writer, principal) = (writer.clone(), principal.clone());
                writers.push(tokio::spawn(async move {
                    for i in 0..10 {
                        let task = format!("writer {n} run {i}");
                        writer.admit_run(&principal, admit(&task)).await.unwrap();
                    }
                }));
            }
        }
        for task in writers {
            task.await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while writer.undispatched_events().await.unwrap() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: not dispatched",
                w.backend
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        for task in dispatchers {
            task.await.unwrap();
        }

        // Each tenant's runs in the order their events committed (the stream's `seq`).
        let all = recorded.all();
        let conn = w.db.second_connection().await.unwrap();
        let rows = conn
            .query_all_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                "SELECT tenant_id, seq, payload FROM event_outbox ORDER BY seq",
            ))
            .await
            .unwrap();
        for (tenant, _) in &tenants {
            let committed: Vec<RunId> = rows
                .iter()
                .filter(|row| {
                    let id: uuid::Uuid = row.try_get("", "tenant_id").unwrap();
                    id == tenant.as_uuid()
                })
                .map(|row| {
                    let payload: String = row.try_get("", "payload").unwrap();
                    let data: serde_json::Value = serde_json::from_str(&payload).unwrap();
                    serde_json::from_value(data["run_id"].clone()).unwrap()
                })
                .collect();
            assert_eq!(committed.len(), 40, "{}", w.backend);
            let mut delivered = admitted_runs(&all, *tenant);
            // At least once: a repeat may follow a lease lost midway, never a gap or a swap.
            delivered.dedup();
            assert_eq!(delivered, committed, "{}: {tenant}", w.backend);
        }
    }
}
