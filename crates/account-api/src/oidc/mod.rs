//! People sign in through their identity provider: `Authorization: Bearer <JWT>` from a
//! configured OpenID Connect issuer, verified here before the spine is asked who the person is
//! in the tenant they name.
//!
//! What a token must be, checked in this order, each refusal with its own code
//! ([`TokenError::code`]):
//! - three base64url parts with a JSON header whose `alg` is an asymmetric algorithm the issuer
//!   allows (`alg: none` and every HMAC algorithm are refused before any key is looked at: a
//!   public key must never serve as an HMAC secret);
//! - an `iss` that is a configured issuer, and a `kid` in that issuer's key set (fetched from
//!   its discovery document and `jwks_uri`, or read from a local JWKS file);
//! - a signature that verifies with that key, under the algorithm the *key* declares (its
//!   `alg`, else its type and curve), never the one the token claims;
//! - `aud` naming the configured audience, `exp` in the future and `nbf` in the past, with 60 s
//!   of clock skew either way.
//!
//! Key sets are cached per issuer and refetched when a token names an unknown `kid`, at most
//! once per [`Issuer::refetch_interval`] (concurrent misses wait for the one fetch). A verified
//! token is cached until it expires, so a signed-in person costs one signature check per token,
//! not per request. The cryptography is jsonwebtoken's (RustCrypto backend); nothing here
//! computes a signature by hand.

mod keys;

use jsonwebtoken::Algorithm;
use keys::KeySets;
use moka::sync::Cache;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Clock skew accepted on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 60;

/// One identity provider whose tokens the API accepts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Issuer {
    /// The issuer identifier, exactly as tokens carry it in `iss` (`https://idp.example.com`).
    pub issuer: String,
    /// The audience tokens must name in `aud` (the client id the provider issues them for).
    pub audience: String,
    /// The algorithms accepted from this issuer; empty means RS256, ES256 and EdDSA.
    pub algorithms: Vec<Algorithm>,
    /// A local JWKS file to read keys from instead of the issuer's discovery document (for
    /// air-gapped installations).
    pub jwks_file: Option<PathBuf>,
    /// The least time between two fetches of the key set on unknown key ids.
    pub refetch_interval: Duration,
}

impl Issuer {
    /// An issuer whose keys come from `{issuer}/.well-known/openid-configuration`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Issuer {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            algorithms: Vec::new(),
            jwks_file: None,
            refetch_interval: Duration::from_secs(60),
        }
    }

    /// Accepts only `algorithms` from this issuer.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Reads the keys from the JWKS file at `path`.
    #[must_use]
    pub fn with_jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwks_file = Some(path.into());
        self
    }

    /// Refetches the key set at most once per `interval`.
    #[must_use]
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// The algorithms accepted from this issuer.
    fn allowed(&self) -> Vec<Algorithm> {
        if self.algorithms.is_empty() {
            vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
        } else {
            self.algorithms.clone()
        }
    }
}

/// A person as their identity provider vouches for them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The issuer (`iss`).
    pub issuer: String,
    /// The person's stable id at that issuer (`sub`).
    pub subject: String,
    /// The address the provider gives, if any (`email`).
    pub email: Option<String>,
    /// When the token stops being accepted (`exp`, seconds since the epoch).
    pub expires_at: u64,
}

/// Why a token is refused. Each has a stable code for the error body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a JWT: not three base64url parts, or a header or claims that are not JSON.
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    /// `alg: none`, an HMAC algorithm, or an algorithm the issuer does not allow.
    #[error("the token's algorithm `{0}` is not accepted")]
    AlgorithmRefused(String),
    /// The token's `iss` is no configured issuer.
    #[error("the token's issuer is not accepted here")]
    UnknownIssuer,
    /// No key of the issuer has the token's `kid` (after a refetch).
    #[error("the issuer has no key with the token's key id")]
    UnknownKey,
    /// The issuer's keys could not be fetched or read.
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// The signature does not verify with the issuer's key.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `aud` does not name this API's audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// `exp` has passed (beyond the skew).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still ahead (beyond the skew).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A required claim (`sub`, `exp`, `iss`, `aud`) is missing or of the wrong type.
    #[error("the token lacks the claim `{0}`")]
    MissingClaim(String),
}

impl TokenError {
    /// The stable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::AlgorithmRefused(_) => "token_algorithm_refused",
            TokenError::UnknownIssuer => "token_issuer_unknown",
            TokenError::UnknownKey => "token_key_unknown",
            TokenError::KeysUnavailable(_) => "token_keys_unavailable",
            TokenError::BadSignature => "token_signature_invalid",
            TokenError::WrongAudience => "token_audience_mismatch",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::MissingClaim(_) => "token_claim_missing",
        }
    }
}

/// Verifies bearer tokens from the configured issuers. Cheap to clone (shared caches).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: KeySets,
    /// Verified tokens by SHA-256, until their `exp`.
    verified: Cache<[u8; 32], Identity>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.inner.keys.issuers())
            .finish_non_exhaustive()
    }
}

/// The claims read from a token; the rest is ignored.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    exp: u64,
    #[serde(default)]
    email: Option<String>,
}

impl Verifier {
    /// A verifier for `issuers`, fetching discovery documents and key sets with `http`.
    pub fn new(issuers: Vec<Issuer>, http: reqwest::Client) -> Self {
        Verifier {
            inner: Arc::new(Inner {
                keys: KeySets::new(issuers, http),
                verified: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(24 * 3600))
                    .build(),
            }),
        }
    }

    /// Whether `credential` has the shape of a JWT (and so is no API key).
    pub fn looks_like_jwt(credential: &str) -> bool {
        credential.starts_with("ey") && credential.matches('.').count() == 2
    }

    /// The identity `token` vouches for, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.inner.verified.get(&digest) {
            // The cache keeps a token past its `exp` only until this check.
            if now() <= identity.expires_at + LEEWAY_SECONDS {
                return Ok(identity);
            }
            self.inner.verified.invalidate(&digest);
            return Err(TokenError::Expired);
        }
        let identity = self.verify_uncached(token).await?;
        self.inner.verified.insert(digest, identity.clone());
        Ok(identity)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Identity, TokenError> {
        // `alg: none` is no algorithm jsonwebtoken knows, so its header would not even parse:
        // name the refusal for what it is.
        let claimed = part_json(token, 0)?;
        if let Some(alg) = claimed.get("alg").and_then(serde_json::Value::as_str)
            && alg.eq_ignore_ascii_case("none")
        {
            return Err(TokenError::AlgorithmRefused(alg.to_owned()));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(TokenError::AlgorithmRefused(format!("{:?}", header.alg)));
        }
        let issuer_name = unverified_issuer(token)?;
        let issuer = self
            .inner
            .keys
            .issuer(&issuer_name)
            .ok_or(TokenError::UnknownIssuer)?;
        if !issuer.allowed().contains(&header.alg) {
            return Err(TokenError::AlgorithmRefused(format!("{:?}", header.alg)));
        }
        let kid = header.kid.as_deref().unwrap_or_default();
        let key = self.inner.keys.key(&issuer.issuer, kid).await?;
        // The key's own algorithm decides; a token claiming another is refused.
        if key.algorithm != header.alg {
            return Err(TokenError::AlgorithmRefused(format!("{:?}", header.alg)));
        }
        let mut validation = jsonwebtoken::Validation::new(key.algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&issuer.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(refusal)?;
        let subject = data
            .claims
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| TokenError::MissingClaim("sub".to_owned()))?;
        Ok(Identity {
            issuer: issuer.issuer.clone(),
            subject,
            email: data.claims.email,
            expires_at: data.claims.exp,
        })
    }
}

/// The `iss` of a token, read before its signature is checked, only to pick the keys that
/// check it.
fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    match part_json(token, 1)?.get("iss") {
        Some(serde_json::Value::String(iss)) => Ok(iss.trim_end_matches('/').to_owned()),
        _ => Err(TokenError::MissingClaim("iss".to_owned())),
    }
}

/// Part `index` of a token (0 the header, 1 the claims) as JSON, unverified.
fn part_json(token: &str, index: usize) -> Result<serde_json::Value, TokenError> {
    use base64::Engine as _;
    if token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let part = token.split('.').nth(index).ok_or(TokenError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// jsonwebtoken's refusal as ours.
fn refusal(error: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::UnknownIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::AlgorithmRefused("mismatch".to_owned())
        }
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
        ErrorKind::InvalidClaimFormat(claim) => TokenError::MissingClaim(claim.clone()),
        _ => TokenError::Malformed,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
