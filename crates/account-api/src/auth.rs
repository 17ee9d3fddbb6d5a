//! Authentication: an API key in `Authorization: Bearer` or `X-API-Key`, verified by the spine,
//! then counted against the key's `rate_limit_rpm`.

use crate::AppState;
use crate::error::ApiError;
use account_spine::{Actor, Principal, RequestMeta};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The verified caller of a request.
#[derive(Debug)]
pub(crate) struct Authenticated(pub(crate) Principal);

fn presented_key(parts: &Parts) -> Option<&str> {
    let headers = &parts.headers;
    if let Some(bearer) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Request metadata for audit rows: request id, client address (the TCP peer, or what a
/// trusted proxy reported; see [`client_address`](crate::client_address)), user agent. The
/// address is also recorded in the request's span.
pub(crate) fn request_meta(parts: &Parts, state: &AppState) -> RequestMeta {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(500).collect())
    };
    let mut meta = RequestMeta::default();
    meta.request_id = header("x-request-id");
    meta.ip_address = crate::client_address::client_address(parts, &state.edge.trusted_proxies)
        .map(|address| address.to_string());
    if let Some(address) = &meta.ip_address {
        crate::request_id::record_client_address(address);
    }
    meta.user_agent = header("user-agent");
    meta
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or_else(ApiError::unauthorized)?;
        let principal = state
            .spine
            .authenticate_api_key(key, request_meta(parts, state))
            .await?;
        if let Actor::ApiKey {
            key_id,
            rate_limit_rpm,
            ..
        } = &principal.actor
        {
            crate::request_id::record_key_id(key_id);
            state
                .limits
                .check(*key_id, *rate_limit_rpm)
                .map_err(|limited| {
                    ApiError::rate_limited(limited.rpm, limited.retry_after_seconds)
                })?;
        }
        Ok(Self(principal))
    }
}

/// A verified platform operator (an `acc_op_` key). A tenant key is refused with 403: it is a
/// valid credential, but never one for platform routes.
#[derive(Debug)]
pub(crate) struct Operator(pub(crate) account_spine::OperatorPrincipal);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or_else(ApiError::unauthorized)?;
        if !account_spine::operators::is_operator_key(key) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "operator_key_required",
                "platform routes need a platform operator key (acc_op_...); tenant API keys cannot call them",
            ));
        }
        let operator = state
            .spine
            .authenticate_operator_key(key, request_meta(parts, state))
            .await?;
        Ok(Self(operator))
    }
}
