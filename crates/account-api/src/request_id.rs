//! Request ids and the request span: the id comes from `x-request-id` when the client sent a
//! usable one (1 to 128 visible ASCII characters) and is generated (a UUID) otherwise; it is
//! echoed on the response and recorded in the span every log line of the request is written
//! in, with the method, the path and, once authenticated, the API key's id (never the key) and
//! the caller's address.

use axum::extract::Request;
use axum::http::HeaderName;
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

/// The header the id travels in.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id kept.
const MAX_REQUEST_ID: usize = 128;

fn usable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.iter().all(|b| b.is_ascii_graphic())
}

/// Drops an `x-request-id` that is empty, too long or not visible ASCII, so a fresh one is
/// generated instead of logging and echoing whatever the client sent.
pub(crate) async fn drop_unusable_request_id(mut request: Request) -> Request {
    let ids = request.headers().get_all(&REQUEST_ID);
    let mut ids = ids.iter();
    let keep = matches!((ids.next(), ids.next()), (Some(id), None) if usable(id.as_bytes()));
    if !keep {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// The span of one request.
fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        api_key_id = tracing::field::Empty,
        client_address = tracing::field::Empty,
    )
}

/// Records the authenticated key's id (not the key) in the current request's span.
pub(crate) fn record_key_id(key_id: &dyn std::fmt::Display) {
    Span::current().record("api_key_id", tracing::field::display(key_id));
}

/// Records the caller's address (the peer, or what a trusted proxy reported) in the current
/// request's span.
pub(crate) fn record_client_address(address: &str) {
    Span::current().record("client_address", address);
}

/// The request tracing layer.
pub(crate) type RequestTrace = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request) -> Span,
    DefaultOnRequest,
    DefaultOnResponse,
>;

/// Traces each request in [`request_span`]; the response line (status, latency) is at INFO.
pub(crate) fn trace_layer() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> Span)
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
}

#[cfg(test)]
mod tests {
    use super::usable;

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        assert!(usable(b"req-42"));
        assert!(!usable(b""));
        assert!(!usable(b"has space"));
        assert!(!usable("é".as_bytes()));
        assert!(!usable(&[b'a'; 129]));
    }
}
