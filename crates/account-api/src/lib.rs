//! Layer: L2 — api. HTTP routes over the spine: authentication, input parsing, response shape.
//!
//! The binary (`cargo run -p account-api`) serves [`router`] on `127.0.0.1:8080` with a SQLite
//! file in the working directory; teams embedding the account domain in their own API crate
//! can mount the same router next to theirs. Requests authenticate with an API key
//! (`Authorization: Bearer <key>` or `X-API-Key`); errors are `{"error": code, "message": ...}`
//! with the status the engine assigned; every response echoes `x-request-id`.

mod auth;
mod error;
mod health;
mod routes;

pub use error::ApiError;

use account_spine::Spine;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Largest request body accepted (pins hold up to 64 KiB values).
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// What every handler can reach: the spine (cheap to clone).
#[derive(Clone, Debug)]
pub struct AppState {
    spine: Spine,
}

impl AppState {
    /// State over an already connected (and migrated) spine.
    pub fn new(spine: Spine) -> Self {
        Self { spine }
    }
}

/// The HTTP routes of the account API.
pub fn router(state: AppState) -> Router {
    use routes::{api_keys, invitations, memory_pins, onboarding, runs, usage};
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/runs", post(runs::admit).get(runs::list))
        .route("/v1/runs/{id}", get(runs::get))
        .route("/v1/runs/{id}/complete", post(runs::complete))
        .route("/v1/api-keys", post(api_keys::issue).get(api_keys::list))
        .route("/v1/api-keys/{id}/revoke", post(api_keys::revoke))
        .route("/v1/api-keys/{id}/rotate", post(api_keys::rotate))
        .route("/v1/memory/pins", get(memory_pins::list))
        .route("/v1/memory/pins/cleanup", post(memory_pins::cleanup))
        .route(
            "/v1/memory/pins/{key}",
            put(memory_pins::upsert)
                .get(memory_pins::get)
                .delete(memory_pins::delete),
        )
        .route("/v1/onboarding", get(onboarding::status))
        .route("/v1/sdk/handshake", post(onboarding::handshake))
        .route("/v1/usage", get(usage::summary))
        .route(
            "/v1/invitations/{tenant}/{id}/accept",
            post(invitations::accept),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
