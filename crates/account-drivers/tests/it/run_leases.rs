//! Run leases: the heartbeat's renewal, the reaper's cross-tenant scan and its conditional
//! expiry, each one statement, each scoped to the run's tenant but the scan.

use crate::support::*;
use account_drivers::runs::leases::LEASE_EXPIRED;
use account_drivers::runs::{RunCompletion, RunSnapshot};
use account_drivers::types::*;
use account_drivers::{Db, StatementCounter, get_tenant_driver};
use account_testkit::TestDb;

/// A queued run of `tenant` admitted at `now()` whose lease lapses `lease` seconds later.
async fn run(db: &TestDb, tenant: TenantId, lease: i64) -> RunSnapshot {
    let mut run = crate::runs::new_run(tenant, None, "business-builder", 0);
    run.lease_expires_at = later(lease);
    crate::runs::admit_at(&get_tenant_driver(handle(db)), run, now()).await
}

#[tokio::test]
async fn a_heartbeat_renews_the_lease_and_starts_the_run_once() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "beats").await;
        let other = seed_tenant(db, "beats-other").await;
        let queued = run(db, tenant, 60).await;
        assert_eq!(queued.status, RunStatus::Queued);
        assert_eq!(queued.lease_expires_at, Some(later(60)));
        assert_eq!(queued.started_at, None);

        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let first = driver
            .heartbeat_run(tenant, queued.id, later(80), later(20))
            .await
            .unwrap()
            .expect("a queued run beats");
        assert_eq!(
            counter.take(),
            2,
            "the renewal finds no running run; the start"
        );
        assert!(first.started);
        assert_eq!(first.run.status, RunStatus::Running);
        assert_eq!(first.run.started_at, Some(later(20)));
        assert_eq!(first.run.lease_expires_at, Some(later(80)));

        let second = driver
            .heartbeat_run(tenant, queued.id, later(100), later(40))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            counter.take(),
            1,
            "a running run's beat: one conditional update"
        );
        assert!(!second.started);
        assert_eq!(
            second.run.started_at,
            Some(later(20)),
            "started at the first beat"
        );
        assert_eq!(second.run.lease_expires_at, Some(later(100)));

        // Another tenant cannot renew it, and learns nothing.
        let foreign = driver
            .heartbeat_run(other, queued.id, later(500), later(41))
            .await
            .unwrap();
        assert_eq!(foreign, None);
        let stored = driver.fetch_run_by_id(tenant, queued.id).await.unwrap();
        assert_eq!(stored.unwrap().lease_expires_at, Some(later(100)));

        // A finished run keeps its lease as it ended.
        driver
            .update_run_completed(tenant, queued.id, RunCompletion::default(), later(50))
            .await
            .unwrap()
            .unwrap();
        let late = driver
            .heartbeat_run(tenant, queued.id, later(200), later(60))
            .await
            .unwrap();
        assert_eq!(late, None);
        let stored = driver.fetch_run_by_id(tenant, queued.id).await.unwrap();
        assert_eq!(stored.unwrap().lease_expires_at, Some(later(100)));
    })
    .await;
}

#[tokio::test]
async fn the_scan_finds_lapsed_unfinished_runs_of_every_tenant_longest_lapsed_first() {
    each_backend(async |db| {
        let a = seed_tenant(db, "scan-a").await;
        let b = seed_tenant(db, "scan-b").await;
        let lapsed_late = run(db, a, 30).await;
        let lapsed_early = run(db, b, 10).await;
        let alive = run(db, a, 300).await;
        let finished = run(db, b, 5).await;
        let driver = get_tenant_driver(handle(db));
        driver
            .update_run_completed(b, finished.id, RunCompletion::default(), later(1))
            .await
            .unwrap()
            .unwrap();

        let counter = StatementCounter::new();
        let scan = get_tenant_driver(handle(db).counting(&counter));
        let found = scan.fetch_lapsed_leases(later(60), 10).await.unwrap();
        assert_eq!(counter.take(), 1);
        let ids: Vec<_> = found.iter().map(|l| (l.tenant_id, l.id)).collect();
        assert_eq!(ids, [(b, lapsed_early.id), (a, lapsed_late.id)]);
        assert_eq!(found[0].lease_expires_at, later(10));
        assert!(
            !ids.iter()
                .any(|(_, id)| *id == alive.id || *id == finished.id)
        );

        let first = scan.fetch_lapsed_leases(later(60), 1).await.unwrap();
        assert_eq!(first.len(), 1, "bounded by the limit");
        assert_eq!(first[0].id, lapsed_early.id);
        // A lease lapses strictly after its instant.
        assert!(
            scan.fetch_lapsed_leases(later(10), 10)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn an_expiry_finishes_a_lapsed_run_once_and_never_a_finished_or_renewed_one() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "expire").await;
        let other = seed_tenant(db, "expire-other").await;
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));

        let lapsed = run(db, tenant, 30).await;
        assert_eq!(
            driver
                .expire_run_lease(tenant, lapsed.id, later(30))
                .await
                .unwrap(),
            None,
            "not lapsed yet at its instant"
        );
        assert_eq!(
            driver
                .expire_run_lease(other, lapsed.id, later(31))
                .await
                .unwrap(),
            None,
            "another tenant's id never matches"
        );
        counter.take();
        let expired = driver
            .expire_run_lease(tenant, lapsed.id, later(31))
            .await
            .unwrap()
            .expect("lapsed: expired");
        assert_eq!(counter.take(), 1, "one conditional update");
        assert_eq!(expired.status, RunStatus::Crashed);
        assert_eq!(expired.success, Some(false));
        assert_eq!(expired.error.as_deref(), Some(LEASE_EXPIRED));
        assert_eq!(expired.completed_at, Some(later(31)));
        assert_eq!(expired.lease_expires_at, Some(later(30)));
        // Exactly once: a second expiry, a completion and a heartbeat all find it finished.
        let again = driver.expire_run_lease(tenant, lapsed.id, later(40));
        assert_eq!(again.await.unwrap(), None);
        let completion = driver.update_run_completed(
            tenant,
            lapsed.id,
            RunCompletion {
                success: true,
                ..RunCompletion::default()
            },
            later(41),
        );
        assert_eq!(completion.await.unwrap(), None);
        let beat = driver.heartbeat_run(tenant, lapsed.id, later(100), later(42));
        assert_eq!(beat.await.unwrap(), None);

        // A completed run is never expired, whatever its lease.
        let completed = run(db, tenant, 30).await;
        driver
            .update_run_completed(tenant, completed.id, RunCompletion::default(), later(10))
            .await
            .unwrap()
            .unwrap();
        let late = driver.expire_run_lease(tenant, completed.id, later(60));
        assert_eq!(late.await.unwrap(), None);

        // A renewed lease is not lapsed.
        let renewed = run(db, tenant, 30).await;
        driver
            .heartbeat_run(tenant, renewed.id, later(90), later(25))
            .await
            .unwrap()
            .unwrap();
        let early = driver.expire_run_lease(tenant, renewed.id, later(60));
        assert_eq!(early.await.unwrap(), None);
        let stored = driver.fetch_run_by_id(tenant, renewed.id).await.unwrap();
        assert_eq!(stored.unwrap().status, RunStatus::Running);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_racing_first_heartbeats_exactly_one_starts_the_run() {
    each_backend(async |db| {
        let tenant = seed_tenant(db, "first-beats").await;
        for round in 0..10 {
            let queued = run(db, tenant, 60).await;
            let beats: Vec<_> = (0..8)
                .map(|i| {
                    let conn = db.conn().clone();
                    tokio::spawn(async move {
                        let driver = get_tenant_driver(Db::for_pool(&conn).counting(&GUARD));
                        driver
                            .heartbeat_run(tenant, queued.id, later(100 + i), later(10))
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut started = 0;
            for beat in beats {
                let beat = beat.await.unwrap().expect("every beat renews the lease");
                assert_eq!(beat.run.status, RunStatus::Running);
                started += usize::from(beat.started);
            }
            assert_eq!(started, 1, "round {round}");
            // Finish it, so the next round's admission has a slot (free plan: 5 at once).
            let driver = get_tenant_driver(handle(db));
            let done = driver
                .update_run_completed(tenant, queued.id, RunCompletion::default(), later(200))
                .await
                .unwrap()
                .unwrap();
            let period = crate::runs::period();
            driver.settle_run(&done, period, later(200)).await.unwrap();
        }
    })
    .await;
}
