//! Request bodies through the real router: every JSON route's extractor (`ApiJson`) and
//! validation, then whatever the engines make of a body that gets through.
//!
//! The API's body types are private to `account-api`, so the target drives its public
//! `router` in process (`tower::ServiceExt::oneshot`) over a SQLite file, authenticated with
//! a bootstrapped owner key. The first input byte picks the route, the rest is the body.
//!
//! Oracle: no panic, never a 5xx (a body is the caller's input: at worst a 4xx), and every
//! refusal is a JSON `{"error", "message"}` with a non-empty message.

#![no_main]

use account_api::{AppState, router};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine};
use axum::body::Body;
use axum::http::{Method, Request, header};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tower::ServiceExt as _;

/// Every route that reads a JSON body (platform routes need an operator key and are left out).
const ROUTES: &[(Method, &str)] = &[
    (Method::POST, "/v1/runs"),
    (
        Method::POST,
        "/v1/runs/0190a8b6-5c3e-7d2a-9f11-123456789abc/complete",
    ),
    (Method::POST, "/v1/api-keys"),
    (
        Method::POST,
        "/v1/api-keys/0190a8b6-5c3e-7d2a-9f11-123456789abc/revoke",
    ),
    (
        Method::POST,
        "/v1/api-keys/0190a8b6-5c3e-7d2a-9f11-123456789abc/rotate",
    ),
    (Method::PUT, "/v1/memory/pins/fuzz:key"),
    (Method::POST, "/v1/sdk/handshake"),
    (Method::POST, "/v1/onboarding/advance"),
    (Method::POST, "/v1/invitations"),
    (
        Method::POST,
        "/v1/invitations/0190a8b6-5c3e-7d2a-9f11-123456789abc/0190a8b6-5c3e-7d2a-9f11-123456789abd/accept",
    ),
    (
        Method::PUT,
        "/v1/users/0190a8b6-5c3e-7d2a-9f11-123456789abc/role",
    ),
    (Method::POST, "/v1/ownership/transfer"),
    (Method::PATCH, "/v1/profile"),
    (Method::POST, "/v1/support/tickets"),
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    key: String,
    _dir: TempDir,
}

/// A directory removed when the process ends normally.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("account-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.join("fuzz.db").display());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (app, key) = runtime.block_on(async {
            let config = DatabaseConfig::new(url);
            let spine = Spine::connect(&config)
                .await
                .expect("SQLite opens")
                .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).expect("a pepper"));
            account_spine::migrate(&config)
                .await
                .expect("migrations apply");
            let operator = OperatorPrincipal {
                operator_id: "fuzz".into(),
                request: RequestMeta::default(),
            };
            let (_, key) = spine
                .bootstrap(&operator, "owner@example.com", "Fuzz")
                .await
                .expect("bootstrap");
            (
                router(AppState::new(spine)),
                key.plaintext.expose().to_owned(),
            )
        });
        Harness {
            runtime,
            app,
            key,
            _dir: TempDir(dir),
        }
    })
}

fuzz_target!(init: { harness(); }, |data: &[u8]| {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let harness = harness();
    let (method, path) = &ROUTES[usize::from(*selector) % ROUTES.len()];
    let request = Request::builder()
        .method(method.clone())
        .uri(*path)
        .header(header::AUTHORIZATION, format!("Bearer {}", harness.key))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let (status, bytes) = harness.runtime.block_on(async {
        let response = harness
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the response body reads");
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status} to {:?}: {}",
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        let error: serde_json::Value =
            serde_json::from_slice(&bytes).expect("a refusal is JSON");
        assert!(error["error"].is_string(), "{error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
});
