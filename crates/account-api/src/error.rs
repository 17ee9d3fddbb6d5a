//! Errors as HTTP answers: `{"error": code, "message": ...}` with the engine's status code,
//! plus `fields` (field → what to change) when the request's input was refused, and `quota`
//! (which limit, when it resets) with a `Retry-After` header on a 429.

use crate::quota::{self, QuotaInfo};
use account_spine::rate_limits::RateLimitScope;
use account_spine::{ErrorCode, SpineError};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `invalid_request`, `quota_runs_per_day`.
    pub error: String,
    /// What went wrong and what to change, for people.
    pub message: String,
    /// Field-level messages: the field (a dotted path into the body, or a query or path
    /// parameter) and what is wrong with it. Present when the input was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// Which quota refused the request and when it resets. Present on quota refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaInfo>,
}

/// `RateLimit-Policy`: the limit that refused a request, as `"key";q=<requests>;w=<seconds>`.
const RATE_LIMIT_POLICY: header::HeaderName = header::HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: what is left of it, as `"key";r=<remaining>;t=<seconds until more>`.
const RATE_LIMIT: header::HeaderName = header::HeaderName::from_static("ratelimit");

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Option<BTreeMap<String, String>>,
    quota: Option<Box<QuotaInfo>>,
    retry_after_seconds: Option<u64>,
    /// The policy's name (`key` or `tenant`) and its requests per minute, when a rate limit
    /// refused the request: sent as the `RateLimit-Policy` and `RateLimit` headers.
    rate_limit: Option<(RateLimitScope, u32)>,
}

impl ApiError {
    /// A client error with its own code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
            quota: None,
            retry_after_seconds: None,
            rate_limit: None,
        }
    }

    /// The one answer to every credential problem: no hint of which check failed.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
        )
    }

    /// Input refused field by field: `status` with `code`, and each field's message.
    pub fn invalid_fields(
        status: StatusCode,
        code: &'static str,
        fields: BTreeMap<String, String>,
    ) -> Self {
        let message = fields
            .iter()
            .map(|(field, problem)| format!("{field}: {problem}"))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            fields: Some(fields),
            ..Self::new(status, code, message)
        }
    }

    /// The body is over [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES): 413 `payload_too_large`.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is larger than {} bytes",
                crate::MAX_BODY_BYTES
            ),
        )
    }

    /// The body stalled longer than the body read timeout: 408 `body_timeout`.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body stopped arriving; send it without pauses",
        )
    }

    /// The per-key request rate is used up: 429 `rate_limited`, retry after `seconds`.
    pub fn rate_limited(rpm: u32, seconds: u64) -> Self {
        Self::rate_limited_in(RateLimitScope::Key, rpm, seconds)
    }

    /// A request rate of `scope` (the key's, or the whole tenant's) is used up.
    fn rate_limited_in(scope: RateLimitScope, rpm: u32, seconds: u64) -> Self {
        Self {
            retry_after_seconds: Some(seconds),
            rate_limit: Some((scope, rpm)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "{} is limited to {rpm} requests per minute; retry in {seconds} s",
                    scope.subject()
                ),
            )
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Adds a field-level message (keeps the code and the message).
    pub fn with_field(mut self, field: impl Into<String>, problem: impl Into<String>) -> Self {
        self.fields
            .get_or_insert_with(BTreeMap::new)
            .insert(field.into(), problem.into());
        self
    }
}

impl From<SpineError> for ApiError {
    fn from(error: SpineError) -> Self {
        Self::from_spine_at(error, chrono::Utc::now())
    }
}

impl ApiError {
    /// The answer to `error`, a quota refusal's reset computed from `now`: routes that can
    /// refuse by a time-based quota pass the spine's clock, which the counters reset by.
    pub(crate) fn from_spine_at(error: SpineError, now: chrono::DateTime<chrono::Utc>) -> Self {
        if let SpineError::RateLimited {
            scope,
            limit,
            retry_after_seconds,
        } = error
        {
            return Self::rate_limited_in(scope, limit, retry_after_seconds);
        }
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::UNAUTHORIZED {
            return Self::unauthorized();
        }
        if status.is_server_error() {
            // The chain goes to the log; the client gets the code only.
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "request failed");
            return Self::new(
                status,
                error.code(),
                "the server could not complete the request; retry later",
            );
        }
        let message = error.to_string();
        // The field the engine's refusal concerns, as the error carries it.
        let field = error.field().map(str::to_owned);
        let mut answer = Self::new(status, error.code(), message.clone());
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(info) = quota::describe(answer.code, now)
        {
            answer.retry_after_seconds = Some(info.retry_after_seconds);
            answer.quota = Some(Box::new(info));
        }
        if (status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::PAYLOAD_TOO_LARGE)
            && let Some(field) = field
        {
            answer = answer.with_field(field, message);
        }
        answer
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
            fields: self.fields,
            quota: self.quota.map(|q| *q),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let (Some((scope, rpm)), Some(seconds)) = (self.rate_limit, self.retry_after_seconds) {
            let policy = scope.as_str();
            // The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers): the refusing
            // policy, `key` or `tenant` (q requests per w seconds), and its state (r
            // remaining, t seconds until one is allowed again).
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::try_from(format!("\"{policy}\";q={rpm};w=60")) {
                headers.insert(RATE_LIMIT_POLICY, value);
            }
            let state = format!("\"{policy}\";r=0;t={}", seconds.max(1));
            if let Ok(state) = HeaderValue::try_from(state) {
                headers.insert(RATE_LIMIT, state);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_rate_limit_names_the_tenant_policy() {
        let refused = SpineError::RateLimited {
            scope: RateLimitScope::Tenant,
            limit: 6_000,
            retry_after_seconds: 2,
        };
        let response = ApiError::from_spine_at(refused, chrono::Utc::now()).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(headers[RATE_LIMIT_POLICY], "\"tenant\";q=6000;w=60");
        assert_eq!(headers[RATE_LIMIT], "\"tenant\";r=0;t=2");
    }
}
