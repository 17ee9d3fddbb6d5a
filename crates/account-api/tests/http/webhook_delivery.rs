//! Issue 22's acceptance test for webhook delivery: 10,000 events of four tenants, delivered
//! by the real `account-api` binary to a receiver on loopback that checks every signature; the
//! dispatching process is killed (SIGKILL) mid-delivery, and others finish: every event
//! arrives, a duplicate only ever carries its event's `webhook-id`, and no tenant's event
//! arrives before the one committed before it. On PostgreSQL two processes race to finish.

use crate::process::{Running, free_port, serve};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::runs::AdmitRun;
use account_spine::types::{MembershipRole, PlanCode, TenantId, UserId};
use account_spine::webhooks::{
    CreateEndpoint, DEFAULT_TOLERANCE, SignedHeaders, WebhookSecret, verify,
};
use account_spine::{Actor, DatabaseConfig, Principal, RequestMeta, Spine};
use account_testkit::fixtures::{Limits, TenantSeed, seed_tenant};
use account_testkit::{Backend, UrlDb, backends};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PEPPER: [u8; 32] = [6; 32];
const TENANTS: usize = 4;

/// Events in all (`ACCOUNT_WEBHOOK_EVENTS` overrides 10,000 for a quicker local run).
fn total_events() -> usize {
    std::env::var("ACCOUNT_WEBHOOK_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// What the receiver knows and saw.
#[derive(Default)]
struct Receiver {
    /// Per tenant, its endpoint's secret.
    secrets: Vec<WebhookSecret>,
    /// Per tenant, each run id's position in commit order.
    positions: Vec<HashMap<String, usize>>,
    /// Every delivery: tenant, `webhook-id`, position.
    seen: Mutex<Vec<(usize, String, usize)>>,
    /// Deliveries whose signature did not verify, or that named no known event.
    refused: Mutex<Vec<String>>,
}

impl Receiver {
    fn seen(&self) -> Vec<(usize, String, usize)> {
        self.seen.lock().unwrap().clone()
    }

    fn distinct(&self) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .map(|(_, id, _)| id)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }
}

async fn hook(
    State(receiver): State<Arc<Receiver>>,
    Path(tenant): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = SignedHeaders::from_lookup(header);
    let secret = std::slice::from_ref(&receiver.secrets[tenant]);
    let verified = verify(
        secret,
        &signed,
        &body,
        Utc::now().timestamp(),
        DEFAULT_TOLERANCE,
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let position = json["data"]["run_id"]
        .as_str()
        .and_then(|run| receiver.positions[tenant].get(run));
    match (verified, position, header("webhook-id")) {
        (Ok(()), Some(position), Some(id)) => {
            let delivery = (tenant, id.to_owned(), *position);
            receiver.seen.lock().unwrap().push(delivery);
            StatusCode::NO_CONTENT
        }
        _ => {
            let id = header("webhook-id").unwrap_or_default().to_owned();
            receiver.refused.lock().unwrap().push(id);
            StatusCode::BAD_REQUEST
        }
    }
}

async fn seed(db: &UrlDb, name: &str) -> Principal {
    let limits = Limits {
        workers: 10,
        runs_per_day: 1_000_000,
        concurrent_runs: 1_000_000,
        tokens_per_month: account_spine::types::PlanQuotas::built_in(&PlanCode::free())
            .unwrap()
            .max_tokens_per_month,
        api_keys: 10,
    };
    let seed = TenantSeed::new(name, "free", limits, Utc::now())
        .user(format!("owner-{name}"), Some("owner"));
    let seeded = seed_tenant(&db.raw().await.unwrap(), &seed).await;
    Principal {
        tenant_id: TenantId::from_uuid(seeded.id),
        actor: Actor::User {
            user_id: UserId::from_uuid(seeded.users[0]),
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    }
}

/// Waits until `done` holds, for at most `bound`.
async fn until(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_mid_delivery_loses_nothing_and_keeps_each_tenants_order() {
    for backend in backends().unwrap() {
        killed_dispatcher(&backend).await;
    }
}

#[allow(clippy::print_stdout)] // the figures the note quotes (`--nocapture`)
async fn killed_dispatcher(backend: &Backend) {
    let name = backend.name();
    let total = total_events();
    let db = UrlDb::new(backend, "account-api-webhooks").await.unwrap();
    let writer = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&PEPPER).unwrap());

    // The receiver listens before the endpoints exist; its state is filled in below, before
    // any dispatcher runs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut receiver = Receiver::default();
    let mut owners = Vec::new();
    for tenant in 0..TENANTS {
        let owner = seed(&db, &format!("tenant{tenant}")).await;
        let url = format!("http://{address}/hook/{tenant}");
        let created = writer
            .create_webhook_endpoint(&owner, CreateEndpoint::new(url))
            .await
            .unwrap();
        receiver.secrets.push(created.secret);
        owners.push(owner);
    }

    // The events: runs admitted in host transactions of 250; on PostgreSQL the tenants'
    // writers run at once (SQLite serialises writers anyway, and contention only slows them).
    let per_tenant = total / TENANTS;
    let written = Instant::now();
    let concurrent = name == "postgres";
    let mut writers = Vec::new();
    let mut positions = Vec::new();
    for write in owners.iter().cloned().map(|owner| {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut positions = HashMap::new();
            for chunk in 0..per_tenant.div_ceil(250) {
                let mut txn = writer.begin_host_transaction().await.unwrap();
                for i in chunk * 250..((chunk + 1) * 250).min(per_tenant) {
                    let admit = AdmitRun {
                        worker_id: "business-builder".into(),
                        task: format!("event {i}"),
                        input: None,
                        token_estimate: 0,
                    };
                    let run = txn.execute(&owner, admit).await.unwrap();
                    positions.insert(run.id.to_string(), i);
                }
                txn.commit().await.unwrap();
            }
            positions
        })
    }) {
        if concurrent {
            writers.push(write);
        } else {
            positions.push(write.await.unwrap());
        }
    }
    for writer in writers {
        positions.push(writer.await.unwrap());
    }
    receiver.positions = positions;
    let written = written.elapsed();
    let receiver = Arc::new(receiver);
    let app = Router::new()
        .route("/hook/{tenant}", post(hook))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--webhooks-allow-private",
        "--webhook-lease-secs",
        "2",
        "--no-reaper",
        "--no-audit-purge",
    ];
    let started = Instant::now();
    let mut first = serve(db.url(), dir.path(), free_port(), &PEPPER, &flags);
    let midway = until(Duration::from_secs(120), || {
        receiver.distinct() >= total / 4
    })
    .await;
    assert!(midway, "{name}: the first dispatcher delivers");
    first.0.kill().unwrap(); // SIGKILL: no shutdown, leases held
    first.0.wait().unwrap();
    let at_kill = receiver.distinct();
    assert!(
        at_kill < total,
        "{name}: killed mid-delivery ({at_kill} of {total})"
    );

    // Others take over once the dead one's leases lapse: two racing on PostgreSQL.
    let takers = if name == "postgres" { 2 } else { 1 };
    let _others: Vec<Running> = (0..takers)
        .map(|_| serve(db.url(), dir.path(), free_port(), &PEPPER, &flags))
        .collect();
    let finished = until(Duration::from_secs(240), || receiver.distinct() >= total).await;
    let elapsed = started.elapsed();
    let seen = receiver.seen();
    assert!(
        finished,
        "{name}: {} of {total} delivered",
        receiver.distinct()
    );
    assert!(
        receiver.refused.lock().unwrap().is_empty(),
        "{name}: every delivery verified"
    );

    // One id per event, one event per id; in order per tenant: no event before the one
    // committed before it was delivered.
    let mut ids: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut reached = [None::<usize>; TENANTS];
    for (tenant, id, position) in &seen {
        let known = ids.entry(id.as_str()).or_insert((*tenant, *position));
        assert_eq!(*known, (*tenant, *position), "{name}: {id} names one event");
        let next = reached[*tenant].map_or(0, |reached| reached + 1);
        assert!(
            *position <= next,
            "{name}: tenant {tenant} got event {position} before event {next}"
        );
        reached[*tenant] = Some(reached[*tenant].map_or(*position, |r| r.max(*position)));
    }
    assert_eq!(ids.len(), total, "{name}");
    println!(
        "{name}: {total} events written in {written:.1?}; delivered in {elapsed:.1?} with a kill at \
         {at_kill}; {} deliveries ({} again)",
        seen.len(),
        seen.len() - total
    );
}
