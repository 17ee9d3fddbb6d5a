//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), for the sender and for
//! receivers alike.
//!
//! A message is signed over `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 keyed
//! by the endpoint's secret; the `webhook-signature` header carries `v1,<base64 MAC>`, one per
//! secret, space-separated, so a receiver rotating its secret accepts either while both are
//! configured. Secrets are `whsec_` + standard base64 of the key bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::str::FromStr;
use std::time::Duration;
use subtle::{Choice, ConstantTimeEq};

#[cfg(test)]
mod tests;

type HmacSha256 = Hmac<Sha256>;

/// The header naming the message (the same on every attempt, so receivers can deduplicate).
pub const ID_HEADER: &str = "webhook-id";
/// The header with the time of signing, in whole seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header with the space-separated `v1,<base64>` signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// How far a message's timestamp may lie from the receiver's clock, either way, by default:
/// the Standard Webhooks recommendation, which bounds how long a captured request replays.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Fewest key bytes a secret may have (Standard Webhooks: 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;
/// Most key bytes a secret may have.
pub const MAX_SECRET_BYTES: usize = 64;

/// The text every secret starts with.
const SECRET_PREFIX: &str = "whsec_";
/// Key bytes of a generated secret: as many as the MAC's output, more would add nothing.
const GENERATED_SECRET_BYTES: usize = 32;
/// The only signature scheme Standard Webhooks defines for symmetric secrets.
const SCHEME: &str = "v1";

/// An endpoint's signing secret.
///
/// Its `Debug` is redacted and it has no `Display`, so it cannot reach a log line or an error
/// by accident; [`WebhookSecret::expose`] is the one deliberate way to its text, for showing
/// it to the endpoint's owner once (and for storing it).
#[derive(Clone)]
pub struct WebhookSecret {
    /// The key bytes, kept for [`WebhookSecret::expose`].
    key: Vec<u8>,
    /// HMAC keyed once; each signature starts from a clone of this state.
    mac: HmacSha256,
}

/// Why a secret could not be made or read. Never contains any part of the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The text does not start with `whsec_`.
    #[error("a webhook secret starts with `whsec_`")]
    MissingPrefix,
    /// The text after the prefix is not standard (padded) base64.
    #[error("a webhook secret is `whsec_` followed by standard base64")]
    NotBase64,
    /// The key has too few or too many bytes.
    #[error("a webhook secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} key bytes (got {len})")]
    WrongLength {
        /// Key bytes found.
        len: usize,
    },
    /// The operating system's random source failed (generation only).
    #[error("the operating system's random source is unavailable")]
    RandomUnavailable,
}

impl WebhookSecret {
    /// A fresh secret of 32 random bytes from the operating system.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; GENERATED_SECRET_BYTES];
        getrandom::fill(&mut key).map_err(|_| SecretError::RandomUnavailable)?;
        Self::from_key(key.to_vec())
    }

    /// Reads a secret in its text form, `whsec_` + standard base64 of 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        Self::from_key(key)
    }

    fn from_key(key: Vec<u8>) -> Result<Self, SecretError> {
        let len = key.len();
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&len) {
            return Err(SecretError::WrongLength { len });
        }
        // HMAC takes keys of any length; this cannot fail, but is not unwrapped.
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::WrongLength { len })?;
        Ok(Self { key, mac })
    }

    /// The secret's text form (`whsec_...`), for the one response that shows it to the
    /// endpoint's owner and for storage. Never log it.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// HMAC-SHA256 of the signed content `{id}.{timestamp}.{body}`.
    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// One signature, `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
///
/// `timestamp` is whole seconds since the Unix epoch, exactly as sent in
/// [`TIMESTAMP_HEADER`].
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "{SCHEME},{}",
        STANDARD.encode(secret.mac(msg_id, timestamp, body))
    )
}

/// The [`SIGNATURE_HEADER`] value: one [`sign`]ature per secret, space-separated (during a
/// rotation the endpoint has the old and the new secret, and receivers accept either).
pub fn signature_header(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of a signed message as a receiver found them (`None`: absent).
///
/// A header that is present but not text should be given as `Some("")`: it then fails as
/// malformed rather than as missing ([`SignedHeaders::from_http`] does so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    /// The [`ID_HEADER`] value.
    pub id: Option<&'a str>,
    /// The [`TIMESTAMP_HEADER`] value.
    pub timestamp: Option<&'a str>,
    /// The [`SIGNATURE_HEADER`] value.
    pub signature: Option<&'a str>,
}

impl<'a> SignedHeaders<'a> {
    /// All three headers present.
    pub fn new(id: &'a str, timestamp: &'a str, signature: &'a str) -> Self {
        Self {
            id: Some(id),
            timestamp: Some(timestamp),
            signature: Some(signature),
        }
    }

    /// The headers looked up by their lowercase names (any framework's header access).
    pub fn from_lookup(lookup: impl Fn(&'static str) -> Option<&'a str>) -> Self {
        Self {
            id: lookup(ID_HEADER),
            timestamp: lookup(TIMESTAMP_HEADER),
            signature: lookup(SIGNATURE_HEADER),
        }
    }

    /// The headers of an `http` crate header map (what axum, hyper and reqwest hand over).
    pub fn from_http(headers: &'a reqwest::header::HeaderMap) -> Self {
        Self::from_lookup(|name| {
            headers
                .get(name)
                .map(|value| value.to_str().unwrap_or_default())
        })
    }
}

/// Why a received message was not accepted. Says which check failed, never what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header is absent (its name).
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    /// The timestamp is not a whole number of seconds.
    #[error("the `webhook-timestamp` header is not a whole number of seconds")]
    BadTimestamp,
    /// The timestamp lies further in the past than the tolerance.
    #[error("the message was signed too long ago")]
    TooOld,
    /// The timestamp lies further in the future than the tolerance.
    #[error("the message is dated too far in the future")]
    TooNew,
    /// No `v1` signature matches any of the secrets.
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// Checks a received message: its timestamp lies within `tolerance` of `now` (both in whole
/// seconds since the Unix epoch; [`DEFAULT_TOLERANCE`] unless you have a reason), and one of
/// its `v1` signatures was made with one of `secrets` over exactly these id, timestamp and
/// body bytes. Signatures are compared in constant time.
///
/// Verify the raw body before parsing it: any re-serialisation changes the bytes.
///
/// ```
/// use account_spine::webhooks::{
///     DEFAULT_TOLERANCE, SignedHeaders, VerifyError, WebhookSecret, sign, verify,
/// };
///
/// // The secret the sender showed you once (`whsec_...`), from your secret store.
/// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let body = br#"{"type":"run.admitted"}"#;
/// let now = 1_700_000_000;
/// // What the sender put in the three headers.
/// let signature = sign(&secret, "msg_2b8d", now, body);
/// let timestamp = now.to_string();
/// let headers = SignedHeaders::new("msg_2b8d", &timestamp, &signature);
///
/// // Every secret the endpoint currently has: two while a rotation is under way.
/// let secrets = [secret];
/// verify(&secrets, &headers, body, now, DEFAULT_TOLERANCE)?;
/// assert_eq!(
///     verify(&secrets, &headers, b"{}", now, DEFAULT_TOLERANCE),
///     Err(VerifyError::NoMatchingSignature),
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(
    secrets: &[WebhookSecret],
    headers: &SignedHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let msg_id = headers.id.ok_or(VerifyError::MissingHeader(ID_HEADER))?;
    let timestamp = headers
        .timestamp
        .ok_or(VerifyError::MissingHeader(TIMESTAMP_HEADER))?;
    let signatures = headers
        .signature
        .ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let timestamp: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    check_timestamp(timestamp, now, tolerance)?;

    let expected: Vec<[u8; 32]> = secrets
        .iter()
        .map(|secret| secret.mac(msg_id, timestamp, body))
        .collect();
    let mut matched = Choice::from(0);
    for presented in v1_signatures(signatures) {
        for mac in &expected {
            // Slices of different lengths compare unequal without looking at their bytes.
            matched |= mac.as_slice().ct_eq(&presented);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// Refuses a timestamp further than `tolerance` from `now` either way (a replay window
/// bounded in the past, and no post-dated signatures that would stay valid for long).
fn check_timestamp(timestamp: i64, now: i64, tolerance: Duration) -> Result<(), VerifyError> {
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(timestamp) > tolerance {
        Err(VerifyError::TooOld)
    } else if timestamp.saturating_sub(now) > tolerance {
        Err(VerifyError::TooNew)
    } else {
        Ok(())
    }
}

/// The decoded MACs of the header's `v1,...` entries; other schemes (`v1a`, asymmetric) and
/// entries that are not base64 are skipped, since a receiver may list several kinds.
fn v1_signatures(header: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(scheme, _)| *scheme == SCHEME)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
}
