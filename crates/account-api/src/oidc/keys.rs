//! The issuers' signing keys: fetched from the discovery document's `jwks_uri` (or read from a
//! local JWKS file), cached per issuer, refetched on an unknown key id at most once per the
//! issuer's refetch interval. Concurrent misses wait for one fetch instead of each starting
//! their own.

use super::{Issuer, TokenError};
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long one discovery or key-set request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One verification key and the one algorithm it verifies.
pub(super) struct Key {
    /// The algorithm the key declares (or its type and curve imply).
    pub(super) algorithm: Algorithm,
    /// The key.
    pub(super) decoding: DecodingKey,
}

/// Every configured issuer's keys.
pub(super) struct KeySets {
    issuers: Vec<IssuerKeys>,
    http: reqwest::Client,
}

struct IssuerKeys {
    issuer: Issuer,
    /// Keys by `kid` (`""` for a key without one).
    keys: RwLock<HashMap<String, Arc<Key>>>,
    /// When the set was last fetched; held while fetching, so misses queue behind one fetch.
    fetched: tokio::sync::Mutex<Option<Instant>>,
}

impl KeySets {
    /// Key sets for `issuers`, none fetched yet.
    pub(super) fn new(issuers: Vec<Issuer>, http: reqwest::Client) -> Self {
        KeySets {
            issuers: issuers
                .into_iter()
                .map(|issuer| IssuerKeys {
                    issuer,
                    keys: RwLock::new(HashMap::new()),
                    fetched: tokio::sync::Mutex::new(None),
                })
                .collect(),
            http,
        }
    }

    /// The configured issuers' identifiers.
    pub(super) fn issuers(&self) -> Vec<&str> {
        self.issuers
            .iter()
            .map(|i| i.issuer.issuer.as_str())
            .collect()
    }

    /// The configured issuer `name`.
    pub(super) fn issuer(&self, name: &str) -> Option<&Issuer> {
        self.entry(name).map(|entry| &entry.issuer)
    }

    fn entry(&self, name: &str) -> Option<&IssuerKeys> {
        self.issuers.iter().find(|i| i.issuer.issuer == name)
    }

    /// The key `kid` of issuer `name`, fetching the issuer's set when it is not known yet.
    pub(super) async fn key(&self, name: &str, kid: &str) -> Result<Arc<Key>, TokenError> {
        let entry = self.entry(name).ok_or(TokenError::UnknownIssuer)?;
        if let Some(key) = entry.cached(kid) {
            return Ok(key);
        }
        let mut fetched = entry.fetched.lock().await;
        // Another request may have fetched the set while this one waited.
        if let Some(key) = entry.cached(kid) {
            return Ok(key);
        }
        if fetched.is_some_and(|at| at.elapsed() < entry.issuer.refetch_interval) {
            return Err(TokenError::UnknownKey);
        }
        *fetched = Some(Instant::now());
        let set = self.load(&entry.issuer).await?;
        let keys = usable_keys(&set);
        if let Ok(mut current) = entry.keys.write() {
            *current = keys;
        }
        entry.cached(kid).ok_or(TokenError::UnknownKey)
    }

    /// The issuer's key set, from its file or its discovery document.
    async fn load(&self, issuer: &Issuer) -> Result<JwkSet, TokenError> {
        let unavailable = |what: String| TokenError::KeysUnavailable(what);
        if let Some(path) = &issuer.jwks_file {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
            return serde_json::from_str(&text)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())));
        }
        let discovery = format!("{}/.well-known/openid-configuration", issuer.issuer);
        let document: serde_json::Value = self.get_json(&discovery).await?;
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| unavailable(format!("{discovery} names no jwks_uri")))?;
        self.get_json(jwks_uri).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenError> {
        let unavailable = |e: reqwest::Error| TokenError::KeysUnavailable(format!("{url}: {e}"));
        self.http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }
}

impl IssuerKeys {
    /// The key `kid`; a token without a `kid` matches the set's only key.
    fn cached(&self, kid: &str) -> Option<Arc<Key>> {
        let keys = self.keys.read().ok()?;
        match keys.get(kid) {
            Some(key) => Some(Arc::clone(key)),
            None if kid.is_empty() && keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }
}

/// The signing keys of `set` by `kid`: asymmetric keys only (a symmetric `oct` key is never a
/// verification key here), encryption keys left out.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<Key>> {
    set.keys
        .iter()
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter_map(|jwk| {
            let algorithm = algorithm_of(jwk)?;
            let decoding = DecodingKey::from_jwk(jwk).ok()?;
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            Some((
                kid,
                Arc::new(Key {
                    algorithm,
                    decoding,
                }),
            ))
        })
        .collect()
}

/// The one algorithm a key verifies: its declared `alg`, else what its type and curve imply.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let declared = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
        Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
        Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        // HMAC and encryption algorithms never verify a sign-in token.
        Some(_) => return None,
        None => None,
    };
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => Algorithm::EdDSA,
            _ => return None,
        },
        // Symmetric keys, and key types a later jsonwebtoken may add, verify nothing here.
        _ => return None,
    };
    Some(declared.unwrap_or(implied))
}
