//! `Idempotency-Key` on writes (IETF draft-ietf-httpapi-idempotency-key-header): a client
//! sends a key with a `POST`, and a retry with the same key and the same request answers with
//! the first response instead of writing again, for 24 hours.
//!
//! One path for every write that takes it: [`keep_body`] keeps the body's bytes of a `POST`
//! carrying the header (the request is remembered by a keyed hash of its method, path and
//! body), the [`Idempotency`] extractor parses the header after authentication, and
//! [`Idempotency::answer`] runs the handler's use case: without a key exactly as before
//! (no statement more); with one in a host transaction of the spine that claims the key,
//! runs the use case, stores the rendered response and commits them together. A replay is
//! answered with the stored status and body and `Idempotent-Replayed: true`. Only successes
//! are stored: a refused request stores nothing, so its retry runs again.

use crate::AppState;
use crate::error::ApiError;
use account_spine::SpineError;
use account_spine::idempotency::{IdempotentRequest, KeyedAnswer, KeyedWrite, StoredResponse};
use account_spine::types::IdempotencyKey;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use std::collections::BTreeMap;

/// The request header.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header of a replayed answer.
pub(crate) const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The writes whose route does not take the header: `accept_invitation` (its authority is a
/// one-time token, and no tenant credential scopes a key), `verify_api_key` (it changes
/// nothing, so a retry is harmless as it is), the platform's plan writes
/// (`platform_create_plan_version`, `platform_retire_plan`: a plan belongs to no tenant, and
/// keys are kept per tenant), and the writes below, each for the reason beside it.
pub(crate) const WITHOUT_KEYS: &[&str] = &[
    "accept_invitation",
    "verify_api_key",
    "platform_create_plan_version",
    "platform_retire_plan",
    // A signed-in person acting in no tenant, or a platform write without one: keys are kept
    // per tenant and credential.
    "create_project",
    "restore_project",
    "erase_me",
    "platform_erase_user",
    // Repeating it answers with the state it finds (not a member any more).
    "leave_project",
    // Repeating it with the same external id changes the trial it started.
    "platform_start_trial",
];

/// The bytes of a keyed request's body, as received.
#[derive(Clone)]
struct ReceivedBody(Bytes);

/// Middleware: a `POST` with an `Idempotency-Key` has its body read here (within the edge's
/// size and time limits) and kept, then handed on unchanged; anything else passes untouched.
pub(crate) async fn keep_body(request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => return crate::extract::unreadable_body(&error, false).into_response(),
    };
    let mut request = Request::from_parts(parts, Body::from(bytes.clone()));
    request.extensions_mut().insert(ReceivedBody(bytes));
    next.run(request).await
}

/// The request's idempotency key, if it sent one, with what the key remembers it by.
#[derive(Debug)]
pub(crate) struct Idempotency(Option<Keyed>);

#[derive(Debug)]
struct Keyed {
    key: IdempotencyKey,
    method: String,
    path: String,
    body: Bytes,
}

impl FromRequestParts<AppState> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        let refused = |problem: String| {
            ApiError::invalid_fields(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                BTreeMap::from([("Idempotency-Key".to_owned(), problem)]),
            )
        };
        let text = value
            .to_str()
            .map_err(|_| refused("the key may only hold visible ASCII characters".to_owned()))?;
        let key = IdempotencyKey::from_header(text).map_err(|error| refused(error.to_string()))?;
        let body = parts
            .extensions
            .get::<ReceivedBody>()
            .map(|received| received.0.clone())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the request's body was not kept for its idempotency key",
                )
            })?;
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        Ok(Self(Some(Keyed {
            key,
            method: parts.method.as_str().to_owned(),
            path,
            body,
        })))
    }
}

impl Idempotency {
    /// Runs `write` and answers with `render` of its output: without a key as always; with
    /// one, claimed, run, stored and committed in one transaction, or replayed.
    pub(crate) async fn answer<W: KeyedWrite, R: IntoResponse>(
        self,
        state: &AppState,
        write: W,
        render: impl FnOnce(W::Output) -> R + Send,
    ) -> Result<Response, ApiError> {
        let spine = &state.spine;
        let refused = |error: SpineError| ApiError::from_spine_at(error, spine.now());
        let Some(keyed) = self.0 else {
            let output = write.run(spine).await.map_err(refused)?;
            return Ok(render(output).into_response());
        };
        let request = IdempotentRequest::new(&keyed.key, &keyed.method, &keyed.path, &keyed.body);
        let answer = spine
            .write_with_key(write, request, |output| {
                let (parts, body) = render(output).into_response().into_parts();
                // The handlers' answers are in-memory JSON: their bytes are there at once.
                match axum::body::to_bytes(body, usize::MAX).now_or_never() {
                    Some(Ok(bytes)) => {
                        let stored = parts.status.is_success().then(|| StoredResponse {
                            status: parts.status.as_u16(),
                            body: bytes.to_vec(),
                        });
                        (stored, Ok(Response::from_parts(parts, Body::from(bytes))))
                    }
                    _ => (
                        None,
                        Err(ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal_error",
                            "the response could not be rendered",
                        )),
                    ),
                }
            })
            .await
            .map_err(refused)?;
        match answer {
            KeyedAnswer::Fresh(response) => response,
            KeyedAnswer::Replay(stored) => Ok(replayed(stored)),
            _ => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "an idempotent write answered in a way this server does not know",
            )),
        }
    }
}

/// The stored answer, as first sent, marked as a replay.
fn replayed(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let empty = stored.body.is_empty();
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    // Every answer stored is a JSON body (or none).
    if !empty {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}
