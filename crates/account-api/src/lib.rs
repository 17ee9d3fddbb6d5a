//! Layer: L2 — api. HTTP routes over the spine: authentication, input parsing, response shape.
//!
//! The binary (`cargo run -p account-api`) serves [`router`] on `127.0.0.1:8080` with a SQLite
//! file in the working directory; teams embedding the account domain in their own API crate
//! can mount the same router next to theirs.

mod health;

use account_spine::Spine;
use axum::Router;
use axum::routing::get;

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
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}
