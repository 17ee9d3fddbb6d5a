//! `/v1/api-keys`: issue, list, update metadata, revoke, rotate; and `/v1/keys/verify`, where
//! a host's other services check the keys presented to them.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, FieldErrors, ListQuery, Validate};
use crate::idempotency::Idempotency;
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::api_keys::{
    IssueKey, IssuedKey, KeyVerification, RevokeApiKey, RevokedKey, RotateApiKey, RotatedKey,
};
use account_spine::idempotency::AsTenant;
use account_spine::types::{ApiKeyId, ApiKeyName, ApiKeyStatus};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// Longest revocation reason, in characters.
const MAX_REASON: usize = 255;
/// Accepted requests per minute of a key.
const RATE_LIMIT_RPM: (i32, i32) = (1, 1000);
/// Accepted concurrent runs of a key.
const MAX_CONCURRENT_RUNS: (i32, i32) = (1, 100);
/// Most workers a key may be restricted to.
const MAX_ALLOWED_WORKERS: usize = 100;
/// Longest rotation grace period: 7 days.
const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// A key as the API shows it (never the secret, never the digest).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyView {
    /// The key's id.
    #[schema(value_type = String, format = "uuid")]
    pub(crate) id: ApiKeyId,
    /// Its label.
    pub(crate) name: String,
    /// The first characters of the key, to recognise it.
    pub(crate) key_prefix: String,
    /// Whether it works, computed now: `expired` once `expires_at` has passed, `revoked`, or
    /// `active`. A rotated key stays `active` until its grace period ends; then
    /// `successor_id` names the key that replaced it and `expires_at` is the grace's end.
    #[schema(schema_with = crate::openapi::key_status)]
    pub(crate) status: ApiKeyStatus,
    /// What it may do.
    pub(crate) permissions: Vec<String>,
    /// Workers it may run; `null` means all.
    pub(crate) allowed_workers: Option<Vec<String>>,
    /// Requests per minute; `null` means no per-key limit.
    pub(crate) rate_limit_rpm: Option<i32>,
    /// Concurrent runs; `null` means the tenant's limit only.
    pub(crate) max_concurrent_runs: Option<i32>,
    /// When it stops working.
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub(crate) last_used_at: Option<DateTime<Utc>>,
    /// When it was issued.
    pub(crate) created_at: DateTime<Utc>,
    /// The key it replaced by rotation.
    #[schema(value_type = Option<String>, format = "uuid")]
    pub(crate) rotated_from_id: Option<ApiKeyId>,
    /// The key that replaced it by rotation; a key is rotated at most once.
    #[schema(value_type = Option<String>, format = "uuid")]
    pub(crate) successor_id: Option<ApiKeyId>,
    /// The tenant's JSON object about the key.
    #[schema(value_type = Option<Object>)]
    pub(crate) metadata: Option<Value>,
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
        rotated_from_id: key.rotated_from_id,
        successor_id: key.successor_id,
        metadata: key.metadata,
    }
}

/// A newly issued key: the secret appears here and nowhere else, ever.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuedView {
    /// The key.
    key: KeyView,
    /// The key itself, shown once.
    secret: String,
}

/// `POST /v1/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    /// A label, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Permissions (`run:*`, `run:<worker>`, `read:*`, `read:runs`, `read:usage`,
    /// `keys:manage`, `keys:verify`, `users:read`, `users:manage`, `profile:write`,
    /// `support:read`, `support:write`, `billing:read`, `audit:read`); empty means `run:*` and
    /// `read:*`, capped to the issuer's. `keys:manage` (an owner key: manages every key) and
    /// `keys:verify` (a service credential for `POST /v1/keys/verify`) only owners, or an
    /// owner key, may grant; a key grants only what it holds (`permission_too_wide`,
    /// `permission_not_held`).
    #[serde(default)]
    #[schema(max_items = 50)]
    permissions: Vec<String>,
    /// Workers it may run (1 to 100); absent means all.
    #[schema(min_items = 1, max_items = 100)]
    allowed_workers: Option<Vec<String>>,
    /// Requests per minute, 1 to 1000; absent means no per-key limit.
    #[schema(minimum = 1, maximum = 1000)]
    rate_limit_rpm: Option<i32>,
    /// Concurrent runs, 1 to 100.
    #[schema(minimum = 1, maximum = 100)]
    max_concurrent_runs: Option<i32>,
    /// When it stops working (in the future).
    expires_at: Option<DateTime<Utc>>,
    /// A JSON object about the key, at most 4096 bytes serialized (`invalid_metadata`
    /// otherwise); verification returns it.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

impl Validate for IssueBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("name", Some(self.name.trim()), 1, ApiKeyName::MAX);
        let (min, max) = RATE_LIMIT_RPM;
        errors.range("rate_limit_rpm", self.rate_limit_rpm, min, max);
        let (min, max) = MAX_CONCURRENT_RUNS;
        errors.range("max_concurrent_runs", self.max_concurrent_runs, min, max);
        if let Some(workers) = &self.allowed_workers
            && (workers.is_empty() || workers.len() > MAX_ALLOWED_WORKERS)
        {
            errors.add(
                "allowed_workers",
                format!("must list 1 to {MAX_ALLOWED_WORKERS} workers, or be absent for all"),
            );
        }
    }
}

/// Issues a key for the caller's tenant; the answer holds the secret, once.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    operation_id = "issue_api_key",
    security(("bearer" = []), ("api_key" = [])),
    request_body = IssueBody,
    responses((status = 201, description = "Issued.", body = IssuedView))
)]
pub(crate) async fn issue(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<IssueBody>,
) -> Result<Response, ApiError> {
    let request = IssueKey {
        name: body.name,
        permissions: body.permissions,
        allowed_workers: body.allowed_workers,
        rate_limit_rpm: body.rate_limit_rpm,
        max_concurrent_runs: body.max_concurrent_runs,
        expires_at: body.expires_at,
        metadata: body.metadata,
    };
    let render = |issued: IssuedKey| {
        let secret = issued.plaintext.expose().to_owned();
        let key = view(issued.key);
        (StatusCode::CREATED, Json(IssuedView { key, secret }))
    };
    idempotency
        .answer(&state, AsTenant(&principal, request), render)
        .await
}

/// The filters of `GET /v1/api-keys?include_revoked=` (its page is a [`PageQuery`]).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilter {
    /// Include revoked keys (false).
    #[serde(default)]
    include_revoked: bool,
}

impl Validate for ListFilter {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// The tenant's keys.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    operation_id = "list_api_keys",
    security(("bearer" = []), ("api_key" = [])),
    params(ListFilter, PageQuery),
    responses((status = 200, description = "A page of keys.", body = ListBody<KeyView>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<ListFilter, PageQuery>,
) -> Result<Json<ListBody<KeyView>>, ApiError> {
    let page = page.offset_page();
    let keys = state
        .spine
        .list_api_keys(&principal, filter.include_revoked, page)
        .await?;
    Ok(Json(ListBody::from_page(keys, page, view)))
}

/// A key's id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct KeyPath {
    /// The key's id.
    #[param(value_type = String, format = "uuid")]
    id: ApiKeyId,
}

/// `POST /v1/api-keys/{id}/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    /// Why, 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    reason: String,
}

impl Validate for RevokeBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("reason", Some(self.reason.trim()), 1, MAX_REASON);
    }
}

/// Revokes a key of the tenant (idempotent); it stops working at once.
#[utoipa::path(
    post,
    path = "/v1/api-keys/{id}/revoke",
    tag = "api-keys",
    operation_id = "revoke_api_key",
    security(("bearer" = []), ("api_key" = [])),
    params(KeyPath),
    request_body = RevokeBody,
    responses(
        (status = 200, description = "Revoked.", body = KeyView),
        (status = 409, description = "`last_key_manager`: it is the tenant's last key holding \
            `keys:manage` and no owner can sign in; issue another first.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<KeyPath>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Response, ApiError> {
    let revoke = RevokeApiKey {
        key_id: path.id,
        reason: body.reason,
    };
    let render = |revoked: RevokedKey| Json(view(revoked.key));
    idempotency
        .answer(&state, AsTenant(&principal, revoke), render)
        .await
}

/// `POST /v1/api-keys/{id}/rotate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateBody {
    /// How long the old key keeps working, 0 (default) to 604 800 seconds (7 days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
    grace_seconds: i64,
}

impl Validate for RotateBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.range(
            "grace_seconds",
            Some(self.grace_seconds),
            0,
            MAX_GRACE_SECONDS,
        );
    }
}

/// The new key and the old one's shortened expiry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RotatedView {
    /// The new key.
    key: KeyView,
    /// The new key itself, shown once.
    secret: String,
    /// The old key, expiring after the grace period (`previous.expires_at`), with
    /// `successor_id` naming the new key.
    previous: KeyView,
}

/// Rotates a key: a new key now, the old one working until the grace period ends. A key is
/// rotated once: only an active, unexpired key without a successor, and of racing rotations
/// exactly one succeeds.
#[utoipa::path(
    post,
    path = "/v1/api-keys/{id}/rotate",
    tag = "api-keys",
    operation_id = "rotate_api_key",
    security(("bearer" = []), ("api_key" = [])),
    params(KeyPath),
    request_body = RotateBody,
    responses(
        (status = 201, description = "Rotated.", body = RotatedView),
        (status = 409, description = "`api_key_already_rotated` (a key is rotated once; this \
            call wrote nothing), `api_key_not_rotatable` (revoked, expired or frozen), or \
            `api_key_quota_exceeded`.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiPath(path): ApiPath<KeyPath>,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Response, ApiError> {
    let rotate = RotateApiKey {
        key_id: path.id,
        grace: TimeDelta::seconds(body.grace_seconds),
    };
    let render = |rotated: RotatedKey| {
        let secret = rotated.issued.plaintext.expose().to_owned();
        let (key, previous) = (view(rotated.issued.key), view(rotated.previous));
        let rotated = RotatedView {
            key,
            secret,
            previous,
        };
        (StatusCode::CREATED, Json(rotated))
    };
    idempotency
        .answer(&state, AsTenant(&principal, rotate), render)
        .await
}

/// `PATCH /v1/api-keys/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    /// The key's new metadata, a JSON object of at most 4096 bytes serialized; `null` clears
    /// it.
    #[schema(value_type = Option<Object>)]
    metadata: Value,
}

impl Validate for UpdateBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// Replaces a key's metadata (audited as `api_key.updated`).
#[utoipa::path(
    patch,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    operation_id = "update_api_key",
    security(("bearer" = []), ("api_key" = [])),
    params(KeyPath),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "Updated.", body = KeyView),
        (status = 422, description = "`invalid_metadata` (field `metadata`): not an object, \
            over 4096 bytes or holding a NUL character.", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(path): ApiPath<KeyPath>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<KeyView>, ApiError> {
    let metadata = Some(body.metadata).filter(|m| !m.is_null());
    let key = state
        .spine
        .update_api_key_metadata(&principal, path.id, metadata)
        .await?;
    Ok(Json(view(key)))
}

/// `POST /v1/keys/verify`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    /// The key as presented to your service.
    #[schema(max_length = 200)]
    key: String,
}

impl std::fmt::Debug for VerifyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyBody { key: <redacted> }")
    }
}

impl Validate for VerifyBody {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// What is left of the verified key's request allowance, counted across servers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RateLimitView {
    /// Its requests per minute.
    limit: u32,
    /// Requests it may make now.
    remaining: u32,
    /// Seconds until the allowance is full again.
    reset_seconds: u64,
}

/// The verdict on a presented key: `valid`, and either what the key may do or why not.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerifyView {
    /// Whether the key works now.
    valid: bool,
    /// Why not (only when `valid` is false): `malformed_api_key`, `invalid_api_key` (no such
    /// key, or another tenant's), `api_key_revoked`, `api_key_expired`, `api_key_frozen` or
    /// `tenant_inactive`.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    /// The key's tenant (always the caller's).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = "uuid")]
    tenant_id: Option<account_spine::types::TenantId>,
    /// The key's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = "uuid")]
    key_id: Option<ApiKeyId>,
    /// What it may do.
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<String>>,
    /// The tenant's JSON object about the key (`null` when it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// When it stops working (`null`: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Option<DateTime<Utc>>>,
    /// Its per-minute request allowance, counted across servers (`null`: no per-key limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<Option<RateLimitView>>,
}

/// Checks a key presented to one of your services. The caller is a service credential: a key
/// holding `keys:verify` (or `keys:manage`). Only keys of the caller's tenant verify; another
/// tenant's key is answered like a made-up one (`invalid_api_key`). Verifying counts nothing
/// against the presented key's rate limit and records no use of it; `rate_limit` shows what
/// is left of its allowance, counted across every server on the database (as this server
/// last saw it, at most a second ago).
#[utoipa::path(
    post,
    path = "/v1/keys/verify",
    tag = "api-keys",
    operation_id = "verify_api_key",
    security(("bearer" = []), ("api_key" = [])),
    request_body = VerifyBody,
    responses((status = 200, description = "The verdict, valid or not.", body = VerifyView))
)]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<VerifyView>, ApiError> {
    let verdict = state
        .spine
        .verify_presented_key(&principal, &body.key)
        .await?;
    Ok(Json(match verdict {
        KeyVerification::Valid(key) => {
            let allowance = state
                .spine
                .key_allowance(key.tenant_id, key.key_id, key.rate_limit_rpm)
                .await?;
            VerifyView {
                valid: true,
                code: None,
                tenant_id: Some(key.tenant_id),
                key_id: Some(key.key_id),
                permissions: Some(key.permissions),
                metadata: Some(key.metadata.unwrap_or(Value::Null)),
                expires_at: Some(key.expires_at),
                rate_limit: Some(allowance.map(|a| RateLimitView {
                    limit: a.limit,
                    remaining: a.remaining,
                    reset_seconds: a.reset_seconds(),
                })),
            }
        }
        KeyVerification::Invalid { code } => VerifyView {
            valid: false,
            code: Some(code),
            tenant_id: None,
            key_id: None,
            permissions: None,
            metadata: None,
            expires_at: None,
            rate_limit: None,
        },
        // A verdict added later is not guessed at: refuse rather than answer valid.
        _ => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the key's verdict could not be shown",
            ));
        }
    }))
}
