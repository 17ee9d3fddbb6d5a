//! Sealing secrets the database must keep but must not show: AES-256-GCM under a key the
//! [`ApiKeyPepper`] derives per purpose (HKDF-SHA256, the purpose as its info), so a copy of
//! the database without the pepper reveals nothing and can forge nothing.
//!
//! Used for stored idempotent responses (which may hold a one-time secret: a key just issued
//! or an invitation token); anything else stored sealed (webhook signing secrets) gets its own
//! purpose string and so its own key.
//!
//! # Format
//!
//! [`SealedBytes`] are `version (1 byte, 1) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//! Each seal draws a fresh random 96-bit nonce from the operating system. Random nonces keep
//! the chance of a repeat negligible while one key seals well under 2^32 messages (NIST SP
//! 800-38D, 8.3): about a hundred idempotent writes a second for a year. The associated data
//! binds a sealed value to where it is stored (the caller's `context`, e.g. a row's key), so
//! a value copied to another row does not open.

use crate::api_keys::ApiKeyPepper;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// The format version, the first byte of every [`SealedBytes`].
const VERSION: u8 = 1;
/// Nonce length: 96 bits.
const NONCE_LEN: usize = 12;
/// Tag length: 128 bits.
const TAG_LEN: usize = 16;

/// Why sealing or opening failed. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealingError {
    /// The operating system's random source failed, so no nonce could be drawn.
    #[error("no randomness available for a nonce")]
    RandomnessUnavailable,
    /// The key could not be derived from the pepper.
    #[error("the sealing key could not be derived")]
    KeyDerivation,
    /// The stored bytes are not a sealed value of a version this build reads.
    #[error("the sealed value is malformed")]
    Malformed,
    /// The sealed value does not open under this key and context: another pepper, another
    /// purpose or context, or altered bytes.
    #[error("the sealed value does not open: wrong key or context, or altered")]
    Unauthentic,
}

/// Seals and opens values under one key, derived from the pepper for one purpose.
///
/// ```
/// use account_engines::api_keys::ApiKeyPepper;
/// use account_engines::sealing::{SealedBytes, Sealer};
///
/// let pepper = ApiKeyPepper::from_bytes(&[7u8; 32])?;
/// let sealer = Sealer::derive(&pepper, "example/v1")?;
/// let sealed = sealer.seal(b"acc_live_secret", &[b"tenant-1", b"row-9"])?;
/// assert!(!sealed.as_bytes().windows(6).any(|w| w == b"secret"));
/// let stored = SealedBytes::from_stored(sealed.into_vec());
/// assert_eq!(sealer.open(&stored, &[b"tenant-1", b"row-9"])?, b"acc_live_secret");
/// // Another row's context, or another purpose's key, does not open it.
/// assert!(sealer.open(&stored, &[b"tenant-1", b"row-8"]).is_err());
/// assert!(Sealer::derive(&pepper, "other/v1")?.open(&stored, &[b"tenant-1", b"row-9"]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

/// A sealed value as stored: see the module's format. Holds no secret in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBytes(Vec<u8>);

impl SealedBytes {
    /// Bytes read back from storage, to open.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes to store, owned.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl Sealer {
    /// The sealer of `purpose` (a fixed string naming what is sealed and the format's version,
    /// e.g. `account/idempotency-responses/v1`): its key is HKDF-SHA256-expanded from the
    /// pepper with `purpose` as the info.
    pub fn derive(pepper: &ApiKeyPepper, purpose: &str) -> Result<Self, SealingError> {
        let key = pepper
            .derive_key(purpose)
            .map_err(|_| SealingError::KeyDerivation)?;
        let cipher =
            Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| SealingError::KeyDerivation)?;
        Ok(Self { cipher })
    }

    /// Seals `plaintext`, bound to `context` (the parts of where it is stored; opening needs
    /// the same parts in the same order).
    pub fn seal(&self, plaintext: &[u8], context: &[&[u8]]) -> Result<SealedBytes, SealingError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealingError::RandomnessUnavailable)?;
        let aad = associated_data(context);
        let payload = Payload {
            msg: plaintext,
            aad: &aad,
        };
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| SealingError::Malformed)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(SealedBytes(sealed))
    }

    /// Opens what [`Sealer::seal`] sealed with this key and `context`.
    pub fn open(&self, sealed: &SealedBytes, context: &[&[u8]]) -> Result<Vec<u8>, SealingError> {
        let bytes = sealed.as_bytes();
        let (version, rest) = bytes.split_first().ok_or(SealingError::Malformed)?;
        if *version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealingError::Malformed);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealingError::Malformed)?;
        let aad = associated_data(context);
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        self.cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| SealingError::Unauthentic)
    }
}

/// The context parts framed unambiguously (each prefixed with its length), so that no two
/// different contexts give the same associated data (`["ab", "c"]` is not `["a", "bc"]`).
fn associated_data(context: &[&[u8]]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(context.iter().map(|part| part.len() + 8).sum());
    for part in context {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8, purpose: &str) -> Sealer {
        let pepper = ApiKeyPepper::from_bytes(&[byte; 32]).unwrap();
        Sealer::derive(&pepper, purpose).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let sealer = sealer(7, "test/v1");
        let secret = b"acc_live_0123456789";
        let sealed = sealer.seal(secret, &[b"t", b"k"]).unwrap();
        assert_eq!(sealed.as_bytes()[0], VERSION);
        assert_eq!(
            sealed.as_bytes().len(),
            1 + NONCE_LEN + secret.len() + TAG_LEN
        );
        assert_eq!(sealer.open(&sealed, &[b"t", b"k"]).unwrap(), secret);

        let refused = |other: &Sealer, context: &[&[u8]]| {
            matches!(other.open(&sealed, context), Err(SealingError::Unauthentic))
        };
        assert!(refused(&sealer, &[b"t", b"j"]), "another row");
        assert!(
            refused(&sealer, &[b"tk"]),
            "the same bytes framed otherwise"
        );
        assert!(
            refused(&self::sealer(8, "test/v1"), &[b"t", b"k"]),
            "another pepper"
        );
        assert!(
            refused(&self::sealer(7, "test/v2"), &[b"t", b"k"]),
            "another purpose"
        );
    }

    #[test]
    fn every_seal_draws_a_new_nonce_and_altered_bytes_do_not_open() {
        let sealer = sealer(7, "test/v1");
        let a = sealer.seal(b"same", &[]).unwrap();
        let b = sealer.seal(b"same", &[]).unwrap();
        assert_ne!(a, b, "a fresh nonce per seal");
        for i in 0..a.as_bytes().len() {
            let mut altered = a.clone().into_vec();
            altered[i] ^= 1;
            let error = sealer
                .open(&SealedBytes::from_stored(altered), &[])
                .unwrap_err();
            let expected = if i == 0 { "malformed" } else { "does not open" };
            assert!(error.to_string().contains(expected), "byte {i}: {error}");
        }
        for short in [0, 1, NONCE_LEN + TAG_LEN] {
            let truncated = SealedBytes::from_stored(a.as_bytes()[..short].to_vec());
            assert!(matches!(
                sealer.open(&truncated, &[]),
                Err(SealingError::Malformed)
            ));
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        assert_eq!(format!("{:?}", sealer(7, "test/v1")), "Sealer(<redacted>)");
    }
}
