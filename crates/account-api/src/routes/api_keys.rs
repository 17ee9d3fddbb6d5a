//! `/v1/api-keys`: issue, list, revoke, rotate.

use super::ListBody;
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use account_spine::api_keys::IssueKey;
use account_spine::types::{ApiKeyId, ApiKeyStatus};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// A key as the API shows it (never the secret, never the digest).
#[derive(Debug, Serialize)]
pub(crate) struct KeyView {
    pub(crate) id: ApiKeyId,
    pub(crate) name: String,
    pub(crate) key_prefix: String,
    pub(crate) status: ApiKeyStatus,
    pub(crate) permissions: Vec<String>,
    pub(crate) allowed_workers: Option<Vec<String>>,
    pub(crate) rate_limit_rpm: Option<i32>,
    pub(crate) max_concurrent_runs: Option<i32>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    pub(crate) last_used_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
}

fn view(key: account_spine::api_keys::APIKeySnapshot) -> KeyView {
    KeyView {
        id: key.id,
        name: key.name,
        key_prefix: key.key_prefix,
        status: key.status,
        permissions: key.permissions,
        allowed_workers: key.allowed_workers,
        rate_limit_rpm: key.rate_limit_rpm,
        max_concurrent_runs: key.max_concurrent_runs,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        last_used_at: key.last_used_at,
        created_at: key.created_at,
    }
}

/// A newly issued key: the secret appears here and nowhere else, ever.
#[derive(Debug, Serialize)]
pub(crate) struct IssuedView {
    key: KeyView,
    secret: String,
}

/// `POST /v1/api-keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    name: String,
    #[serde(default)]
    permissions: Vec<String>,
    allowed_workers: Option<Vec<String>>,
    rate_limit_rpm: Option<i32>,
    max_concurrent_runs: Option<i32>,
    expires_at: Option<DateTime<Utc>>,
}

pub(crate) async fn issue(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Json(body): Json<IssueBody>,
) -> Result<(StatusCode, Json<IssuedView>), ApiError> {
    let request = IssueKey {
        name: body.name,
        permissions: body.permissions,
        allowed_workers: body.allowed_workers,
        rate_limit_rpm: body.rate_limit_rpm,
        max_concurrent_runs: body.max_concurrent_runs,
        expires_at: body.expires_at,
    };
    let issued = state.spine.issue_api_key(&principal, request).await?;
    let secret = issued.plaintext.expose().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(IssuedView {
            key: view(issued.key),
            secret,
        }),
    ))
}

/// `GET /v1/api-keys?include_revoked=`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    include_revoked: bool,
    limit: Option<u64>,
    offset: Option<u64>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Json<ListBody<KeyView>>, ApiError> {
    let page = super::page(query.limit, query.offset);
    let keys = state
        .spine
        .list_api_keys(&principal, query.include_revoked, page)
        .await?;
    Ok(Json(ListBody::from_page(keys, page, view)))
}

/// `POST /v1/api-keys/{id}/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    reason: String,
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<ApiKeyId>,
    Json(body): Json<RevokeBody>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(view(
        state
            .spine
            .revoke_api_key(&principal, id, &body.reason)
            .await?
            .key,
    )))
}

/// `POST /v1/api-keys/{id}/rotate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateBody {
    #[serde(default)]
    grace_seconds: i64,
}

/// The new key and the old one's shortened expiry.
#[derive(Debug, Serialize)]
pub(crate) struct RotatedView {
    key: KeyView,
    secret: String,
    previous: KeyView,
}

pub(crate) async fn rotate(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<ApiKeyId>,
    Json(body): Json<RotateBody>,
) -> Result<(StatusCode, Json<RotatedView>), ApiError> {
    let rotated = state
        .spine
        .rotate_api_key(&principal, id, TimeDelta::seconds(body.grace_seconds))
        .await?;
    let secret = rotated.issued.plaintext.expose().to_owned();
    Ok((
        StatusCode::CREATED,
        Json(RotatedView {
            key: view(rotated.issued.key),
            secret,
            previous: view(rotated.previous),
        }),
    ))
}
