//! `/v1/webhooks`: a tenant's webhook endpoints (register, list, read, change, delete),
//! their signing secrets (shown once, at creation and at each rotation), their delivery
//! attempts, and replays of events already sent (owners and admins: `webhooks:manage`).
//!
//! Over 600 lines: eight routes of one area with their bodies, views and OpenAPI annotations, which
//! read best together.
//!
//! What a receiver gets (headers, body, signature) is described once, in the document's
//! description (`crate::openapi`); the spine signs and delivers. A secret appears in the
//! answers of `POST /v1/webhooks` and `POST /v1/webhooks/{endpoint_id}/rotate-secret` only:
//! every other answer, the audit log and the logs carry none (the views holding one print it
//! redacted), and a keyed retry's stored answer is sealed by the spine.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, FieldErrors, Validate};
use crate::idempotency::Idempotency;
use crate::routes::lists::{Cursor, ListBody, PageQuery};
use account_spine::idempotency::AsTenant;
use account_spine::types::WebhookEndpointId;
use account_spine::webhooks::{
    CreateEndpoint, CreateWebhookEndpoint, CreatedWebhookEndpoint, DEFAULT_ROTATION_GRACE_SECONDS,
    Replay, ReplayWebhookEvents, RotateWebhookSecret, RotatedWebhookSecret, UpdateEndpoint,
    WebhookAttempt, WebhookEndpoint, WebhookError,
};
use account_spine::{KeysetPage, SpineError};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Longest rotation grace period: the spine's bound (7 days), checked here to name the field
/// with the other input problems.
const MAX_GRACE_SECONDS: i64 = account_spine::webhooks::MAX_GRACE_SECONDS as i64;

/// Attempts per page when the client names no `limit`.
const DEFAULT_ATTEMPTS_LIMIT: u64 = 20;

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointView {
    /// The endpoint's id.
    #[schema(value_type = String, format = "uuid")]
    id: WebhookEndpointId,
    /// Where events are sent (normalised: `https://Example.com` reads back
    /// `https://example.com/`).
    url: String,
    /// The owner's note (empty when none).
    description: String,
    /// The event types it takes: exact (`api_key.revoked`), a family (`api_key.*`) or `*`;
    /// empty takes every type.
    #[schema(schema_with = crate::openapi::event_type_patterns)]
    event_types: Vec<String>,
    /// Whether events are sent to it.
    enabled: bool,
    /// Why it is disabled: `by_request` (its owner disabled it), `failing` (its retry
    /// schedule ran out, about a day of failures) or `gone` (it answered 410); `null` while
    /// enabled. Enabling it again clears this and retries the event it stopped at.
    #[schema(schema_with = crate::openapi::disabled_reason)]
    disabled_reason: Option<String>,
    /// Since when its deliveries fail; `null` while they succeed.
    failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation signs too; `null` when no rotation's
    /// grace is running.
    previous_secret_until: Option<DateTime<Utc>>,
    /// When it was registered.
    created_at: DateTime<Utc>,
    /// When its owner last changed it.
    updated_at: DateTime<Utc>,
}

fn view(endpoint: WebhookEndpoint) -> EndpointView {
    EndpointView {
        id: endpoint.id,
        url: endpoint.url,
        description: endpoint.description,
        event_types: endpoint.event_types,
        enabled: endpoint.enabled,
        disabled_reason: endpoint.disabled_reason,
        failing_since: endpoint.failing_since,
        previous_secret_until: endpoint.previous_secret_until,
        created_at: endpoint.created_at,
        updated_at: endpoint.updated_at,
    }
}

/// An endpoint with its signing secret, shown in this answer only.
#[derive(Serialize, ToSchema)]
pub(crate) struct EndpointWithSecretView {
    /// The endpoint.
    #[serde(flatten)]
    endpoint: EndpointView,
    /// The signing secret (`whsec_` and the base64 of 32 random bytes): give it to the
    /// receiver, which checks `webhook-signature` with it. It is not shown again.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]+={0,2}$")]
    secret: String,
}

impl std::fmt::Debug for EndpointWithSecretView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointWithSecretView")
            .field("endpoint", &self.endpoint)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// Where events are sent: an absolute `http` or `https` URL with a host, no user name or
    /// password and no fragment, at most 2048 characters (`invalid_webhook_url` otherwise).
    /// Where it may point is checked at each delivery: the server refuses private, loopback
    /// and link-local addresses unless it is configured to allow them.
    #[schema(max_length = 2048, format = "uri")]
    url: String,
    /// A note, at most 256 characters (empty).
    #[serde(default)]
    #[schema(max_length = 256)]
    description: String,
    /// The event types it takes (at most 64): exact (`api_key.revoked`), a family
    /// (`api_key.*`) or `*` (`invalid_event_types` otherwise). Absent or empty: every type.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::event_type_patterns)]
    event_types: Vec<String>,
    /// Whether events are sent to it from now on (true).
    #[serde(default = "enabled")]
    #[schema(default = true)]
    enabled: bool,
}

fn enabled() -> bool {
    true
}

impl Validate for CreateBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// Registers an endpoint for the caller's tenant: it receives the tenant's events written
/// from now on (of the types it takes), each signed with its secret, which this answer holds
/// once. A tenant holds at most 50 endpoints.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook_endpoint",
    security(("bearer" = []), ("api_key" = [])),
    request_body = CreateBody,
    responses(
        (status = 201, description = "Registered; `secret` is shown this once.", body = EndpointWithSecretView),
        (status = 403, description = "A key without `webhooks:manage`, or a person below admin (`forbidden`).", body = crate::error::ErrorBody),
        (status = 409, description = "`too_many_webhook_endpoints`: the tenant holds 50; delete one first.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_webhook_url` (field `url`), `invalid_event_types` \
            (field `event_types`), `invalid_description` (field `description`) or \
            `invalid_request`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let endpoint = CreateEndpoint::new(body.url)
        .with_description(body.description)
        .with_event_types(body.event_types)
        .with_disabled(!body.enabled);
    let render = |created: CreatedWebhookEndpoint| {
        let secret = created.secret.expose().to_owned();
        let endpoint = view(created.endpoint);
        (
            StatusCode::CREATED,
            Json(EndpointWithSecretView { endpoint, secret }),
        )
    };
    let create = CreateWebhookEndpoint { endpoint };
    idempotency
        .answer(&state, AsTenant(&principal, create), render)
        .await
}

/// The tenant's endpoints, oldest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "list_webhook_endpoints",
    security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of endpoints.", body = ListBody<EndpointView>),
        (status = 403, description = "A key without `webhooks:manage`, or a person below admin (`forbidden`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ListBody<EndpointView>>, ApiError> {
    // A tenant holds at most 50 endpoints.
    let all = state.spine.list_webhook_endpoints(&principal).await?;
    Ok(Json(ListBody::from_all(all, page.offset_page(), view)))
}

/// An endpoint's id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct EndpointPath {
    /// The endpoint's id.
    #[param(value_type = String, format = "uuid")]
    endpoint_id: WebhookEndpointId,
}

/// One endpoint of the tenant.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{endpoint_id}",
    tag = "webhooks",
    operation_id = "get_webhook_endpoint",
    security(("bearer" = []), ("api_key" = [])),
    params(EndpointPath),
    responses(
        (status = 200, description = "The endpoint.", body = EndpointView),
        (status = 404, description = "`webhook_endpoint_not_found`: no such endpoint in the tenant.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<EndpointPath>,
) -> Result<Json<EndpointView>, ApiError> {
    let endpoint = state
        .spine
        .get_webhook_endpoint(&principal, path.endpoint_id)
        .await?;
    Ok(Json(view(endpoint)))
}

/// `PATCH /v1/webhooks/{endpoint_id}`: what changes; an absent (or `null`) field keeps its
/// value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    /// A new URL (the rules of creation).
    #[schema(max_length = 2048, format = "uri")]
    url: Option<String>,
    /// A new note, at most 256 characters; `""` clears it.
    #[schema(max_length = 256)]
    description: Option<String>,
    /// New event types (the rules of creation); `[]` takes every type.
    #[schema(schema_with = crate::openapi::event_type_patterns)]
    event_types: Option<Vec<String>>,
    /// Enable (its failure state is cleared and the event it stopped at is sent again at
    /// once) or disable (`disabled_reason` becomes `by_request`).
    enabled: Option<bool>,
}

impl Validate for UpdateBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// Changes an endpoint: URL, note, event types, enabled.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{endpoint_id}",
    tag = "webhooks",
    operation_id = "update_webhook_endpoint",
    security(("bearer" = []), ("api_key" = [])),
    params(EndpointPath),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "Changed.", body = EndpointView),
        (status = 404, description = "`webhook_endpoint_not_found`: no such endpoint in the tenant.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_webhook_url` (field `url`), `invalid_event_types` \
            (field `event_types`), `invalid_description` (field `description`) or \
            `invalid_request`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<EndpointPath>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<EndpointView>, ApiError> {
    let mut changes = UpdateEndpoint::default();
    if let Some(url) = body.url {
        changes = changes.with_url(url);
    }
    if let Some(description) = body.description {
        changes = changes.with_description(description);
    }
    if let Some(types) = body.event_types {
        changes = changes.with_event_types(types);
    }
    if let Some(enabled) = body.enabled {
        changes = changes.with_enabled(enabled);
    }
    let endpoint = state
        .spine
        .update_webhook_endpoint(&principal, path.endpoint_id, changes)
        .await?;
    Ok(Json(view(endpoint)))
}

/// Deletes an endpoint with its attempts log and queued replays; nothing more is sent to it.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{endpoint_id}",
    tag = "webhooks",
    operation_id = "delete_webhook_endpoint",
    security(("bearer" = []), ("api_key" = [])),
    params(EndpointPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`webhook_endpoint_not_found`: no such endpoint in the tenant.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<EndpointPath>,
) -> Result<StatusCode, ApiError> {
    state
        .spine
        .delete_webhook_endpoint(&principal, path.endpoint_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/webhooks/{endpoint_id}/rotate-secret`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateBody {
    /// How long the previous secret keeps signing beside the new one, 0 (it stops now) to
    /// 604 800 seconds (7 days); 86 400 (a day) when absent.
    #[schema(minimum = 0, maximum = 604800, default = 86400)]
    grace_seconds: Option<i64>,
}

impl Validate for RotateBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.range("grace_seconds", self.grace_seconds, 0, MAX_GRACE_SECONDS);
    }
}

/// Gives an endpoint a new secret, shown in this answer once. Until `previous_secret_until`
/// every delivery carries a signature by each secret (two `v1,` entries in
/// `webhook-signature`), so the receiver can switch to the new one without losing a message.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{endpoint_id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    security(("bearer" = []), ("api_key" = [])),
    params(EndpointPath),
    request_body = RotateBody,
    responses(
        (status = 200, description = "Rotated; `secret` is the new one, shown this once.", body = EndpointWithSecretView),
        (status = 404, description = "`webhook_endpoint_not_found`: no such endpoint in the tenant.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<EndpointPath>,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Response, ApiError> {
    let grace_seconds = body
        .grace_seconds
        .and_then(|seconds| u32::try_from(seconds).ok())
        .unwrap_or(DEFAULT_ROTATION_GRACE_SECONDS);
    let rotate = RotateWebhookSecret {
        id: path.endpoint_id,
        grace_seconds,
    };
    let render = |rotated: RotatedWebhookSecret| {
        let secret = rotated.secret.expose().to_owned();
        let endpoint = view(rotated.endpoint);
        Json(EndpointWithSecretView { endpoint, secret })
    };
    idempotency
        .answer(&state, AsTenant(&principal, rotate), render)
        .await
}

/// `POST /v1/webhooks/{endpoint_id}/replay`: one event (`event_id`), or every event of a time
/// range (`from` and `to`), not both. Parsed with every field optional, so a body naming both
/// or neither is refused as `invalid_replay`; documented as the two shapes it accepts
/// ([`ReplayBody::schema`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    /// The event to send again.
    event_id: Option<Uuid>,
    /// The range's first instant.
    from: Option<DateTime<Utc>>,
    /// The first instant after the range.
    to: Option<DateTime<Utc>>,
}

impl utoipa::PartialSchema for ReplayBody {
    /// `oneOf` an event and a range, each object closed.
    fn schema() -> RefOr<Schema> {
        let string = |format: SchemaFormat, description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(format))
                .description(Some(description))
        };
        let closed = || Some(AdditionalProperties::FreeForm(false));
        let event = ObjectBuilder::new()
            .title(Some("One event"))
            .property(
                "event_id",
                string(
                    SchemaFormat::Custom("uuid".into()),
                    "The event to send again: its id (the `webhook-id` it was sent with is \
                     `msg_` and this id's 32 hex digits, without hyphens).",
                ),
            )
            .required("event_id")
            .additional_properties(closed());
        let date_time = || SchemaFormat::KnownFormat(KnownFormat::DateTime);
        let range = ObjectBuilder::new()
            .title(Some("A time range"))
            .property(
                "from",
                string(
                    date_time(),
                    "Events that occurred at or after this time (RFC 3339).",
                ),
            )
            .property(
                "to",
                string(
                    date_time(),
                    "... and before this time (RFC 3339), after `from`.",
                ),
            )
            .required("from")
            .required("to")
            .additional_properties(closed());
        OneOfBuilder::new()
            .description(Some(
                "One event (`event_id`), or every event of a time range (`from` and `to`); a \
                 body with both, or neither, is refused with 422 `invalid_replay`.",
            ))
            .item(event)
            .item(range)
            .into()
    }
}

impl ToSchema for ReplayBody {}

impl Validate for ReplayBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// How many events a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayView {
    /// Events queued for the endpoint.
    queued: u64,
}

/// Sends events to an endpoint again, beside its regular stream: one event, or every event of
/// `[from, to)` that the endpoint already got past and whose type it takes (at most 10 000 a
/// request). Each is a new message with its own retries, under the `webhook-id` it had.
/// Only events still kept can be replayed; an event already queued for replay is not queued
/// twice.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{endpoint_id}/replay",
    tag = "webhooks",
    operation_id = "replay_webhook_events",
    security(("bearer" = []), ("api_key" = [])),
    params(EndpointPath),
    request_body = ReplayBody,
    responses(
        (status = 202, description = "Queued.", body = ReplayView),
        (status = 404, description = "`webhook_endpoint_not_found`, or `event_not_found` (field \
            `event_id`): the tenant keeps no such event.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_replay`: both `event_id` and a range, neither, \
            only one end of the range, or `from` not before `to`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<EndpointPath>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Response, ApiError> {
    let replay = match (body.event_id, body.from, body.to) {
        (Some(event), None, None) => Replay::Event(event),
        (None, Some(from), Some(to)) => Replay::Range { from, to },
        _ => return Err(SpineError::from(WebhookError::InvalidReplay).into()),
    };
    let replay = ReplayWebhookEvents {
        id: path.endpoint_id,
        replay,
    };
    let render = |queued| (StatusCode::ACCEPTED, Json(ReplayView { queued }));
    idempotency
        .answer(&state, AsTenant(&principal, replay), render)
        .await
}

/// A delivery attempt: one request to the endpoint (or the refusal to send one).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptView {
    /// The attempt's id.
    #[schema(value_type = String, format = "uuid")]
    id: Uuid,
    /// The event sent (its `webhook-id` is `msg_` and these 32 hex digits, without hyphens).
    #[schema(value_type = String, format = "uuid")]
    event_id: Uuid,
    /// The event's type.
    event_type: String,
    /// The event's position in the tenant's stream.
    seq: i64,
    /// 1 for the first attempt at the event (or at its replay), then 2, 3, ...
    attempt: i32,
    /// Whether it was a replay.
    replay: bool,
    /// The status the endpoint answered; `null` when it did not answer.
    status: Option<i32>,
    /// Why there was no answer: `timeout`, `connect`, `unresolved` (the host did not
    /// resolve), `refused_destination` (it resolved to an address the server does not send
    /// to), `invalid_url`, `invalid_request` or `other`; `null` when it answered.
    failure: Option<String>,
    /// Milliseconds until the answer (or the failure).
    latency_ms: i32,
    /// The start of the answer's body (at most 1024 bytes).
    response_snippet: String,
    /// When.
    attempted_at: DateTime<Utc>,
}

fn attempt_view(attempt: WebhookAttempt) -> AttemptView {
    AttemptView {
        id: attempt.id,
        event_id: attempt.event_id,
        event_type: attempt.event_type,
        seq: attempt.seq,
        attempt: attempt.attempt,
        replay: attempt.replay,
        status: attempt.status,
        failure: attempt.failure,
        latency_ms: attempt.latency_ms,
        response_snippet: attempt.snippet,
        attempted_at: attempt.attempted_at,
    }
}

/// `?limit=&cursor=`: a page of attempts, by cursor only, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AttemptsPage {
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Continue after the page that answered this `next_cursor` (opaque; pass it unchanged).
    #[param(value_type = Option<String>)]
    cursor: Option<Cursor<Uuid>>,
}

impl Validate for AttemptsPage {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.range("limit", self.limit, 1, crate::routes::lists::MAX_PAGE);
    }
}

/// An endpoint's delivery attempts, newest first, a page at a time by cursor: every page
/// that has more answers `next_cursor`; pass it as `cursor` for the next. Attempts are kept
/// for a limited time.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{endpoint_id}/attempts",
    tag = "webhooks",
    operation_id = "list_webhook_attempts",
    security(("bearer" = []), ("api_key" = [])),
    params(EndpointPath, AttemptsPage),
    responses(
        (status = 200, description = "A page of attempts.", body = ListBody<AttemptView>),
        (status = 404, description = "`webhook_endpoint_not_found`: no such endpoint in the tenant.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn list_attempts(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<EndpointPath>,
    ApiQuery(page): ApiQuery<AttemptsPage>,
) -> Result<Json<ListBody<AttemptView>>, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_ATTEMPTS_LIMIT);
    let before = page.cursor.map(|Cursor(id)| id);
    let id = path.endpoint_id;
    let mut attempts = state
        .spine
        .list_webhook_attempts(&principal, id, before, limit)
        .await?;
    // The spine reads `limit` rows: when the page is full, one more read says whether any
    // follow, so `has_more` and `next_cursor` are exact (no empty last page).
    if attempts.len() as u64 == limit
        && let Some(last) = attempts.last().map(|a| a.id)
    {
        let next = state
            .spine
            .list_webhook_attempts(&principal, id, Some(last), 1)
            .await?;
        attempts.extend(next);
    }
    let page = KeysetPage::from_overfetched(attempts, limit, |a| a.id);
    Ok(Json(ListBody::from_keyset_page(
        page,
        limit,
        |id| id,
        attempt_view,
    )))
}
