//! Layer: L2 — api. HTTP routes over the spine: authentication, input parsing, response shape.
//!
//! The binary (`cargo run -p account-api`) serves [`router`] on `127.0.0.1:8080` with a SQLite
//! file in the working directory; teams embedding the account domain in their own API crate
//! mount the same router next to theirs, under a prefix of their choice (see [`router`]; the
//! example `examples/embed-axum` does it). Requests authenticate with an API key
//! (`Authorization: Bearer <key>` or `X-API-Key`), each key within its `rate_limit_rpm`
//! counted across every instance on the database;
//! errors are `{"error": code, "message": ...}` with the status the engine assigned (see
//! [`ErrorBody`]); every response echoes `x-request-id`, which every log line of the request
//! carries; [`openapi`] is the OpenAPI 3 document, served at `/openapi.json`.
//!
//! # Example
//!
//! Mount the account routes next to the host's own and serve them:
//!
//! ```
//! use account_api::{AppState, router};
//! use account_spine::{DatabaseConfig, Spine};
//! use axum::routing::get;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let spine = Spine::connect(&DatabaseConfig::new("sqlite::memory:")).await?;
//!     let app = axum::Router::new()
//!         .route("/hello", get(|| async { "hello from the host" }))
//!         .merge(router(AppState::new(spine)));
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let base = format!("http://{}", listener.local_addr()?);
//!     tokio::spawn(axum::serve(listener, app).into_future());
//!
//!     let health = reqwest::get(format!("{base}/healthz")).await?;
//!     assert_eq!(health.text().await?, r#"{"status":"ok"}"#);
//!     let hello = reqwest::get(format!("{base}/hello")).await?;
//!     assert_eq!(hello.text().await?, "hello from the host");
//!     assert!(account_api::openapi().paths.paths.contains_key("/healthz"));
//!     Ok(())
//! }
//! ```

#![deny(missing_docs)]

mod auth;
mod client_address;
mod consistency;
mod edge;
mod error;
mod extract;
mod health;
mod idempotency;
mod json_object;
mod metrics;
pub mod oidc;
mod openapi;
mod quota;
mod request_id;
mod routes;

pub use client_address::{TrustedProxies, TrustedProxyError};
pub use edge::{EdgeSettings, serve};
pub use error::{ApiError, ErrorBody};
pub use quota::{QuotaInfo, QuotaPeriod};

use account_spine::Spine;
use axum::Router;
use axum::extract::rejection::NestedPathRejection;
use axum::extract::{DefaultBodyLimit, NestedPath};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body accepted (pins hold up to 64 KiB values).
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// What every handler can reach: the spine (cheap to clone, its per-key rate limits shared
/// with every instance on the database), the edge's settings and, when people sign in through an identity provider, the token verifier.
#[derive(Clone, Debug)]
pub struct AppState {
    spine: Spine,
    http_metrics: Arc<metrics::HttpMetrics>,
    oidc: Option<oidc::Verifier>,
    edge: Arc<EdgeSettings>,
    /// Set once `/readyz` found the schema at head: migrations never go back, so later probes
    /// skip the read.
    schema_at_head: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// State over an already connected (and migrated) spine, with the default
    /// [`EdgeSettings`].
    pub fn new(spine: Spine) -> Self {
        Self {
            spine,
            http_metrics: Arc::default(),
            oidc: None,
            edge: Arc::default(),
            schema_at_head: Arc::default(),
        }
    }

    /// This state with other edge settings: [`router`] reads the body timeout and the trusted
    /// proxies from them (the header and idle timeouts are [`serve`]'s).
    pub fn with_edge(mut self, edge: EdgeSettings) -> Self {
        self.edge = Arc::new(edge);
        self
    }

    /// The same state accepting `Authorization: Bearer <JWT>` from the verifier's issuers: a
    /// signed-in person acts in the tenant named by `X-Tenant-Id` with their membership's
    /// role there.
    #[must_use]
    pub fn with_oidc(mut self, verifier: oidc::Verifier) -> Self {
        self.oidc = Some(verifier);
        self
    }
}

/// Every route with its documentation; one `routes!` per path. The order is the order of the
/// paths in the OpenAPI document.
fn api_routes() -> OpenApiRouter<AppState> {
    use routes::{
        api_keys, audit, billing, identities, invitations, lifecycle, limits, memberships,
        memory_pins, onboarding, plans, projects, runs, support, tenants, usage, users, webhooks,
    };
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(runs::admit, runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::heartbeat))
        .routes(routes!(runs::complete))
        .routes(routes!(api_keys::issue, api_keys::list))
        .routes(routes!(api_keys::update))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(api_keys::rotate))
        .routes(routes!(api_keys::verify))
        .routes(routes!(memory_pins::list))
        .routes(routes!(memory_pins::cleanup))
        .routes(routes!(
            memory_pins::upsert,
            memory_pins::get,
            memory_pins::delete
        ))
        .routes(routes!(onboarding::status))
        .routes(routes!(onboarding::handshake))
        .routes(routes!(usage::summary))
        .routes(routes!(invitations::accept))
        .routes(routes!(identities::me))
        .routes(routes!(invitations::invite, invitations::list_invitations))
        .routes(routes!(invitations::resend_invitation))
        .routes(routes!(invitations::revoke_invitation))
        .routes(routes!(tenants::list_projects, projects::create_project))
        .routes(routes!(
            tenants::get_project,
            projects::rename_project,
            projects::delete_project
        ))
        .routes(routes!(projects::leave_project))
        .routes(routes!(projects::restore_project))
        .routes(routes!(users::list_users))
        .routes(routes!(users::get_user, memberships::remove_user))
        .routes(routes!(memberships::list_tenant_users))
        .routes(routes!(memberships::change_role))
        .routes(routes!(memberships::transfer_ownership))
        .routes(routes!(users::get_profile, users::update_profile))
        .routes(routes!(billing::billing_summary))
        .routes(routes!(billing::list_invoices))
        .routes(routes!(audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::replay))
        .routes(routes!(webhooks::list_attempts))
        .routes(routes!(support::support_contact))
        .routes(routes!(support::open_ticket, support::list_tickets))
        .routes(routes!(metrics::metrics))
        .routes(routes!(onboarding::advance))
        .routes(routes!(tenants::quotas))
        .routes(routes!(lifecycle::transition, lifecycle::history))
        .routes(routes!(onboarding::force_complete))
        .routes(routes!(tenants::change_plan))
        .routes(routes!(limits::set, limits::remove))
        .routes(routes!(limits::list))
        .routes(routes!(billing::trials::start_trial))
        .routes(routes!(plans::list_plans, plans::create_plan_version))
        .routes(routes!(plans::retire_plan))
        .routes(routes!(plans::entitlements))
        .routes(routes!(users::erasure::erase_me))
        .routes(routes!(users::erasure::erase_user))
}

/// The OpenAPI 3 document of [`router`]'s routes, as served at `/openapi.json` by a router
/// that is not nested (a nested one adds its prefix as the server; see [`router`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document().clone()
}

/// Where the document is served, for the fallbacks' messages: under the router's prefix.
fn document_path(mounted_at: Result<NestedPath, NestedPathRejection>) -> String {
    let prefix = mounted_at.ok();
    let prefix = prefix
        .as_ref()
        .map_or("", |p| p.as_str().trim_end_matches('/'));
    format!("{prefix}/openapi.json")
}

async fn route_not_found(mounted_at: Result<NestedPath, NestedPathRejection>) -> ApiError {
    let document = document_path(mounted_at);
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no such route; {document} lists every route"),
    )
}

async fn method_not_allowed(
    mounted_at: Result<NestedPath, NestedPathRejection>,
) -> impl IntoResponse {
    let document = document_path(mounted_at);
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "this route does not answer this method; {document} lists the methods of every route"
        ),
    )
}

/// The HTTP routes of the account API.
///
/// A host mounts them in its own app with axum's `nest`; the served OpenAPI document then
/// names the prefix as its server (`"servers": [{"url": "/account"}]`; its paths stay
/// relative, `/healthz`), so clients generated from it call the right URLs. Nothing else is
/// needed: the prefix comes from the `nest` itself.
///
/// ```rust,no_run
/// # async fn host(spine: account_spine::Spine) -> std::io::Result<()> {
/// use account_api::{AppState, router};
/// use axum::{Router, routing::get};
///
/// let app = Router::new()
///     .route("/orders", get(|| async { "the host's own route" }))
///     .nest("/account", router(AppState::new(spine)));
/// // GET /account/healthz, and /account/openapi.json with `servers: [{url: "/account"}]`.
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await
/// # }
/// ```
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_routes().split_for_parts();
    routes
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the body layers below: a keyed write's body is read within their limits.
        .route_layer(axum::middleware::from_fn(idempotency::keep_body))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyTimeoutLayer::new(state.edge.body_read_timeout))
        // A `Content-Length` over the limit is refused before any of the body is read.
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(edge::json_payload_too_large))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            consistency::attach,
        ))
        .layer(request_id::trace_layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(
            request_id::drop_unusable_request_id,
        ))
        .with_state(state)
}
