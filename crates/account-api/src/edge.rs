//! The HTTP edge: how long the server waits for clients, and the server loop that enforces it
//! ([`serve`]).
//!
//! | setting | enforced by | what happens |
//! |---|---|---|
//! | [`EdgeSettings::header_read_timeout`] | hyper's HTTP/1 `header_read_timeout` | the connection is closed without an answer |
//! | [`EdgeSettings::body_read_timeout`] | tower-http's `RequestBodyTimeoutLayer` (in [`router`](crate::router)) | 408 `body_timeout`, then the connection is closed |
//! | [`EdgeSettings::idle_timeout`] | [`serve`]'s per-connection watchdog | the connection is shut down gracefully |
//!
//! hyper starts its header timer whenever an HTTP/1 connection waits for a request head: on a
//! new connection and again after each response on a kept-alive one. An HTTP/1 connection that
//! sits idle is therefore closed after the smaller of the header and idle timeouts; the idle
//! timeout is what bounds HTTP/2 connections, which have no header timer.

use crate::error::ApiError;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::client_address::TrustedProxies;

/// How long the server waits for clients, and whom it trusts to name them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EdgeSettings {
    /// From waiting for a request until its last header byte (default 10 s). A client that
    /// trickles its headers is disconnected when it runs out.
    pub header_read_timeout: Duration,
    /// The longest wait for the next piece of a request body (default 30 s); a body that
    /// stalls longer is answered 408 `body_timeout`.
    pub body_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight (default 60 s).
    pub idle_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed (none by default; see
    /// [`TrustedProxies`]).
    pub trusted_proxies: TrustedProxies,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

impl EdgeSettings {
    /// These settings with other timeouts: header read, body read, idle.
    pub fn with_timeouts(
        mut self,
        header_read: Duration,
        body_read: Duration,
        idle: Duration,
    ) -> Self {
        self.header_read_timeout = header_read;
        self.body_read_timeout = body_read;
        self.idle_timeout = idle;
        self
    }

    /// These settings trusting `proxies` to report the client's address.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }
}

/// Serves `app` on `listener` with the header and idle timeouts of `settings` until
/// `shutdown` resolves, then lets the requests in flight finish. Every request carries its TCP
/// peer as axum's [`ConnectInfo<SocketAddr>`], which the client address is taken from.
///
/// `axum::serve` cannot set hyper's header timeout, hence this loop over hyper-util's
/// connection builder (the one `axum::serve` uses, HTTP/1 and HTTP/2 alike).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &EdgeSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let idle = settings.idle_timeout;
    // Each connection holds a receiver; `closed` resolves once every connection has ended.
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let builder = builder.clone();
        let app = app.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let activity = Arc::new(Activity::new());
            let service = {
                let activity = activity.clone();
                tower::service_fn(move |mut request: axum::extract::Request<_>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let busy = activity.request_started();
                    let answer = app.clone().oneshot(request);
                    async move {
                        let answer = answer.await;
                        drop(busy);
                        answer
                    }
                })
            };
            let connection = builder.serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(service.map_request(
                    |request: hyper::Request<hyper::body::Incoming>| {
                        request.map(axum::body::Body::new)
                    },
                )),
            );
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = activity.idle_for(idle), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    _ = stopped.changed(), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopped);
    stop.closed().await;
}

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last: std::sync::Mutex<Instant>,
}

/// Marks a request in flight until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut last) = self.0.last.lock() {
            *last = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn request_started(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self
                .last
                .lock()
                .map_or_else(|_| Instant::now(), |last| *last);
            tokio::time::sleep_until(last + idle).await;
            let quiet_since = self
                .last
                .lock()
                .map_or_else(|_| Instant::now(), |last| *last);
            if self.in_flight.load(Ordering::SeqCst) == 0 && quiet_since == last {
                return;
            }
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                // Busy: look again one idle period from now.
                if let Ok(mut last) = self.last.lock() {
                    *last = Instant::now();
                }
            }
        }
    }
}

/// tower-http's early 413 (a `Content-Length` over the limit, refused before the body is read)
/// answers in plain text; every error of ours is JSON.
pub(crate) async fn json_payload_too_large(response: Response) -> Response {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !json {
        return ApiError::payload_too_large().into_response();
    }
    response
}
