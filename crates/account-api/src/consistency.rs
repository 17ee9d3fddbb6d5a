//! `Consistency-Token` (read-your-writes across instances, with read replicas): read from the
//! request into [`RequestMeta::read_after`](account_spine::RequestMeta), and written on the
//! response of every authenticated request that has one (the later of the client's and its
//! last write through this instance; see [`account_spine::ConsistencyToken`]). Without
//! replicas nothing is added.

use crate::AppState;
use crate::error::ApiError;
use account_spine::{ConsistencyToken, OperatorPrincipal, Principal};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The header the token travels in, both ways.
pub(crate) const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static("consistency-token");

/// The token the client sent, if any; 400 `invalid_header` naming it when it is not one.
pub(crate) fn sent(parts: &Parts) -> Result<Option<ConsistencyToken>, ApiError> {
    let Some(value) = parts.headers.get(&CONSISTENCY_TOKEN) else {
        return Ok(None);
    };
    let refused = || {
        ApiError::invalid_fields(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            BTreeMap::from([(
                "Consistency-Token".to_owned(),
                "send back what a response's Consistency-Token said".to_owned(),
            )]),
        )
    };
    let text = value.to_str().map_err(|_| refused())?;
    text.parse().map(Some).map_err(|_| refused())
}

/// Who the request authenticated as, filled in by the extractors.
enum Caller {
    Tenant(Principal),
    Operator(OperatorPrincipal),
}

/// A request's slot for its caller, in its extensions while [`attach`] runs.
#[derive(Clone, Default)]
pub(crate) struct CallerSlot(Arc<Mutex<Option<Caller>>>);

impl CallerSlot {
    fn put(&self, caller: Caller) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(caller);
    }

    fn take(&self) -> Option<Caller> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Remembers `principal` for the response's token (nothing without replicas).
pub(crate) fn saw_principal(parts: &Parts, principal: &Principal) {
    if let Some(slot) = parts.extensions.get::<CallerSlot>() {
        slot.put(Caller::Tenant(principal.clone()));
    }
}

/// Remembers `operator` for the response's token (nothing without replicas).
pub(crate) fn saw_operator(parts: &Parts, operator: &OperatorPrincipal) {
    if let Some(slot) = parts.extensions.get::<CallerSlot>() {
        slot.put(Caller::Operator(operator.clone()));
    }
}

/// Middleware: with replicas, gives the handler a [`CallerSlot`] and writes the caller's token
/// on the response.
pub(crate) async fn attach(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.spine.reads_from_replicas() {
        return next.run(request).await;
    }
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let token = match slot.take() {
        Some(Caller::Tenant(principal)) => state.spine.consistency_token(&principal),
        Some(Caller::Operator(operator)) => state.spine.operator_consistency_token(&operator),
        None => None,
    };
    if let Some(value) = token.and_then(|t| HeaderValue::try_from(t.to_string()).ok()) {
        response.headers_mut().insert(CONSISTENCY_TOKEN, value);
    }
    response
}
