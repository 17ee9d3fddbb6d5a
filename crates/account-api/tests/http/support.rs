//! A real server on a loopback port over a fresh database, with two bootstrapped tenants, on
//! the system clock ([`start`]) or on a clock the test steps ([`start_with_clock`]).

#![allow(dead_code)] // each test binary uses part of it

use account_api::{AppState, EdgeSettings, router};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::types::{MembershipRole, TenantId, UserId};
use account_spine::{
    Actor, Clock, DatabaseConfig, OperatorPrincipal, Principal, RecordedEvents, RequestMeta, Spine,
    SystemClock,
};
use account_testkit::{Backend, TestDb, fresh_db};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) spine: Spine,
    pub(crate) events: Arc<RecordedEvents>,
    /// The first tenant's owner key.
    pub(crate) key: String,
    /// Another tenant's owner key.
    pub(crate) other_key: String,
    /// The first tenant and its owner.
    pub(crate) tenant_id: TenantId,
    pub(crate) owner_id: UserId,
    /// The other tenant and its owner.
    pub(crate) other_tenant_id: TenantId,
    pub(crate) other_owner_id: UserId,
    task: tokio::task::JoinHandle<()>,
    _db: TestDb,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An answer: status, headers, and the body as JSON (`Null` when it is not JSON).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

pub(crate) async fn start(backend: &Backend) -> Server {
    start_with_clock(backend, Arc::new(SystemClock)).await
}

/// [`start`] with the spine reading time from `clock` (keep an `Arc<FixedClock>` to step it).
pub(crate) async fn start_with_clock(backend: &Backend, clock: Arc<dyn Clock>) -> Server {
    start_with(backend, clock, EdgeSettings::default(), None).await
}

/// [`start`] accepting sign-in tokens `verifier` verifies.
pub(crate) async fn start_with_oidc(
    backend: &Backend,
    verifier: account_api::oidc::Verifier,
) -> Server {
    start_with(
        backend,
        Arc::new(SystemClock),
        EdgeSettings::default(),
        Some(verifier),
    )
    .await
}

/// [`start`] with other edge settings (timeouts, trusted proxies).
pub(crate) async fn start_with_edge(backend: &Backend, edge: EdgeSettings) -> Server {
    start_with(backend, Arc::new(SystemClock), edge, None).await
}

/// The server the way the binary serves it: [`account_api::serve`] with `edge`.
async fn start_with(
    backend: &Backend,
    clock: Arc<dyn Clock>,
    edge: EdgeSettings,
    oidc: Option<account_api::oidc::Verifier>,
) -> Server {
    let db = fresh_db(backend).await.unwrap();
    let events = Arc::new(RecordedEvents::default());
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap())
        .with_events(events.clone())
        .with_clock(clock);
    let (created, key) = spine
        .bootstrap(&operator(), "owner@example.com", "Acme")
        .await
        .unwrap();
    let (other, other_key) = spine
        .bootstrap(&operator(), "other@example.com", "Other")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut state = AppState::new(spine.clone()).with_edge(edge.clone());
    if let Some(verifier) = oidc {
        state = state.with_oidc(verifier);
    }
    let app = router(state);
    let task = tokio::spawn(async move {
        account_api::serve(listener, app, &edge, std::future::pending()).await;
    });
    Server {
        base: format!("http://{address}"),
        client: reqwest::Client::new(),
        spine,
        events,
        key: key.plaintext.expose().to_owned(),
        other_key: other_key.plaintext.expose().to_owned(),
        tenant_id: created.tenant.id,
        owner_id: created.owner.user_id,
        other_tenant_id: other.tenant.id,
        other_owner_id: other.owner.user_id,
        task,
        _db: db,
    }
}

/// The platform operator the command line acts as.
pub(crate) fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "cli:test".into(),
        request: RequestMeta::default(),
    }
}

impl Server {
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A call with the first tenant's key and an optional JSON body.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(&self.key.clone(), method, path, body).await
    }

    /// The first tenant's owner, as a signed-in user (for use cases called on the spine).
    pub(crate) fn owner(&self) -> Principal {
        user(self.tenant_id, self.owner_id)
    }

    /// The other tenant's owner, as a signed-in user.
    pub(crate) fn other_owner(&self) -> Principal {
        user(self.other_tenant_id, self.other_owner_id)
    }

    /// A call without credentials and an optional JSON body.
    pub(crate) async fn call_anonymous(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    /// A call with `key` and an optional JSON body.
    pub(crate) async fn call_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.request(method, path).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }
}

fn user(tenant_id: TenantId, user_id: UserId) -> Principal {
    Principal {
        tenant_id,
        actor: Actor::User {
            user_id,
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    }
}

// Hostile-input helpers, shared by the suites that check refusals write nothing.

impl Server {
    /// A call with the first tenant's key and a raw body sent as `content_type`.
    pub(crate) async fn call_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        self.send(
            self.request(method, path)
                .bearer_auth(&self.key)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body),
        )
        .await
    }

    /// Every row of `table`, each as one text of all its columns (binary columns in hex).
    pub(crate) async fn rows_of(&self, table: &str) -> Vec<String> {
        self._db.rows_as_text(table).await.unwrap()
    }

    /// How many audit rows `tenant` has.
    pub(crate) async fn audit_count(&self, tenant: TenantId) -> i64 {
        // Ids are 16-byte blobs on SQLite, `uuid` on PostgreSQL.
        let id = match self._db.backend() {
            account_testkit::Backend::Sqlite => format!("X'{}'", tenant.as_uuid().simple()),
            account_testkit::Backend::Postgres { .. } => format!("'{tenant}'"),
        };
        let filter = format!("tenant_id = {id}");
        account_testkit::fixtures::count_rows(self._db.conn(), "audit_log", &filter).await
    }

    /// Every audit row, each as one text of all its columns.
    pub(crate) async fn audit_rows(&self) -> Vec<String> {
        self._db.rows_as_text("audit_log").await.unwrap()
    }

    /// How many rows each table of account data holds: equal before and after a call means it
    /// wrote nothing. Request accounting (`rate_limit_states`) is left out: every
    /// authenticated request counts against its tenant's and key's allowances, refused or not.
    pub(crate) async fn row_counts(&self) -> std::collections::BTreeMap<String, i64> {
        let mut counts = self._db.row_counts().await.unwrap();
        counts.remove("rate_limit_states");
        counts
    }
}

/// The answer is an error body with this status and code, a non-empty message and a request
/// id; returns its `fields`.
pub(crate) fn refused(answer: &Answer, status: StatusCode, code: &str, what: &str) -> Value {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert_eq!(answer.body["error"], code, "{what}: {}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: a message: {}",
        answer.body
    );
    assert!(
        answer.headers.contains_key("x-request-id"),
        "{what}: a request id"
    );
    answer.body["fields"].clone()
}
