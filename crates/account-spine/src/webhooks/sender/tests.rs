//! The sender against real receivers on loopback (axum on an ephemeral port).

use super::*;
use crate::webhooks::{DEFAULT_TOLERANCE, SignedHeaders, VerifyError, verify};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{any, post};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

fn unix_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

/// Serves `app` on 127.0.0.1 until the test's runtime ends.
async fn receiver(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A receiver answering `status` (and `headers`, `body`) to every request, and counting them.
async fn answering(
    status: StatusCode,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(any(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        async move { (status, map, body) }
    }));
    (receiver(app).await, hits)
}

/// Loopback receivers are private destinations: the tests that deliver allow them.
fn local_sender() -> WebhookSender {
    WebhookSender::new(&SenderSettings::default().with_private_destinations(true)).unwrap()
}

fn guarded_sender() -> WebhookSender {
    WebhookSender::new(&SenderSettings::default()).unwrap()
}

fn secrets() -> Vec<WebhookSecret> {
    vec![WebhookSecret::generate().unwrap()]
}

fn message() -> WebhookMessage {
    WebhookMessage::new("msg_1", unix_now(), br#"{"type":"run.admitted"}"#.to_vec())
}

/// What the verifying receiver saw of a request.
#[derive(Debug)]
struct Seen {
    verified: Result<(), VerifyError>,
    content_type: Option<String>,
    user_agent: Option<String>,
    id: Option<String>,
}

#[tokio::test]
async fn a_delivery_arrives_signed_and_the_receiver_verifies_it() {
    let secrets = secrets();
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let (receiver_secrets, log) = (secrets.clone(), seen.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (secrets, log) = (receiver_secrets.clone(), log.clone());
            async move {
                let signed = SignedHeaders::from_http(&headers);
                let verified = verify(&secrets, &signed, &body, unix_now(), DEFAULT_TOLERANCE);
                let text = |name| {
                    headers
                        .get(name)
                        .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
                };
                let status = if verified.is_ok() {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::UNAUTHORIZED
                };
                log.lock().unwrap().push(Seen {
                    verified,
                    content_type: text(header::CONTENT_TYPE),
                    user_agent: text(header::USER_AGENT),
                    id: text(header::HeaderName::from_static(ID_HEADER)),
                });
                status
            }
        }),
    );
    let addr = receiver(app).await;

    let attempt = local_sender()
        .send(&format!("http://{addr}/hook"), &secrets, &message())
        .await;

    assert_eq!(attempt.outcome, Outcome::Answered(204));
    assert_eq!(attempt.verdict, Verdict::Delivered);
    assert_eq!(attempt.snippet, "");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].verified, Ok(()));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[0].id.as_deref(), Some("msg_1"));
    let agent = SenderSettings::default().user_agent;
    assert_eq!(seen[0].user_agent.as_deref(), Some(agent.as_str()));
}

#[tokio::test]
async fn a_host_name_is_resolved_when_private_destinations_are_allowed() {
    let (addr, hits) = answering(StatusCode::OK, &[], "ok").await;
    let url = format!("http://localhost:{}/hook", addr.port());
    let attempt = local_sender().send(&url, &secrets(), &message()).await;
    assert_eq!(attempt.verdict, Verdict::Delivered, "{attempt:?}");
    assert_eq!(attempt.snippet, "ok");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_server_error_is_retryable_and_keeps_the_start_of_the_body() {
    let body: &'static str = format!("database on fire {}", "x".repeat(5000)).leak();
    // A Retry-After on a 500 is recorded but not honoured.
    let (addr, _) = answering(
        StatusCode::INTERNAL_SERVER_ERROR,
        &[("retry-after", "60")],
        body,
    )
    .await;
    let attempt = local_sender()
        .send(&format!("http://{addr}/hook"), &secrets(), &message())
        .await;
    assert_eq!(attempt.outcome, Outcome::Answered(500));
    assert_eq!(attempt.verdict, Verdict::Retryable);
    assert_eq!(attempt.snippet.len(), SNIPPET_BYTES);
    assert!(attempt.snippet.starts_with("database on fire xxx"));
    assert_eq!(attempt.retry_after, Some(Duration::from_secs(60)));
    assert_eq!(attempt.honoured_retry_after(), None);
}

#[tokio::test]
async fn gone_asks_for_the_endpoint_to_be_disabled() {
    let (addr, _) = answering(StatusCode::GONE, &[], "unsubscribed").await;
    let attempt = local_sender()
        .send(&format!("http://{addr}/hook"), &secrets(), &message())
        .await;
    assert_eq!(attempt.outcome, Outcome::Answered(410));
    assert_eq!(attempt.verdict, Verdict::Gone);
    assert_eq!(attempt.snippet, "unsubscribed");
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let followed = Arc::new(AtomicUsize::new(0));
    let counter = followed.clone();
    let app = Router::new()
        .route(
            "/hook",
            post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")]) }),
        )
        .route(
            "/elsewhere",
            any(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::OK }
            }),
        );
    let addr = receiver(app).await;
    let attempt = local_sender()
        .send(&format!("http://{addr}/hook"), &secrets(), &message())
        .await;
    assert_eq!(attempt.outcome, Outcome::Answered(302));
    assert_eq!(attempt.verdict, Verdict::Retryable);
    assert_eq!(followed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let app = Router::new().route(
        "/hook",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::OK
        }),
    );
    let addr = receiver(app).await;
    let settings = SenderSettings::default()
        .with_private_destinations(true)
        .with_request_timeout(Duration::from_millis(300));
    let sender = WebhookSender::new(&settings).unwrap();
    let attempt = sender
        .send(&format!("http://{addr}/hook"), &secrets(), &message())
        .await;
    assert_eq!(
        attempt.outcome,
        Outcome::NotAnswered(TransportFailure::Timeout)
    );
    assert_eq!(attempt.verdict, Verdict::Retryable);
    assert!(attempt.latency >= Duration::from_millis(300));
    assert!(attempt.latency < Duration::from_secs(5), "{attempt:?}");
}

#[tokio::test]
async fn too_many_requests_gives_its_retry_after() {
    let (addr, _) = answering(
        StatusCode::TOO_MANY_REQUESTS,
        &[("retry-after", " 120 ")],
        "slow down",
    )
    .await;
    let attempt = local_sender()
        .send(&format!("http://{addr}/hook"), &secrets(), &message())
        .await;
    assert_eq!(attempt.outcome, Outcome::Answered(429));
    assert_eq!(attempt.verdict, Verdict::Retryable);
    assert_eq!(attempt.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(
        attempt.honoured_retry_after(),
        Some(Duration::from_secs(120))
    );
}

#[tokio::test]
async fn loopback_addresses_are_refused_before_any_request() {
    let (addr, hits) = answering(StatusCode::OK, &[], "").await;
    let port = addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://127.1:{port}/hook"),
        format!("http://0x7f.0.0.1:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("https://10.0.0.8:{port}/hook"),
    ] {
        let attempt = guarded_sender().send(&url, &secrets(), &message()).await;
        assert_eq!(
            attempt.outcome,
            Outcome::NotAnswered(TransportFailure::RefusedDestination),
            "{url}"
        );
        assert_eq!(attempt.verdict, Verdict::Retryable);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused() {
    let (addr, hits) = answering(StatusCode::OK, &[], "").await;
    let url = format!("http://localhost:{}/hook", addr.port());
    let attempt = guarded_sender().send(&url, &secrets(), &message()).await;
    assert_eq!(
        attempt.outcome,
        Outcome::NotAnswered(TransportFailure::RefusedDestination)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let attempt = local_sender()
        .send(&format!("http://{addr}/hook"), &secrets(), &message())
        .await;
    assert_eq!(
        attempt.outcome,
        Outcome::NotAnswered(TransportFailure::Connect)
    );
}

#[tokio::test]
async fn malformed_urls_and_unsigned_messages_send_nothing() {
    let sender = local_sender();
    for url in [
        "not a url",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "/hook",
    ] {
        let attempt = sender.send(url, &secrets(), &message()).await;
        assert_eq!(
            attempt.outcome,
            Outcome::NotAnswered(TransportFailure::InvalidUrl),
            "{url}"
        );
    }
    let (addr, hits) = answering(StatusCode::OK, &[], "").await;
    let url = format!("http://{addr}/hook");
    let unsigned = sender.send(&url, &[], &message()).await;
    assert_eq!(
        unsigned.outcome,
        Outcome::NotAnswered(TransportFailure::InvalidRequest)
    );
    let bad_id = WebhookMessage::new("msg\n1", unix_now(), b"{}".to_vec());
    let attempt = sender.send(&url, &secrets(), &bad_id).await;
    assert_eq!(
        attempt.outcome,
        Outcome::NotAnswered(TransportFailure::InvalidRequest)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn internal_addresses_are_told_from_public_ones() {
    let internal = [
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::10.0.0.1",
    ];
    let public = [
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "192.169.0.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
    ];
    for ip in internal {
        assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
    }
    for ip in public {
        assert!(is_public(ip.parse().unwrap()), "{ip} counted as internal");
    }
}
