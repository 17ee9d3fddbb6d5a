//! Authentication: an API key in `Authorization: Bearer` or `X-API-Key`, verified by the spine,
//! then counted against the key's `rate_limit_rpm`; or a signed-in person's JWT in
//! `Authorization: Bearer`, verified against the configured issuers ([`crate::oidc`]), acting
//! in the tenant `X-Tenant-Id` names with their membership's role there.

use crate::AppState;
use crate::error::ApiError;
use crate::oidc::{TokenError, Verifier};
use account_spine::identities::SignedIn;
use account_spine::types::TenantId;
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
/// address is also recorded in the request's span. With the client's `Consistency-Token`, if
/// it sent one (400 when it is not one).
pub(crate) fn request_meta(parts: &Parts, state: &AppState) -> Result<RequestMeta, ApiError> {
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
    meta.read_after = crate::consistency::sent(parts)?;
    Ok(meta)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or_else(ApiError::unauthorized)?;
        if Verifier::looks_like_jwt(key) {
            let signed_in = signed_in(key, state).await?;
            let tenant = named_tenant(parts)?;
            let principal = state
                .spine
                .identity_principal(&signed_in, tenant, request_meta(parts, state)?)
                .await?;
            crate::consistency::saw_principal(parts, &principal);
            return Ok(Self(principal));
        }
        let principal = state
            .spine
            .authenticate_api_key(key, request_meta(parts, state)?)
            .await?;
        if let Actor::ApiKey { key_id, .. } = &principal.actor {
            crate::request_id::record_key_id(key_id);
        }
        state.spine.admit_request(&principal).await?;
        crate::consistency::saw_principal(parts, &principal);
        Ok(Self(principal))
    }
}

/// The person a bearer JWT vouches for, verified against the configured issuers.
async fn signed_in(token: &str, state: &AppState) -> Result<SignedIn, ApiError> {
    let verifier = state.oidc.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "sign_in_not_configured",
            "this API accepts API keys only: no identity provider is configured",
        )
    })?;
    let identity = verifier.verify(token).await.map_err(token_refused)?;
    Ok(SignedIn::new(identity.issuer, identity.subject))
}

/// A refused token: 401 with the refusal's own code (a client fixes a token, not a guess);
/// 503 when the issuer's keys cannot be fetched.
fn token_refused(error: TokenError) -> ApiError {
    let status = match error {
        TokenError::KeysUnavailable(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        _ => axum::http::StatusCode::UNAUTHORIZED,
    };
    ApiError::new(status, error.code(), error.to_string())
}

/// The tenant a signed-in person acts in: `X-Tenant-Id`.
fn named_tenant(parts: &Parts) -> Result<TenantId, ApiError> {
    let header = parts
        .headers
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "tenant_required",
                "a signed-in person names the tenant they act in: X-Tenant-Id: <tenant id>",
            )
        })?;
    header.trim().parse().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "tenant_required",
            "X-Tenant-Id must be a tenant id (a UUID)",
        )
    })
}

/// A signed-in person, without a tenant: `GET /v1/me` and accepting an invitation.
#[derive(Debug)]
pub(crate) struct SignedInPerson(pub(crate) SignedIn);

impl FromRequestParts<AppState> for SignedInPerson {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = presented_key(parts)
            .filter(|t| Verifier::looks_like_jwt(t))
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "sign in: Authorization: Bearer <token from your identity provider>",
                )
            })?;
        Ok(Self(signed_in(token, state).await?))
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for SignedInPerson {
    type Rejection = ApiError;

    /// `None` without a bearer JWT; a JWT that is there must verify.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match presented_key(parts).filter(|t| Verifier::looks_like_jwt(t)) {
            None => Ok(None),
            Some(token) => Ok(Some(Self(signed_in(token, state).await?))),
        }
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
            .authenticate_operator_key(key, request_meta(parts, state)?)
            .await?;
        crate::consistency::saw_operator(parts, &operator);
        Ok(Self(operator))
    }
}
