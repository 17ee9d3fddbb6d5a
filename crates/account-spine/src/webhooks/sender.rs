//! One HTTP delivery attempt of a signed message to an endpoint.
//!
//! Endpoint URLs are chosen by tenants, so the sender is a way into the host's network unless
//! it refuses internal destinations (SSRF): every address a host name resolves to must be
//! public, or nothing is sent. The check runs inside the client's resolver, so the addresses
//! checked are the addresses connected to; a DNS answer that changes between a check and the
//! connection (rebinding) cannot slip a private address in. Literal IP addresses, which the
//! client never resolves, are checked before the request. Redirects are not followed (a
//! public endpoint could otherwise bounce the request inward) and proxies from the
//! environment are not used (the proxy, not the endpoint, would be resolved).

use super::schedule::honours_retry_after;
use super::signature::{
    ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret, signature_header,
};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Url, redirect};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// How much of a response body an [`Attempt`] keeps, for the endpoint's owner to read.
pub const SNIPPET_BYTES: usize = 1024;

/// How a [`WebhookSender`] behaves; [`SenderSettings::default`] suits production.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderSettings {
    /// The whole attempt, from connecting to reading the snippet (default 15 s).
    pub request_timeout: Duration,
    /// Establishing the connection, TLS included (default 5 s).
    pub connect_timeout: Duration,
    /// Whether loopback, private, link-local and other internal addresses may be endpoints
    /// (default `false`: only for tests and single-machine setups).
    pub allow_private_destinations: bool,
    /// The `User-Agent` of every request.
    pub user_agent: String,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            allow_private_destinations: false,
            user_agent: concat!("account-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl SenderSettings {
    /// Sets [`SenderSettings::request_timeout`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`SenderSettings::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`SenderSettings::allow_private_destinations`].
    pub fn with_private_destinations(mut self, allow: bool) -> Self {
        self.allow_private_destinations = allow;
        self
    }

    /// Sets [`SenderSettings::user_agent`].
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }
}

/// The HTTP client could not be set up (its TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("the webhook HTTP client could not be built")]
pub struct SenderBuildError {
    #[source]
    source: reqwest::Error,
}

/// What is delivered: the same id and body on every attempt; the timestamp is when this
/// attempt signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookMessage {
    /// The [`ID_HEADER`] value, stable across attempts so receivers can deduplicate.
    pub id: String,
    /// Seconds since the Unix epoch, sent as [`TIMESTAMP_HEADER`] and signed.
    pub timestamp: i64,
    /// The JSON body, sent and signed byte for byte.
    pub body: Vec<u8>,
}

impl WebhookMessage {
    /// A message to send.
    pub fn new(id: impl Into<String>, timestamp: i64, body: impl Into<Vec<u8>>) -> Self {
        Self {
            id: id.into(),
            timestamp,
            body: body.into(),
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The status the endpoint answered, or why there was no answer.
    pub outcome: Outcome,
    /// What the caller does next.
    pub verdict: Verdict,
    /// From sending to the response's headers (or to the failure).
    pub latency: Duration,
    /// The first [`SNIPPET_BYTES`] of the response body, lossy UTF-8 (empty without one).
    pub snippet: String,
    /// The answer's `Retry-After`, in seconds, if it had one (whatever its status).
    pub retry_after: Option<Duration>,
}

impl Attempt {
    /// The status answered, if any.
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Answered(status) => Some(status),
            Outcome::NotAnswered(_) => None,
        }
    }

    /// The `Retry-After` the retry schedule honours: only on 429, 502, 503 and 504.
    pub fn honoured_retry_after(&self) -> Option<Duration> {
        self.retry_after
            .filter(|_| self.status().is_some_and(honours_retry_after))
    }

    fn not_answered(failure: TransportFailure, started: Instant) -> Self {
        Self {
            outcome: Outcome::NotAnswered(failure),
            verdict: Verdict::Retryable,
            latency: started.elapsed(),
            snippet: String::new(),
            retry_after: None,
        }
    }
}

/// An attempt's answer, or its absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The endpoint answered with this status.
    Answered(u16),
    /// No answer.
    NotAnswered(TransportFailure),
}

/// Why an attempt got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The URL is not an absolute `http` or `https` URL with a host; nothing was sent.
    InvalidUrl,
    /// The request could not be formed (no secret to sign with, or an id that is not a
    /// valid header value); nothing was sent.
    InvalidRequest,
    /// The host name did not resolve.
    Unresolved,
    /// The destination is an internal address and private destinations are not allowed;
    /// nothing was sent.
    RefusedDestination,
    /// The connection (TCP or TLS) failed.
    Connect,
    /// The request timeout (or the connect timeout) ran out.
    Timeout,
    /// Any other failure while sending or receiving.
    Other,
}

/// What the caller does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// A 2xx answer: delivered.
    Delivered,
    /// 410 Gone: the endpoint asks to receive nothing more; disable it.
    Gone,
    /// Anything else (3xx included, since redirects are not followed): try again by the
    /// retry schedule.
    Retryable,
}

/// Sends signed webhook requests; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    allow_private_destinations: bool,
}

impl WebhookSender {
    /// A sender with these settings.
    pub fn new(settings: &SenderSettings) -> Result<Self, SenderBuildError> {
        let resolver = GuardedResolver {
            allow_private_destinations: settings.allow_private_destinations,
        };
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(settings.user_agent.clone())
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|source| SenderBuildError { source })?;
        Ok(Self {
            client,
            allow_private_destinations: settings.allow_private_destinations,
        })
    }

    /// One attempt: `POST url` with the message as a JSON body, signed with every secret
    /// (the endpoint's current one, and its previous one during a rotation). Never fails:
    /// every failure is an [`Attempt`] the caller records and schedules by.
    pub async fn send(
        &self,
        url: &str,
        secrets: &[WebhookSecret],
        message: &WebhookMessage,
    ) -> Attempt {
        let started = Instant::now();
        let url = match self.check_url(url) {
            Ok(url) => url,
            Err(failure) => return Attempt::not_answered(failure, started),
        };
        if secrets.is_empty() {
            // An unsigned webhook is one no receiver should accept.
            return Attempt::not_answered(TransportFailure::InvalidRequest, started);
        }
        // Only the host: a URL's path or query may carry the receiver's own token.
        let host = url.host_str().unwrap_or_default().to_owned();
        let signature = signature_header(secrets, &message.id, message.timestamp, &message.body);
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ID_HEADER, message.id.as_str())
            .header(TIMESTAMP_HEADER, message.timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(message.body.clone());
        let attempt = match request.send().await {
            Ok(response) => answered(response, started).await,
            Err(error) => Attempt::not_answered(classify(&error), started),
        };
        tracing::debug!(
            message_id = %message.id,
            %host,
            outcome = ?attempt.outcome,
            latency_ms = u64::try_from(attempt.latency.as_millis()).unwrap_or(u64::MAX),
            "webhook attempt"
        );
        attempt
    }

    /// Parses the URL and refuses what no request should be made for: other schemes, no
    /// host, and (unless allowed) literal internal addresses, which the resolver never sees.
    fn check_url(&self, url: &str) -> Result<Url, TransportFailure> {
        let url = Url::parse(url).map_err(|_| TransportFailure::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TransportFailure::InvalidUrl);
        }
        let host = url.host_str().ok_or(TransportFailure::InvalidUrl)?;
        // The URL parser has already normalised every spelling of an IP address (`0x7f.1`,
        // `127.1`) to its canonical form; IPv6 comes bracketed.
        let literal = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<IpAddr>()
            .ok();
        match literal {
            Some(ip) if !self.allow_private_destinations && !is_public(ip) => {
                Err(TransportFailure::RefusedDestination)
            }
            _ => Ok(url),
        }
    }
}

/// Reads what an answer says: its status and verdict, `Retry-After`, and the body's start.
async fn answered(response: reqwest::Response, started: Instant) -> Attempt {
    let latency = started.elapsed();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let verdict = if status.is_success() {
        Verdict::Delivered
    } else if status == reqwest::StatusCode::GONE {
        Verdict::Gone
    } else {
        Verdict::Retryable
    };
    Attempt {
        outcome: Outcome::Answered(status.as_u16()),
        verdict,
        latency,
        snippet: read_snippet(response).await,
        retry_after,
    }
}

/// The first [`SNIPPET_BYTES`] of the body, read chunk by chunk and abandoned there (an
/// endpoint answering gigabytes costs us one chunk). A body that fails midway keeps what
/// arrived.
async fn read_snippet(mut response: reqwest::Response) -> String {
    let mut snippet = Vec::new();
    while snippet.len() < SNIPPET_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = SNIPPET_BYTES - snippet.len();
                snippet.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&snippet).into_owned()
}

/// Names a client error; our resolver's refusals are found in its chain of sources.
fn classify(error: &reqwest::Error) -> TransportFailure {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<ResolveRefusal>() {
            return match refusal {
                ResolveRefusal::Unresolved => TransportFailure::Unresolved,
                ResolveRefusal::Internal => TransportFailure::RefusedDestination,
            };
        }
        source = cause.source();
    }
    if error.is_timeout() {
        TransportFailure::Timeout
    } else if error.is_connect() {
        TransportFailure::Connect
    } else if error.is_builder() {
        TransportFailure::InvalidRequest
    } else {
        TransportFailure::Other
    }
}

/// Why the resolver gave the client no address.
#[derive(Debug, thiserror::Error)]
enum ResolveRefusal {
    #[error("the host name did not resolve")]
    Unresolved,
    #[error("the host name resolves to an internal address")]
    Internal,
}

/// The system resolver, refusing a name any of whose addresses is internal. Refusing the
/// whole name (rather than dropping the internal addresses) keeps a half-internal name from
/// working only some of the time.
struct GuardedResolver {
    allow_private_destinations: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private_destinations;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| ResolveRefusal::Unresolved)?
                .collect();
            if addrs.is_empty() {
                return Err(ResolveRefusal::Unresolved.into());
            }
            if !allow_private && addrs.iter().any(|addr| !is_public(addr.ip())) {
                return Err(ResolveRefusal::Internal.into());
            }
            // These very addresses are the ones connected to: no second lookup to rebind.
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether an address may be a webhook destination: not loopback, private, link-local,
/// shared (CGNAT), unspecified, multicast, broadcast or reserved, nor an IPv6 form of one.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let internal = ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        // 0.0.0.0/8, "this network": some systems connect it to the local host.
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT, often cloud-internal).
        || (a == 100 && (64..128).contains(&b))
        // 198.18.0.0/15, benchmarking networks.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240;
    !internal
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d) forms
    // reach the IPv4 address they embed (`::` and `::1` included: 0.0.0.0 and 0.0.0.1).
    if let Some(v4) = ip.to_ipv4() {
        return is_public_v4(v4);
    }
    let internal = ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // fec0::/10, deprecated site-local.
        || (ip.segments()[0] & 0xffc0) == 0xfec0;
    !internal
}
