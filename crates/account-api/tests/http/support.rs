//! A real server on a loopback port over a fresh database, with two bootstrapped tenants.

#![allow(dead_code)] // each test binary uses part of it

use account_api::{AppState, router};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, OperatorPrincipal, RecordedEvents, RequestMeta, Spine};
use account_testkit::{Backend, TestDb, empty_db};
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
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
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
    let db = empty_db(backend).await.unwrap();
    let events = Arc::new(RecordedEvents::default());
    let spine = Spine::connect(&DatabaseConfig::new(db.url()))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap())
        .with_events(events.clone());
    spine.migrate().await.unwrap();
    let operator = OperatorPrincipal {
        operator_id: "test".into(),
        request: RequestMeta::default(),
    };
    let (_, key) = spine
        .bootstrap(&operator, "owner@example.com", "Acme")
        .await
        .unwrap();
    let (_, other_key) = spine
        .bootstrap(&operator, "other@example.com", "Other")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = router(AppState::new(spine.clone()));
    let task = tokio::spawn(axum::serve(listener, app).into_future());
    Server {
        base: format!("http://{address}"),
        client: reqwest::Client::new(),
        spine,
        events,
        key: key.plaintext.expose().to_owned(),
        other_key: other_key.plaintext.expose().to_owned(),
        task,
        _db: db,
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
