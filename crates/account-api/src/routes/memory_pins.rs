//! `/v1/memory/pins`: upsert, get, list, delete, cleanup.

use super::ListBody;
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use account_spine::memory_pins::{MemoryPin, SavePin};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A pin as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct PinView {
    key: String,
    value: Value,
    source: String,
    ttl_seconds: Option<i32>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
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

/// `PUT /v1/memory/pins/{key}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertBody {
    value: Value,
    source: Option<String>,
    ttl_seconds: Option<i32>,
}

pub(crate) async fn upsert(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(key): Path<String>,
    Json(body): Json<UpsertBody>,
) -> Result<Json<PinView>, ApiError> {
    let pin = SavePin {
        key,
        value: body.value,
        source: body.source,
        ttl_seconds: body.ttl_seconds,
    };
    Ok(Json(state.spine.upsert_pin(&principal, pin).await?.into()))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(key): Path<String>,
) -> Result<Json<PinView>, ApiError> {
    Ok(Json(state.spine.get_pin(&principal, &key).await?.into()))
}

/// `GET /v1/memory/pins?prefix=&include_expired=`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    prefix: Option<String>,
    #[serde(default)]
    include_expired: bool,
    limit: Option<u64>,
    offset: Option<u64>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Json<ListBody<PinView>>, ApiError> {
    let page = super::page(query.limit, query.offset);
    let pins = state
        .spine
        .list_pins(
            &principal,
            query.prefix.as_deref(),
            query.include_expired,
            page,
        )
        .await?;
    Ok(Json(ListBody::from_page(pins, page, PinView::from)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.spine.delete_pin(&principal, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "pin_not_found",
            "pin not found",
        ))
    }
}

pub(crate) async fn cleanup(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let removed = state.spine.cleanup_pins(&principal).await?;
    Ok(Json(json!({ "removed": removed })))
}
