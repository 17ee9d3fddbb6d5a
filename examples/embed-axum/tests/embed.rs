//! The host's app over HTTP, on each backend (SQLite always, PostgreSQL when
//! `ACCOUNT_TEST_PG_URL` names a server): the host's own route behind its own authentication,
//! our router under `/account` (health, and the OpenAPI document naming `/account` as its
//! server), and the host's handler admitting a run as the principal the spine verified.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::ApiKeyPepper;
use account_spine::types::ApiKeyId;
use account_spine::{OperatorPrincipal, RequestMeta, Spine};
use account_testkit::{Backend, TestDb, backends, empty_db};
use example_embed_axum::{HostUser, HostUsers, app, open_spine};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

const ALICE: &str = "alice-host-token";

/// The host's app on a loopback port over a fresh database with one tenant, whose owner key
/// is linked to the host user `alice`.
struct Host {
    base: String,
    client: reqwest::Client,
    spine: Spine,
    /// The tenant owner's account key (ours; the host keeps it for alice).
    owner_key: String,
    owner_key_id: ApiKeyId,
    db: TestDb,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(backend: &Backend) -> Host {
    let db = empty_db(backend).await.unwrap();
    let pepper = ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap();
    let spine = open_spine(db.url(), pepper).await.unwrap();
    let operator = OperatorPrincipal {
        operator_id: "test:setup".into(),
        request: RequestMeta::default(),
    };
    let (_, owner_key) = spine
        .bootstrap(&operator, "alice@example.com", "Alice's shop")
        .await
        .unwrap();
    let key = owner_key.plaintext.expose().to_owned();
    let users = HostUsers::new().with(ALICE, HostUser::new("alice", key.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = app(spine.clone(), users);
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Host {
        base,
        client: reqwest::Client::new(),
        spine,
        owner_key: key,
        owner_key_id: owner_key.key.id,
        db,
        task,
    }
}

impl Host {
    fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    async fn runs(&self) -> i64 {
        let counts = self.db.row_counts().await.unwrap();
        counts["worker_runs"]
    }
}

async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_hosts_routes_and_ours_live_side_by_side() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let host = start(&backend).await;

        // The host's route, behind the host's authentication only.
        let (status, orders) = send(host.get("/orders").bearer_auth(ALICE)).await;
        assert_eq!((status, orders), (StatusCode::OK, json!([])), "{name}");
        let (status, refused) = send(host.get("/orders")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(refused["problem"], "sign in to the shop first", "{name}");
        let (status, _) = send(host.get("/orders").bearer_auth(&host.owner_key)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{name}: our keys do not open its routes"
        );

        // Our router under /account, behind our authentication only.
        let (status, health) = send(host.get("/account/healthz")).await;
        assert_eq!((status, &health["status"]), (StatusCode::OK, &json!("ok")));
        let (status, ready) = send(host.get("/account/readyz")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(ready["database"], name);
        let (status, _) = send(host.get("/account/v1/runs").bearer_auth(ALICE)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{name}: host tokens do not open ours"
        );
        let (status, runs) = send(host.get("/account/v1/runs").bearer_auth(&host.owner_key)).await;
        assert_eq!(status, StatusCode::OK, "{name}: {runs}");

        // The document names the prefix as its server; its paths stay relative to it.
        let (status, document) = send(host.get("/account/openapi.json")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(document["servers"], json!([{"url": "/account"}]), "{name}");
        assert!(document["paths"]["/healthz"].is_object(), "{name}");
        assert!(document["paths"]["/account/healthz"].is_null(), "{name}");
    }
}

#[tokio::test]
async fn a_host_handler_admits_a_run_as_the_principal_the_spine_verified() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let host = start(&backend).await;

        let order = json!({"item": "green tea", "quantity": 2});
        let (status, placed) = send(host.post("/orders").bearer_auth(ALICE).json(&order)).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {placed}");
        assert_eq!(placed["placed_by"], "alice");
        // The run the host's handler admitted, seen through our API in alice's tenant.
        let run_path = format!("/account/v1/runs/{}", placed["run_id"].as_str().unwrap());
        let (status, run) = send(host.get(&run_path).bearer_auth(&host.owner_key)).await;
        assert_eq!(status, StatusCode::OK, "{name}: {run}");
        assert_eq!(run["worker_id"], "fulfilment");
        assert_eq!(run["task"], "fulfil 2 x green tea");
        let (_, orders) = send(host.get("/orders").bearer_auth(ALICE)).await;
        assert_eq!(orders.as_array().unwrap().len(), 1, "{name}");
        let (status, _) = send(host.post("/orders").bearer_auth(ALICE).json(&json!({}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(host.runs().await, 1, "{name}");

        // The principal comes from the spine's verification, so revoking alice's linked key
        // stops the host from acting for her at once: no run, a host error.
        let owner = host
            .spine
            .authenticate_api_key(&host.owner_key, RequestMeta::default())
            .await
            .unwrap();
        // The shop keeps a key able to manage keys first: revoking the last one is refused
        // while no owner can sign in through an identity provider.
        host.spine
            .issue_api_key(
                &owner,
                account_spine::api_keys::IssueKey {
                    name: "shop keeper".into(),
                    permissions: vec!["keys:manage".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        host.spine
            .revoke_api_key(&owner, host.owner_key_id, "left the shop")
            .await
            .unwrap();
        let (status, refused) = send(host.post("/orders").bearer_auth(ALICE).json(&order)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {refused}");
        assert!(
            refused["problem"]
                .as_str()
                .unwrap()
                .contains("account link")
        );
        assert_eq!(host.runs().await, 1, "{name}");
    }
}
