//! Errors as HTTP answers: `{"error": code, "message": ...}` with the engine's status code.

use account_spine::{ErrorCode, SpineError};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// A client error with its own code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
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
}

impl From<SpineError> for ApiError {
    fn from(error: SpineError) -> Self {
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
        Self::new(status, error.code(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}
