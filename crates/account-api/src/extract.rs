//! Input extractors that answer every rejection as an [`ApiError`] with field-level messages:
//! JSON bodies ([`ApiJson`], validated by [`Validate`]), query strings ([`ApiQuery`]) and path
//! parameters ([`ApiPath`]).
//!
//! | rejection | status | code |
//! |---|---|---|
//! | no `Content-Type: application/json` | 415 | `unsupported_media_type` |
//! | body over [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES) | 413 | `payload_too_large` |
//! | not JSON (syntax, truncated) | 400 | `malformed_json` |
//! | wrong type, unknown or missing field, out of range | 422 | `invalid_request` + `fields` |
//! | query string | 400 | `invalid_query` + `fields` |
//! | path parameter | 400 | `invalid_path` + `fields` |

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// Field-level problems found while checking a request's input.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// Records a problem with `field` (the first problem of a field wins).
    pub(crate) fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    /// `field` must lie in `min..=max` when present.
    pub(crate) fn range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        value: Option<T>,
        min: T,
        max: T,
    ) {
        if let Some(value) = value
            && !(min <= value && value <= max)
        {
            self.add(
                field,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    /// `field` must be `min..=max` characters long when present.
    pub(crate) fn length(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) {
        if let Some(value) = value {
            let chars = value.chars().count();
            if chars < min || chars > max {
                self.add(
                    field,
                    format!("must be {min} to {max} characters long (got {chars})"),
                );
            }
        }
    }

    /// The problems as an error, or `Ok` when there are none.
    pub(crate) fn into_result(
        self,
        status: StatusCode,
        code: &'static str,
    ) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_fields(status, code, self.0))
        }
    }
}

/// Checks a parsed input beyond its types (ranges, lengths), reporting every field at once.
/// The engines check again and stay the authority; this gives clients all problems in one
/// answer before any work starts.
pub(crate) trait Validate {
    /// Records each problem in `errors`.
    fn validate(&self, errors: &mut FieldErrors);
}

/// The field a serde error names: its path, or the field in a "missing field" or "unknown
/// field" message (serde reports a missing field at the enclosing object).
fn serde_field(path: &str, message: &str) -> (String, String) {
    // serde_json appends " at line L column C"; the field already says where.
    let message = message.rsplit_once(" at line ").map_or(message, |(m, _)| m);
    let quoted = |rest: &str| rest.split('`').next().map(str::to_owned);
    let within = |field: &str| match path {
        "." => field.to_owned(),
        p if p == field || p.ends_with(&format!(".{field}")) => p.to_owned(),
        p => format!("{p}.{field}"),
    };
    if let Some(field) = message.strip_prefix("missing field `").and_then(quoted) {
        return (within(&field), "is required".to_owned());
    }
    if let Some(field) = message.strip_prefix("unknown field `").and_then(quoted) {
        let expected = message
            .split_once(", expected ")
            .map(|(_, e)| format!(" (expected {e})"))
            .unwrap_or_default();
        return (within(&field), format!("is not a known field{expected}"));
    }
    let field = match path {
        "." => "body".to_owned(),
        p => p.to_owned(),
    };
    (field, message.to_owned())
}

fn is_json(parts: &Parts) -> bool {
    let Some(content_type) = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON request body, parsed and [validated](Validate).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        if !is_json(&parts) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON: send Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!(
                            "the request body is larger than {} bytes",
                            crate::MAX_BODY_BYTES
                        ),
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "unreadable_body",
                        format!("the request body could not be read: {rejection}"),
                    )
                }
            })?;
        let malformed = |message: String| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {message}"),
            )
        };
        // Syntax first, then shape: every body is an object (serde would also take a struct
        // from an array, by position).
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|error| malformed(error.to_string()))?;
        let invalid = |field: String, problem: String| {
            ApiError::invalid_fields(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                BTreeMap::from([(field, problem)]),
            )
        };
        if !json.is_object() {
            return Err(invalid("body".into(), "must be a JSON object".into()));
        }
        let value: T = serde_path_to_error::deserialize(json).map_err(|error| {
            let (field, problem) =
                serde_field(&error.path().to_string(), &error.inner().to_string());
            invalid(field, problem)
        })?;
        let mut errors = FieldErrors::default();
        value.validate(&mut errors);
        errors.into_result(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")?;
        Ok(Self(value))
    }
}

/// A query string, parsed and [validated](Validate); unknown parameters are refused.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        let value: T = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let (field, problem) =
                serde_field(&error.path().to_string(), &error.inner().to_string());
            let field = if field == "body" {
                "query".to_owned()
            } else {
                field
            };
            ApiError::invalid_fields(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                BTreeMap::from([(field, problem)]),
            )
        })?;
        let mut errors = FieldErrors::default();
        value.validate(&mut errors);
        errors.into_result(StatusCode::BAD_REQUEST, "invalid_query")?;
        Ok(Self(value))
    }
}

/// Path parameters; a parameter that does not parse names itself in `fields`.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let kind = error.into_kind();
                let field = match &kind {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    _ => "path".to_owned(),
                };
                let problem = match &kind {
                    ErrorKind::ParseErrorAtKey {
                        value,
                        expected_type,
                        ..
                    } => format!("{value:?} is not a valid {expected_type}"),
                    ErrorKind::DeserializeError { value, message, .. } => {
                        format!("{value:?} is not valid: {message}")
                    }
                    other => other.to_string(),
                };
                Err(ApiError::invalid_fields(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    BTreeMap::from([(field, problem)]),
                ))
            }
            Err(other) => {
                tracing::error!(error = %other, "path parameters missing: a routing bug");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server could not complete the request; retry later",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_field() {
        let root = ".";
        assert_eq!(
            serde_field(root, "missing field `task` at line 1 column 2"),
            ("task".into(), "is required".into())
        );
        let (field, problem) = serde_field(
            "colour",
            "unknown field `colour`, expected `value` or `source` at line 1 column 9",
        );
        assert_eq!(field, "colour");
        assert!(
            problem.contains("expected `value` or `source`"),
            "{problem}"
        );
    }
}
