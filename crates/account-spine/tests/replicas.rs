//! Read replicas (PostgreSQL): reads go to a streaming replica, a principal's read right after
//! its own write sees the write, and a replica that lags or fails hands reads to the primary
//! without a failed call.
//!
//! The replica is the one `cargo xtask pg start` and `cargo xtask ci` start beside the test
//! server (`ACCOUNT_TEST_PG_REPLICA_URL`); the tests drive it with SQL only, pausing its
//! replay (`pg_wal_replay_pause()`) to make it lag on purpose, so they take turns (one lock)
//! and resume replay even when they fail. One test really stops a replica's server and
//! starts it again: the spare replica (`ACCOUNT_TEST_PG_SPARE_REPLICA_URL`, see
//! `account_testkit::replica::spare_replica`), which no other test reads from. Skipped
//! without PostgreSQL, an error when `ACCOUNT_TEST_REQUIRE_PG=1` names no replica.
//!
//! Seen failing without read-your-writes (`Replicas::needed` answering `None`):
//! `a_read_right_after_the_principals_own_write_sees_it` read the paused replica and got
//! `run_not_found` for the run the same key had just admitted; and without
//! `HostTransaction::commit` recording its writers,
//! `a_host_transactions_writer_reads_its_write_once_the_host_commits` failed the same way;
//! without the fallback (`is_replica_failure` answering `false`),
//! `a_stopped_replica_hands_every_read_to_the_primary_until_it_is_back` had 3 of 1,391 reads
//! fail with 57P01 (the stop ending the replica's sessions mid-read).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout, clippy::print_stderr)] // figures and a skip's reason are the report

use account_spine::api_keys::ApiKeyPepper;
use account_spine::runs::AdmitRun;
use account_spine::types::RunId;
use account_spine::{DatabaseConfig, ErrorCode, OperatorPrincipal, Principal, RequestMeta, Spine};
use account_testkit::replica::{ReplayPaused, pause_replay, spare_replica};
use account_testkit::{TestDb, backends, fresh_db, pg_replica};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The tests share one replica and pause its replay: one at a time.
static REPLICA: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Setup {
    db: TestDb,
    replica_url: String,
    /// A superuser session on the replica's copy of the test database.
    replica: DatabaseConnection,
    spine: Spine,
    /// The owner's key: the writer.
    writer: Principal,
    /// The owner as a member: another principal of the same tenant.
    other: Principal,
}

fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    }
}

async fn scalar(conn: &DatabaseConnection, sql: &str) -> Option<String> {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .ok()??;
    row.try_get_by_index::<Option<String>>(0).ok()?
}

/// A fresh database, its copy on the shared replica once replayed, and a spine reading from
/// the replica (plus `extra` replica URLs) with `max_lag`. `None` when replicas are not under
/// test.
async fn setup(max_lag: Duration, extra: &[&str]) -> Option<Setup> {
    let Some(replica_admin) = pg_replica().unwrap() else {
        eprintln!("skipped: no PostgreSQL replica (ACCOUNT_TEST_PG_REPLICA_URL)");
        return None;
    };
    Some(setup_on(&replica_admin, max_lag, extra).await)
}

/// [`setup`] on the replica whose admin URL is `replica_admin`.
async fn setup_on(replica_admin: &str, max_lag: Duration, extra: &[&str]) -> Setup {
    let backend = backends()
        .unwrap()
        .into_iter()
        .find(|b| b.name() == "postgres")
        .expect("a replica is named, so PostgreSQL is under test");
    let db = fresh_db(&backend).await.unwrap();
    let replica_url = db.caught_up_replica(replica_admin).await.unwrap();
    let replica = Database::connect(replica_url.as_str()).await.unwrap();
    let mut config = DatabaseConfig::new(db.url());
    config.replica_urls = std::iter::once(replica_url.clone())
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
    config.replica_max_lag = max_lag;
    config.connect_timeout = Duration::from_millis(500);
    let spine = Spine::connect(&config)
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
    let (created, key) = spine
        .bootstrap(&operator(), "owner@example.com", "Replicated")
        .await
        .unwrap();
    let writer = spine
        .authenticate_api_key(key.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap();
    let other = spine
        .user_principal(
            created.tenant.id,
            created.owner.user_id,
            RequestMeta::default(),
        )
        .await
        .unwrap();
    // Everything so far (the tenant, the key) is on the replica before a test pauses it.
    db.caught_up_replica(replica_admin).await.unwrap();
    let setup = Setup {
        db,
        replica_url,
        replica,
        spine,
        writer,
        other,
    };
    setup.wait_until_usable(0).await;
    setup
}

impl Setup {
    async fn wait_until_usable(&self, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spine.replica_status()[index].usable {
            assert!(
                Instant::now() < deadline,
                "the replica never became usable: {:?}",
                self.spine.replica_status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn admit(&self, principal: &Principal) -> RunId {
        let run = AdmitRun {
            worker_id: "business-builder".into(),
            task: "replicated".into(),
            input: None,
            token_estimate: 0,
        };
        self.spine.admit_run(principal, run).await.unwrap().id
    }

    /// Whether the replica holds `run` (read there directly).
    async fn replica_has(&self, run: RunId) -> bool {
        let sql = format!("SELECT count(*)::text FROM account.worker_runs WHERE id = '{run}'");
        scalar(&self.replica, &sql).await.as_deref() == Some("1")
    }

    async fn pause_replay(&self) -> ReplayPaused {
        pause_replay(&self.replica_url).await.unwrap()
    }
}

#[tokio::test]
async fn reads_are_served_by_the_replica() {
    let _turn = REPLICA.lock().await;
    let Some(setup) = setup(Duration::from_secs(2), &[]).await else {
        return;
    };
    let run = setup.admit(&setup.writer).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.replica_has(run).await {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = setup.spine.metrics().reads;
    for _ in 0..20 {
        let found = setup.spine.get_run(&setup.writer, run).await.unwrap();
        assert_eq!(found.id, run);
    }
    let after = setup.spine.metrics().reads;
    assert_eq!(after.replica - before.replica, 20, "{after:?}");
    assert_eq!(after.primary, before.primary, "{after:?}");
    assert_eq!(setup.spine.replica_status()[0].reads, after.replica);

    // What the replica serves is the replica's: with its replay paused, a run admitted by
    // another principal is not there yet for this one.
    let paused = setup.pause_replay().await;
    let unseen = setup.admit(&setup.other).await;
    let error = setup
        .spine
        .get_run(&setup.writer, unseen)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "run_not_found");
    drop(paused);
    setup.wait_until_usable(0).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while setup.spine.get_run(&setup.writer, unseen).await.is_err() {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(setup.db);
}

#[tokio::test]
async fn a_read_right_after_the_principals_own_write_sees_it() {
    let _turn = REPLICA.lock().await;
    let Some(setup) = setup(Duration::from_secs(5), &[]).await else {
        return;
    };
    let paused = setup.pause_replay().await;
    let before = setup.spine.metrics().reads;
    let run = setup.admit(&setup.writer).await;
    // The writer reads its write at once, from the primary: the replica lacks it.
    let found = setup.spine.get_run(&setup.writer, run).await.unwrap();
    assert_eq!(found.id, run);
    assert!(!setup.replica_has(run).await, "replay was paused");
    // Another principal has no such claim: the (lagging, within bound) replica serves it.
    let error = setup.spine.get_run(&setup.other, run).await.unwrap_err();
    assert_eq!(error.code(), "run_not_found");
    let after = setup.spine.metrics().reads;
    assert_eq!(after.primary - before.primary, 1, "{after:?}");
    assert_eq!(after.replica - before.replica, 1, "{after:?}");

    // Once replayed, the writer's reads go back to the replica.
    drop(paused);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.replica_has(run).await {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = setup.spine.metrics().reads;
    setup.spine.get_run(&setup.writer, run).await.unwrap();
    let after = setup.spine.metrics().reads;
    assert_eq!(after.replica - before.replica, 1, "{after:?}");
    drop(setup.db);
}

#[tokio::test]
async fn a_host_transactions_writer_reads_its_write_once_the_host_commits() {
    let _turn = REPLICA.lock().await;
    let Some(setup) = setup(Duration::from_secs(5), &[]).await else {
        return;
    };
    let paused = setup.pause_replay().await;
    let mut txn = setup.spine.begin_host_transaction().await.unwrap();
    let run = AdmitRun {
        worker_id: "business-builder".into(),
        task: "in the host's transaction".into(),
        input: None,
        token_estimate: 0,
    };
    let run = txn.execute(&setup.writer, run).await.unwrap().id;
    txn.commit().await.unwrap();
    let found = setup.spine.get_run(&setup.writer, run).await.unwrap();
    assert_eq!(found.id, run);
    assert!(!setup.replica_has(run).await, "replay was paused");
    drop(paused);
    drop(setup.db);
}

#[tokio::test]
async fn lagging_unreachable_and_failing_replicas_hand_reads_to_the_primary() {
    let _turn = REPLICA.lock().await;
    let dead = "postgres://postgres@127.0.0.1:1/nothing";
    let Some(setup) = setup(Duration::from_millis(300), &[dead]).await else {
        return;
    };
    // An unreachable replica is never used and fails nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while setup.spine.replica_status()[1].failures == 0 {
        assert!(
            Instant::now() < deadline,
            "the dead replica was never polled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = setup.spine.replica_status();
    assert!(!status[1].usable && status[1].failures > 0, "{status:?}");
    assert_eq!(status[1].address, "127.0.0.1:1/nothing");

    // Lagging past the bound: replay paused while the primary moves on.
    let paused = setup.pause_replay().await;
    let run = setup.admit(&setup.writer).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = setup.spine.replica_status();
    assert!(
        !status[0].usable
            && status[0]
                .lag
                .is_some_and(|lag| lag > Duration::from_millis(300)),
        "{status:?}"
    );
    let before = setup.spine.metrics().reads;
    for _ in 0..10 {
        // The other principal has no write to wait for: only the lag sends it to the primary.
        let found = setup.spine.get_run(&setup.other, run).await.unwrap();
        assert_eq!(found.id, run);
    }
    let after = setup.spine.metrics().reads;
    assert_eq!(after.primary - before.primary, 10, "{after:?}");
    assert_eq!(after.replica, before.replica, "{after:?}");
    drop(paused);
    setup.wait_until_usable(0).await;

    // A replica whose connections die under a read: the read runs again on the primary.
    let kill = "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity \
                WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reads = 0;
    while setup.spine.metrics().reads.fallbacks == 0 {
        assert!(
            Instant::now() < deadline,
            "no read met a dead replica connection: {:?}",
            setup.spine.metrics().reads
        );
        setup.wait_until_usable(0).await;
        setup.spine.get_run(&setup.other, run).await.unwrap();
        setup.replica.execute_unprepared(kill).await.unwrap();
        setup.spine.get_run(&setup.other, run).await.unwrap();
        reads += 2;
    }
    let metrics = setup.spine.metrics().reads;
    assert!(metrics.fallbacks >= 1, "{metrics:?} after {reads} reads");
    drop(setup.db);
}

#[tokio::test]
async fn a_write_on_one_instance_is_read_on_another_with_its_consistency_token() {
    let _turn = REPLICA.lock().await;
    let Some(setup) = setup(Duration::from_secs(30), &[]).await else {
        return;
    };
    // A second instance on the same primary and replica: it knows nothing of the first's writes.
    let mut config = DatabaseConfig::new(setup.db.url());
    config.replica_urls = vec![setup.replica_url.clone()];
    config.replica_max_lag = Duration::from_secs(30);
    let other_instance = Spine::connect(&config)
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !other_instance.replica_status()[0].usable {
        assert!(Instant::now() < deadline, "never usable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        setup.spine.consistency_token(&setup.writer),
        None,
        "no write yet"
    );

    let paused = setup.pause_replay().await;
    let run = setup.admit(&setup.writer).await;
    let token = setup
        .spine
        .consistency_token(&setup.writer)
        .expect("the write's position");
    assert_eq!(
        token.to_string().parse(),
        Ok(token),
        "what a client sends back"
    );
    // The other principal of the tenant wrote nothing: no token of its own.
    assert_eq!(setup.spine.consistency_token(&setup.other), None);

    // Without the token the other instance reads the paused replica, which lacks the run...
    let error = other_instance
        .get_run(&setup.writer, run)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "run_not_found");
    // ...with it, the run is found (on the primary), and the token is handed on unchanged.
    let mut holding = setup.writer.clone();
    holding.request = RequestMeta::default().with_read_after(token);
    let before = other_instance.metrics().reads;
    assert_eq!(other_instance.get_run(&holding, run).await.unwrap().id, run);
    assert_eq!(other_instance.metrics().reads.primary - before.primary, 1);
    assert_eq!(other_instance.consistency_token(&holding), Some(token));
    assert!(!setup.replica_has(run).await, "replay was paused");

    // Once the replica has replayed it, the token lets the replica serve.
    drop(paused);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.replica_has(run).await {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // a poll or two
    let before = other_instance.metrics().reads;
    assert_eq!(other_instance.get_run(&holding, run).await.unwrap().id, run);
    assert_eq!(other_instance.metrics().reads.replica - before.replica, 1);
    drop(setup.db);
}
/// One read by a concurrent reader: when it ran and what it answered.
struct Read {
    started: Instant,
    finished: Instant,
    outcome: Result<(), String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_hands_every_read_to_the_primary_until_it_is_back() {
    // Its four readers load both cores: the other tests' strict counts (every read on the
    // replica) would meet polls delayed past the staleness bound, so it takes its turn too.
    let _turn = REPLICA.lock().await;
    let Some(mut spare) = spare_replica().await.unwrap() else {
        eprintln!("skipped: no spare PostgreSQL replica (ACCOUNT_TEST_PG_SPARE_REPLICA_URL)");
        return;
    };
    let setup = setup_on(spare.admin_url(), Duration::from_secs(2), &[]).await;
    let spine = &setup.spine;
    let run = setup.admit(&setup.writer).await;
    setup.db.caught_up_replica(spare.admin_url()).await.unwrap();
    // `other` reads: it wrote nothing, so only the replica's state decides where it reads.
    let before = spine.metrics().reads;
    for _ in 0..10 {
        assert_eq!(spine.get_run(&setup.other, run).await.unwrap().id, run);
    }
    let after = spine.metrics().reads;
    assert_eq!(after.replica - before.replica, 10, "{after:?}");
    assert_eq!(after.primary, before.primary, "{after:?}");

    // Four readers read on through the stop, the outage and the start.
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (spine, principal, done) = (spine.clone(), setup.other.clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let outcome = match spine.get_run(&principal, run).await {
                        Ok(found) if found.id == run => Ok(()),
                        Ok(found) => Err(format!("read run {} for {run}", found.id)),
                        Err(error) => Err(format!("{}: {error:?}", error.code())),
                    };
                    let finished = Instant::now();
                    reads.push(Read {
                        started,
                        finished,
                        outcome,
                    });
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                reads
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    spare.stop().await.unwrap();
    let down_at = Instant::now();
    // A read the stop caught on the replica has moved to the primary by now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let down = spine.metrics().reads;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still_down = spine.metrics().reads;
    let status = spine.replica_status();
    assert!(!status[0].usable && status[0].failures > 0, "{status:?}");
    assert_eq!(
        still_down.replica, down.replica,
        "a stopped replica served reads"
    );
    assert!(still_down.primary > down.primary, "{still_down:?}");

    let starting = Instant::now();
    spare.start().await.unwrap();
    let back_at = Instant::now();
    // Back: the replica serves again within a few seconds (polled every 50 ms).
    let deadline = back_at + Duration::from_secs(5);
    while spine.metrics().reads.replica == still_down.replica {
        assert!(
            Instant::now() < deadline,
            "reads did not go back to the replica within 5 s of its start: {:?}",
            spine.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let replica_again = back_at.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::Relaxed);
    let mut reads = Vec::new();
    for reader in readers {
        reads.extend(reader.await.expect("a reader panicked"));
    }

    let failed: Vec<_> = reads
        .iter()
        .filter_map(|r| r.outcome.as_ref().err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} reads failed: {:?}",
        failed.len(),
        reads.len(),
        &failed[..failed.len().min(5)]
    );
    // Every read from the stop until the server was started again: down, or going down.
    let outage = reads
        .iter()
        .filter(|r| r.finished >= stopping && r.started <= starting)
        .count();
    assert!(outage > 0, "no read ran while the replica was down");
    println!(
        "{} reads, none failed; {outage} while the replica was stopping or down ({:.2?} to \
         stop, {:.2?} down, {:.2?} to start); the primary served {} in 1.5 s down, {} fell \
         back from the replica; the replica served again {:.2?} after it streamed",
        reads.len(),
        down_at - stopping,
        starting - down_at,
        back_at - starting,
        still_down.primary - down.primary,
        spine.metrics().reads.fallbacks,
        replica_again,
    );

    // Only the replica serves `other` once it is back.
    let before = spine.metrics().reads;
    for _ in 0..10 {
        assert_eq!(spine.get_run(&setup.other, run).await.unwrap().id, run);
    }
    let after = spine.metrics().reads;
    assert_eq!(after.replica - before.replica, 10, "{after:?}");
    assert_eq!(after.primary, before.primary, "{after:?}");
}
