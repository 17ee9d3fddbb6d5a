//! Webhook delivery on each backend, to real receivers on loopback: events reach an endpoint
//! signed, in order, filtered by type; a failing endpoint is retried by its schedule and then
//! disabled with an event the tenant's other endpoints receive; 410 disables at once; a
//! rotation signs with both secrets; replays send an event again with its `webhook-id`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::api_keys::ApiKeyPepper;
use account_spine::runs::AdmitRun;
use account_spine::types::*;
use account_spine::webhooks::{
    CreateEndpoint, DEFAULT_TOLERANCE, Replay, RetrySchedule, SenderSettings, SignedHeaders,
    UpdateEndpoint, WebhookSecret, WebhookSettings, verify,
};
use account_spine::{DomainEvent, FixedClock, Principal, RecordedEvents, Spine};
use account_testkit::backends;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::TimeDelta;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn verifies_with(&self, secrets: &[WebhookSecret], at: i64) -> bool {
        let headers = SignedHeaders::new(&self.id, &self.timestamp, &self.signature);
        verify(secrets, &headers, &self.body, at, DEFAULT_TOLERANCE).is_ok()
    }
}

/// A receiver on loopback answering every request with `status`; what it got.
async fn receiver(status: StatusCode) -> (String, Arc<Mutex<Vec<Received>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                seen.lock().unwrap().push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body: body.to_vec(),
                });
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// A delivering instance on `w`'s database whose clock is `ahead` of the world's.
fn deliverer(w: &World, ahead: TimeDelta, schedule: RetrySchedule) -> Spine {
    let settings = WebhookSettings::default()
        .with_sender(SenderSettings::default().with_private_destinations(true))
        .with_schedule(schedule);
    Spine::from_connection(w.db.host_conn().clone())
        .with_clock(Arc::new(FixedClock::new(now() + ahead)))
        .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap())
        .with_inline_dispatch(false)
        .with_webhook_delivery(settings)
        .unwrap()
}

fn short_schedule() -> RetrySchedule {
    RetrySchedule::new([
        Duration::ZERO,
        Duration::from_secs(10),
        Duration::from_secs(10),
    ])
}

async fn admit_runs(w: &World, owner: &Principal, n: usize) -> Vec<RunId> {
    let mut runs = Vec::new();
    for i in 0..n {
        runs.push(
            w.spine
                .admit_run(owner, admit(&format!("run {i}")))
                .await
                .unwrap()
                .id,
        );
    }
    runs
}

#[tokio::test]
async fn events_reach_an_endpoint_signed_in_order_and_only_of_its_types() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-webhooks");
        let (url, got) = receiver(StatusCode::NO_CONTENT).await;
        let created = w
            .spine
            .create_webhook_endpoint(&owner, CreateEndpoint::new(url).with_event_types(["run.*"]))
            .await
            .unwrap();
        assert!(created.secret.expose().starts_with("whsec_"));
        let runs = admit_runs(&w, &owner, 5).await;

        let report = deliverer(&w, TimeDelta::zero(), short_schedule())
            .deliver_webhooks()
            .await
            .unwrap();
        assert_eq!((report.delivered, report.attempts), (5, 5), "{}", w.backend);
        let got = got.lock().unwrap().clone();
        let delivered: Vec<String> = got
            .iter()
            .map(|r| r.json()["data"]["run_id"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = runs.iter().map(ToString::to_string).collect();
        assert_eq!(delivered, expected, "{}: in commit order", w.backend);
        for r in &got {
            assert_eq!(r.json()["type"], "run.admitted");
            assert!(r.id.starts_with("msg_"), "{}", r.id);
            assert!(
                r.verifies_with(std::slice::from_ref(&created.secret), now().timestamp()),
                "{}: signed with the endpoint's secret",
                w.backend
            );
        }
        let attempts = w
            .spine
            .list_webhook_attempts(&owner, created.endpoint.id, None, 100)
            .await
            .unwrap();
        assert_eq!(attempts.len(), 5);
        assert!(attempts.iter().all(|a| a.status == Some(204) && !a.replay));

        // Nothing is sent twice.
        let again = deliverer(&w, TimeDelta::seconds(1), short_schedule())
            .deliver_webhooks()
            .await
            .unwrap();
        assert_eq!(again.attempts, 0, "{}", w.backend);
    }
}

#[tokio::test]
async fn a_failing_endpoint_follows_its_schedule_then_is_disabled_and_others_hear_of_it() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-failing");
        let (bad_url, bad) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
        let (good_url, good) = receiver(StatusCode::OK).await;
        let failing = w
            .spine
            .create_webhook_endpoint(&owner, CreateEndpoint::new(bad_url))
            .await
            .unwrap()
            .endpoint;
        w.spine
            .create_webhook_endpoint(
                &owner,
                CreateEndpoint::new(good_url).with_event_types(["webhook_endpoint.disabled"]),
            )
            .await
            .unwrap();
        admit_runs(&w, &owner, 2).await;

        // Attempt 1 now; 2 after 10 s (±20 %); 3 after 10 s more; then the schedule is spent.
        let at = |secs| deliverer(&w, TimeDelta::seconds(secs), short_schedule());
        assert_eq!(at(0).deliver_webhooks().await.unwrap().attempts, 1);
        assert_eq!(
            at(5).deliver_webhooks().await.unwrap().attempts,
            0,
            "not due"
        );
        assert_eq!(at(13).deliver_webhooks().await.unwrap().attempts, 1);
        // The last attempt disables it; the same pass sends the news to the other endpoint.
        let last = at(40).deliver_webhooks().await.unwrap();
        assert_eq!(
            (last.attempts, last.delivered, last.disabled),
            (2, 1, 1),
            "{}",
            w.backend
        );
        assert_eq!(bad.lock().unwrap().len(), 3);
        let ids: Vec<String> = bad.lock().unwrap().iter().map(|r| r.id.clone()).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "one event, one id");

        let endpoint = w
            .spine
            .get_webhook_endpoint(&owner, failing.id)
            .await
            .unwrap();
        assert!(!endpoint.enabled);
        assert_eq!(endpoint.disabled_reason.as_deref(), Some("failing"));
        assert!(endpoint.failing_since.is_some());
        let attempts = w
            .spine
            .list_webhook_attempts(&owner, failing.id, None, 100)
            .await
            .unwrap();
        let numbers: Vec<i32> = attempts.iter().map(|a| a.attempt).collect();
        assert_eq!(numbers, vec![3, 2, 1], "newest first");

        // The host and the tenant's other endpoint hear of it.
        let recorded = Arc::new(RecordedEvents::default());
        deliverer(&w, TimeDelta::seconds(41), short_schedule())
            .with_events(recorded.clone())
            .dispatch_events()
            .await
            .unwrap();
        assert!(recorded.all().iter().any(|e| matches!(
            e,
            DomainEvent::WebhookEndpointDisabled { endpoint_id, reason, .. }
                if *endpoint_id == failing.id && reason == "failing"
        )));
        assert_eq!(at(41).deliver_webhooks().await.unwrap().attempts, 0);
        let good = good.lock().unwrap().clone();
        assert_eq!(good.len(), 1, "{}", w.backend);
        assert_eq!(good[0].json()["type"], "webhook_endpoint.disabled");
        assert_eq!(good[0].json()["data"]["reason"], "failing");

        // Enabled again, it starts with the event it stopped at, at once.
        w.spine
            .update_webhook_endpoint(
                &owner,
                failing.id,
                UpdateEndpoint::default().with_enabled(true),
            )
            .await
            .unwrap();
        assert_eq!(at(42).deliver_webhooks().await.unwrap().attempts, 1);
        assert_eq!(bad.lock().unwrap().last().unwrap().id, ids[0]);
    }
}

#[tokio::test]
async fn gone_disables_at_once() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-gone");
        let (url, got) = receiver(StatusCode::GONE).await;
        let endpoint = w
            .spine
            .create_webhook_endpoint(&owner, CreateEndpoint::new(url))
            .await
            .unwrap()
            .endpoint;
        admit_runs(&w, &owner, 3).await;
        let report = deliverer(&w, TimeDelta::zero(), RetrySchedule::default())
            .deliver_webhooks()
            .await
            .unwrap();
        assert_eq!((report.attempts, report.disabled), (1, 1), "{}", w.backend);
        assert_eq!(got.lock().unwrap().len(), 1);
        let endpoint = w
            .spine
            .get_webhook_endpoint(&owner, endpoint.id)
            .await
            .unwrap();
        assert_eq!(endpoint.disabled_reason.as_deref(), Some("gone"));
    }
}

#[tokio::test]
async fn a_rotation_signs_with_both_secrets_until_its_grace_ends() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-rotate");
        let (url, got) = receiver(StatusCode::OK).await;
        let created = w
            .spine
            .create_webhook_endpoint(&owner, CreateEndpoint::new(url))
            .await
            .unwrap();
        let rotated = w
            .spine
            .rotate_webhook_secret(&owner, created.endpoint.id, 60)
            .await
            .unwrap();
        assert_ne!(rotated.secret.expose(), created.secret.expose());
        admit_runs(&w, &owner, 1).await;
        deliverer(&w, TimeDelta::zero(), short_schedule())
            .deliver_webhooks()
            .await
            .unwrap();
        admit_runs(&w, &owner, 1).await;
        // After the grace, only the new secret signs.
        deliverer(&w, TimeDelta::seconds(61), short_schedule())
            .deliver_webhooks()
            .await
            .unwrap();
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "{}", w.backend);
        let old = std::slice::from_ref(&created.secret);
        let new = std::slice::from_ref(&rotated.secret);
        assert_eq!(got[0].signature.split(' ').count(), 2);
        assert!(got[0].verifies_with(old, now().timestamp()));
        assert!(got[0].verifies_with(new, now().timestamp()));
        assert_eq!(got[1].signature.split(' ').count(), 1);
        assert!(!got[1].verifies_with(old, now().timestamp() + 61));
        assert!(got[1].verifies_with(new, now().timestamp() + 61));
    }
}

#[tokio::test]
async fn a_replay_sends_an_event_again_with_its_id_and_a_range_sends_what_was_delivered() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-replay");
        let (url, got) = receiver(StatusCode::OK).await;
        let endpoint = w
            .spine
            .create_webhook_endpoint(&owner, CreateEndpoint::new(url))
            .await
            .unwrap()
            .endpoint;
        admit_runs(&w, &owner, 3).await;
        let spine = deliverer(&w, TimeDelta::zero(), short_schedule());
        spine.deliver_webhooks().await.unwrap();
        let first: Vec<Received> = got.lock().unwrap().clone();
        assert_eq!(first.len(), 3);

        let event_id = uuid::Uuid::parse_str(first[1].id.trim_start_matches("msg_")).unwrap();
        let queued = w
            .spine
            .replay_webhook_events(&owner, endpoint.id, Replay::Event(event_id))
            .await
            .unwrap();
        assert_eq!(queued, 1);
        spine.deliver_webhooks().await.unwrap();
        {
            let got = got.lock().unwrap();
            assert_eq!(got.len(), 4, "{}", w.backend);
            assert_eq!(got[3].id, first[1].id);
            assert_eq!(got[3].body, first[1].body, "the same body, byte for byte");
        }
        let range = Replay::Range {
            from: now() - TimeDelta::minutes(1),
            to: now() + TimeDelta::minutes(1),
        };
        let queued = w
            .spine
            .replay_webhook_events(&owner, endpoint.id, range)
            .await
            .unwrap();
        assert_eq!(queued, 3);
        spine.deliver_webhooks().await.unwrap();
        assert_eq!(got.lock().unwrap().len(), 7);
        let attempts = w
            .spine
            .list_webhook_attempts(&owner, endpoint.id, None, 100)
            .await
            .unwrap();
        assert_eq!(attempts.iter().filter(|a| a.replay).count(), 4);

        // An event that is not kept is refused, naming it.
        let missing = w
            .spine
            .replay_webhook_events(&owner, endpoint.id, Replay::Event(uuid::Uuid::now_v7()))
            .await
            .unwrap_err();
        assert_eq!(account_spine::ErrorCode::code(&missing), "event_not_found");
    }
}

#[tokio::test]
async fn an_endpoint_created_disabled_says_why_and_receives_nothing() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-disabled");
        let (url, got) = receiver(StatusCode::OK).await;
        let endpoint = w
            .spine
            .create_webhook_endpoint(&owner, CreateEndpoint::new(url).with_disabled(true))
            .await
            .unwrap()
            .endpoint;
        assert!(!endpoint.enabled);
        assert_eq!(endpoint.disabled_reason.as_deref(), Some("by_request"));
        admit_runs(&w, &owner, 2).await;
        let report = deliverer(&w, TimeDelta::zero(), short_schedule())
            .deliver_webhooks()
            .await
            .unwrap();
        assert_eq!(report.endpoints, 0, "{}", w.backend);
        assert!(got.lock().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_holds_at_most_fifty_endpoints_even_when_created_at_once() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, roomy()).await;
        let owner = w.owner("req-many");
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let spine = w.spine.clone();
                let owner = owner.clone();
                tokio::spawn(async move {
                    let url = format!("https://hooks.example.com/{i}");
                    spine
                        .create_webhook_endpoint(&owner, CreateEndpoint::new(url))
                        .await
                })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => created += 1,
                Err(error) => {
                    assert_eq!(
                        account_spine::ErrorCode::code(&error),
                        "too_many_webhook_endpoints"
                    );
                }
            }
        }
        assert_eq!(created, 50, "{}", w.backend);
        let listed = w.spine.list_webhook_endpoints(&owner).await.unwrap();
        assert_eq!(listed.len(), 50, "{}", w.backend);
    }
}
