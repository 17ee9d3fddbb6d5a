//! Sealing: secrets the application must read back, encrypted at rest.
//!
//! API keys and invitation tokens are stored as keyed digests: nothing needs them back. A few
//! secrets must be read back: an event's one-time token in the outbox (the dispatcher hands
//! it to the host), a webhook endpoint's signing secret, a stored idempotent response that
//! showed a secret once. Those are sealed with AES-256-GCM under a key derived from the
//! pepper (HMAC-SHA-256 of a fixed label: a pseudo-random function of the pepper, so the key
//! is independent of the digests it also keys), each with a fresh random 96-bit nonce and
//! associated data naming the row it belongs to, so a sealed value moved to another row does
//! not open.
//!
//! Layout: `0x01` (version) ‖ nonce (12 bytes) ‖ ciphertext and tag.

use crate::api_keys::ApiKeyPepper;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
/// What the sealing key is derived with; changing it would make every sealed value unreadable.
const LABEL: &str = "account.sealing.v1";

/// Seals and opens secrets under a key derived from the pepper. `Debug` shows no key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

/// A sealed value that does not open: another key (the pepper changed), another row, or
/// damaged bytes. Says nothing more, on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the sealed value does not open with this key for this row")]
#[non_exhaustive]
pub struct SealError;

impl Sealer {
    /// The sealer keyed from `pepper`.
    pub fn from_pepper(pepper: &ApiKeyPepper) -> Self {
        let key = pepper.derive_key(LABEL);
        Self {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    /// `plaintext` sealed, bound to `context` (the row it is stored in).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // The OS generator failing is not something a caller can handle; a fixed nonce
        // would be far worse than stopping.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut nonce).expect("the operating system's random generator failed");
        let payload = Payload {
            msg: plaintext,
            aad: context,
        };
        // Encryption fails only on inputs far beyond anything stored here (64 GiB).
        #[allow(clippy::expect_used)]
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .expect("AES-GCM encrypts any stored secret");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// The plaintext `sealed` holds, if it was sealed by this key for `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError)?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return Err(SealError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError)?;
        let payload = Payload {
            msg: ciphertext,
            aad: context,
        };
        self.cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| SealError)
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::from_pepper(&ApiKeyPepper::from_bytes(&[byte; 32]).unwrap())
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_row() {
        let sealer = sealer(1);
        let sealed = sealer.seal(b"inv_secret", b"row 1");
        assert!(
            !sealed.windows(10).any(|w| w == b"inv_secret"),
            "no clear text"
        );
        assert_eq!(sealer.open(&sealed, b"row 1").unwrap(), b"inv_secret");
        assert_eq!(sealer.open(&sealed, b"row 2"), Err(SealError));
        assert_eq!(self::sealer(2).open(&sealed, b"row 1"), Err(SealError));
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open(&damaged, b"row 1"), Err(SealError));
        assert_eq!(sealer.open(&[], b"row 1"), Err(SealError));
        assert_eq!(sealer.open(&sealed[..5], b"row 1"), Err(SealError));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let sealer = sealer(1);
        assert_ne!(sealer.seal(b"same", b"row"), sealer.seal(b"same", b"row"));
    }

    #[test]
    fn debug_shows_no_key() {
        assert_eq!(format!("{:?}", sealer(1)), "Sealer(<redacted>)");
    }
}
