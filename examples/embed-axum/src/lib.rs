//! Layer: example — examples. A host's own API crate that embeds the account domain.
//!
//! The host has routes of its own (`GET` and `POST /orders`, [`orders`]) behind authentication
//! of its own ([`host_auth`], a toy token table standing in for the host's sessions or SSO),
//! and mounts the account router under `/account` next to them ([`app`]). Under `/account`
//! everything is ours: account API keys authenticate, errors have our shape, and
//! `/account/openapi.json` names `/account` as its server. One of the host's handlers
//! ([`orders::place`]) calls a spine use case directly, in process: each order admits a run
//! in the tenant the host user is linked to, as the principal the spine verified.
//!
//! [`open_spine`] is the one place that connects to the database and migrates it.

pub mod host_auth;
pub mod orders;

pub use host_auth::{HostUser, HostUsers};

use account_api::{ApiError, AppState};
use account_spine::api_keys::ApiKeyPepper;
use account_spine::{DatabaseConfig, Spine, SpineError};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::sync::Arc;

/// Connects to the account database at `database_url` and brings its schema up to date;
/// `pepper` keys the digests of API keys (keep it stable: changing it invalidates every key).
pub async fn open_spine(database_url: &str, pepper: ApiKeyPepper) -> Result<Spine, SpineError> {
    let config = DatabaseConfig::new(database_url);
    let spine = Spine::connect(&config).await?.with_pepper(pepper);
    account_spine::migrate(&config).await?;
    Ok(spine)
}

/// What the host's handlers reach: the spine they call use cases on, the host's users, and
/// its orders.
#[derive(Clone, Debug)]
pub struct HostState {
    spine: Spine,
    users: Arc<HostUsers>,
    orders: Arc<orders::OrderBook>,
}

/// The host's app: its own routes, and the account API nested under `/account`.
pub fn app(spine: Spine, users: HostUsers) -> Router {
    let host = HostState {
        spine: spine.clone(),
        users: Arc::new(users),
        orders: Arc::default(),
    };
    Router::new()
        .route("/orders", get(orders::list).post(orders::place))
        .with_state(host)
        // Our router, with our authentication, errors and OpenAPI document; nesting it is all
        // it takes for the document to name `/account` as its server.
        .nest("/account", account_api::router(AppState::new(spine)))
}

/// The host's errors on its own routes, in the host's own shape (`{"problem": ...}`), but
/// for the account domain's refusals, which keep ours (`{"error": code, "message": ...}`).
#[derive(Debug)]
pub enum HostError {
    /// No valid host token.
    NotSignedIn,
    /// The host user is signed in, but the account key the host linked them to no longer
    /// verifies (revoked, expired, its tenant suspended).
    AccountLinkInvalid,
    /// The request body is not what the route takes.
    BadRequest(&'static str),
    /// A use case refused or failed.
    Account(SpineError),
}

#[derive(Serialize)]
struct Problem {
    problem: &'static str,
}

impl IntoResponse for HostError {
    fn into_response(self) -> Response {
        let (status, problem) = match self {
            HostError::NotSignedIn => (StatusCode::UNAUTHORIZED, "sign in to the shop first"),
            HostError::AccountLinkInvalid => (
                StatusCode::FORBIDDEN,
                "your account link is no longer valid; ask an admin to renew it",
            ),
            HostError::BadRequest(problem) => (StatusCode::BAD_REQUEST, problem),
            HostError::Account(error) => return ApiError::from(error).into_response(),
        };
        (status, Json(Problem { problem })).into_response()
    }
}
