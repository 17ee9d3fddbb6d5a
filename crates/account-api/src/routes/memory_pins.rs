//! `/v1/memory/pins`: upsert, get, list, delete, cleanup.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, ListQuery, Validate};
use crate::idempotency::Idempotency;
use crate::json_object::JsonObject;
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::idempotency::AsTenant;
use account_spine::memory_pins::{CleanupPins, MemoryPin, SavePin};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// Longest TTL: one year, in seconds.
const MAX_TTL_SECONDS: i32 = 31_536_000;

/// A pin as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PinView {
    /// Its key.
    key: String,
    /// Its value, a JSON object.
    #[schema(value_type = Object)]
    value: Value,
    /// Who wrote it.
    source: String,
    /// Its lifetime from the last write; `null` keeps it forever.
    ttl_seconds: Option<i32>,
    /// When it expires.
    expires_at: Option<DateTime<Utc>>,
    /// When it was first written.
    created_at: DateTime<Utc>,
    /// When it was last written.
    updated_at: DateTime<Utc>,
}

impl From<MemoryPin> for PinView {
    fn from(pin: MemoryPin) -> Self {
        Self {
            key: pin.key,
            value: pin.value,
            source: pin.source,
            ttl_seconds: pin.ttl_seconds,
            expires_at: pin.expires_at,
            created_at: pin.created_at,
            updated_at: pin.updated_at,
        }
    }
}

/// A pin's key in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct PinPath {
    /// The pin's key: dot-separated segments of letters, digits, `_`, `-` and `:`.
    key: String,
}

/// `PUT /v1/memory/pins/{key}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertBody {
    /// A JSON object, within the plan's size limit.
    #[schema(value_type = Object)]
    value: JsonObject,
    /// Who writes (`api` by default).
    source: Option<String>,
    /// Lifetime from this write, 0 to 31 536 000 seconds (a year); absent keeps it forever.
    #[schema(minimum = 0, maximum = 31536000)]
    ttl_seconds: Option<i32>,
}

impl Validate for UpsertBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.range("ttl_seconds", self.ttl_seconds, 0, MAX_TTL_SECONDS);
    }
}

/// Inserts or replaces a pin; its TTL restarts with this write.
#[utoipa::path(
    put,
    path = "/v1/memory/pins/{key}",
    tag = "memory-pins",
    operation_id = "upsert_pin",
    security(("bearer" = []), ("api_key" = [])),
    params(PinPath),
    request_body = UpsertBody,
    responses((status = 200, description = "Saved.", body = PinView))
)]
pub(crate) async fn upsert(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<PinPath>,
    ApiJson(body): ApiJson<UpsertBody>,
) -> Result<Json<PinView>, ApiError> {
    let pin = SavePin {
        key: path.key,
        value: body.value.into_value(),
        source: body.source,
        ttl_seconds: body.ttl_seconds,
    };
    Ok(Json(state.spine.upsert_pin(&principal, pin).await?.into()))
}

/// A live pin.
#[utoipa::path(
    get,
    path = "/v1/memory/pins/{key}",
    tag = "memory-pins",
    operation_id = "get_pin",
    security(("bearer" = []), ("api_key" = [])),
    params(PinPath),
    responses((status = 200, description = "The pin.", body = PinView))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<PinPath>,
) -> Result<Json<PinView>, ApiError> {
    Ok(Json(
        state.spine.get_pin(&principal, &path.key).await?.into(),
    ))
}

/// The filters of `GET /v1/memory/pins?prefix=&include_expired=` (its page is a [`PageQuery`]).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilter {
    /// Only keys starting with this.
    prefix: Option<String>,
    /// Include expired pins (false).
    #[serde(default)]
    include_expired: bool,
}

impl Validate for ListFilter {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// The tenant's pins, by key.
#[utoipa::path(
    get,
    path = "/v1/memory/pins",
    tag = "memory-pins",
    operation_id = "list_pins",
    security(("bearer" = []), ("api_key" = [])),
    params(ListFilter, PageQuery),
    responses((status = 200, description = "A page of pins.", body = ListBody<PinView>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<ListFilter, PageQuery>,
) -> Result<Json<ListBody<PinView>>, ApiError> {
    let page = page.offset_page();
    let pins = state
        .spine
        .list_pins(
            &principal,
            filter.prefix.as_deref(),
            filter.include_expired,
            page,
        )
        .await?;
    Ok(Json(ListBody::from_page(pins, page, PinView::from)))
}

/// Deletes a pin.
#[utoipa::path(
    delete,
    path = "/v1/memory/pins/{key}",
    tag = "memory-pins",
    operation_id = "delete_pin",
    security(("bearer" = []), ("api_key" = [])),
    params(PinPath),
    responses((status = 204, description = "Deleted."))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<PinPath>,
) -> Result<StatusCode, ApiError> {
    if state.spine.delete_pin(&principal, &path.key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "pin_not_found",
            "pin not found",
        ))
    }
}

/// How many expired pins a cleanup removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CleanupView {
    /// Pins removed.
    removed: u64,
}

/// Removes the tenant's expired pins.
#[utoipa::path(
    post,
    path = "/v1/memory/pins/cleanup",
    tag = "memory-pins",
    operation_id = "cleanup_pins",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Cleaned up.", body = CleanupView))
)]
pub(crate) async fn cleanup(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
) -> Result<Response, ApiError> {
    let render = |removed| Json(CleanupView { removed });
    idempotency
        .answer(&state, AsTenant(&principal, CleanupPins), render)
        .await
}
