//! The key itself: generated from the OS random source, and the keyed digest that is all the
//! database keeps. Its shape (prefix, base64url body, CRC32) and the parser of a presented key
//! are in `account_values::api_key_format`, re-exported here.
//!
//! # Storage
//!
//! Only `HMAC-SHA-256(pepper, whole key)` is stored (hex, under a unique index), plus the first
//! [`KEY_PREFIX_LEN`] characters for display. A fast keyed hash suffices because keys are
//! high-entropy and server-generated (unlike passwords); the pepper, kept outside the
//! database, makes a stolen table useless for checking guesses offline.

use super::ApiKeyError;
use account_drivers::types::api_key_format::{self, format_key};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use account_drivers::types::api_key_format::{
    KEY_LEN, KEY_PREFIX, KEY_PREFIX_LEN, PresentedApiKey, RANDOM_BYTES, key_prefix,
};

/// Shortest accepted pepper.
pub const MIN_PEPPER_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A newly generated key, shown to its owner exactly once.
///
/// It has no `Display`, no `Clone` and a redacted `Debug`, so it cannot end up in a log line
/// or an error by accident; [`PlaintextApiKey::expose`] is the one deliberate way out.
pub struct PlaintextApiKey(String);

impl PlaintextApiKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, ApiKeyError> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random).map_err(|_| ApiKeyError::RandomnessUnavailable)?;
        Ok(Self::from_random(&random))
    }

    /// The key made of these random bytes (tests use fixed bytes).
    pub(crate) fn from_random(random: &[u8; RANDOM_BYTES]) -> Self {
        Self(format_key(random))
    }

    /// The secret itself, for the one response that hands it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The non-secret display prefix (the first [`KEY_PREFIX_LEN`] characters).
    pub fn prefix(&self) -> &str {
        key_prefix(&self.0)
    }
}

impl std::fmt::Debug for PlaintextApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaintextApiKey(<redacted>)")
    }
}

/// Checks prefix, length, alphabet and checksum: everything that needs no database (the
/// parser itself lives with the other input shapes, in `account_values::api_key_format`).
/// Any failure is [`ApiKeyError::Malformed`], which never echoes the input.
pub fn parse_presented_key(presented: &str) -> Result<PresentedApiKey<'_>, ApiKeyError> {
    api_key_format::parse_presented_key(presented).map_err(|_| ApiKeyError::Malformed)
}

/// The server-side secret of the keyed digest. Lives in configuration, never in the database.
///
/// Changing it invalidates every stored digest (no key would verify any more), so it is
/// rotated only together with a re-issue of all keys.
#[derive(Clone)]
pub struct ApiKeyPepper {
    /// HMAC keyed once; each digest starts from a clone of this state.
    mac: HmacSha256,
    /// HKDF-SHA256 extracted from the pepper once (no salt: the pepper is already uniformly
    /// random), for keys of other purposes ([`crate::sealing::Sealer::derive`]); the pepper's
    /// bytes themselves are not kept.
    derivation: Hkdf<Sha256>,
}

/// The pepper given was too short to be a secret.
#[derive(Debug, thiserror::Error)]
#[error("the API-key pepper must be at least {MIN_PEPPER_LEN} bytes of random data (got {len})")]
pub struct PepperTooShort {
    /// Bytes given.
    pub len: usize,
}

impl ApiKeyPepper {
    /// A pepper from at least [`MIN_PEPPER_LEN`] secret bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PepperTooShort> {
        if bytes.len() < MIN_PEPPER_LEN {
            return Err(PepperTooShort { len: bytes.len() });
        }
        // HMAC takes keys of any length; this cannot fail, but is not unwrapped.
        let mac =
            HmacSha256::new_from_slice(bytes).map_err(|_| PepperTooShort { len: bytes.len() })?;
        let derivation = Hkdf::<Sha256>::new(None, bytes);
        Ok(Self { mac, derivation })
    }

    /// The 256-bit key this pepper derives for `purpose` (HKDF-SHA256 expand with `purpose`
    /// as its info): distinct purposes get independent keys, and none reveals the pepper or
    /// the digests' key. Wiped from memory when dropped.
    pub(crate) fn derive_key(
        &self,
        purpose: &str,
    ) -> Result<Zeroizing<[u8; 32]>, hkdf::InvalidLength> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.derivation.expand(purpose.as_bytes(), key.as_mut())?;
        Ok(key)
    }
}

impl std::fmt::Debug for ApiKeyPepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyPepper(<redacted>)")
    }
}

/// The stored form of a key: lowercase hex of `HMAC-SHA-256(pepper, key)`, 64 characters.
pub fn digest(pepper: &ApiKeyPepper, key: &str) -> String {
    let mut mac = pepper.mac.clone();
    mac.update(key.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Compares two digests in time independent of where they differ.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PlaintextApiKey {
        PlaintextApiKey::from_random(&[byte; RANDOM_BYTES])
    }

    fn pepper() -> ApiKeyPepper {
        ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_generated_key_has_the_documented_shape_and_parses() {
        let key = PlaintextApiKey::generate().unwrap();
        let text = key.expose();
        assert_eq!(text.len(), KEY_LEN);
        assert_eq!(KEY_LEN, 61);
        assert!(text.starts_with("acc_live_"));
        assert_eq!(key.prefix().len(), 16);
        assert!(text.starts_with(key.prefix()));
        assert_eq!(&text[52..53], "_");
        let parsed = parse_presented_key(text).unwrap();
        assert_eq!(parsed.expose(), text);
        assert_ne!(
            PlaintextApiKey::generate().unwrap().expose(),
            text,
            "keys are random"
        );
    }

    #[test]
    fn fixed_bytes_give_a_fixed_key() {
        let key = key(0);
        let body = "A".repeat(43);
        let signed = format!("acc_live_{body}");
        let crc = crc32fast::hash(signed.as_bytes());
        assert_eq!(key.expose(), format!("{signed}_{crc:08x}"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = key(0xAB).expose().to_owned();
        let mut cases = vec![
            String::new(),
            "acc_live_".into(),
            good[..60].into(),
            format!("{good}0"),
            format!(" {}", &good[1..]),
            good.replacen("acc_live_", "acc_test_", 1),
            good.replacen("acc_live_", "aos_live_", 1),
            good.to_uppercase(),
        ];
        // A changed body character: the checksum no longer matches.
        let mut flipped = good.clone().into_bytes();
        flipped[20] = if flipped[20] == b'x' { b'y' } else { b'x' };
        cases.push(String::from_utf8(flipped).unwrap());
        // A changed checksum digit.
        let mut bad_crc = good.clone().into_bytes();
        bad_crc[60] = if bad_crc[60] == b'0' { b'1' } else { b'0' };
        cases.push(String::from_utf8(bad_crc).unwrap());
        // A character outside the alphabet, with a checksum that matches it.
        let signed = format!("acc_live_{}+", "A".repeat(42));
        cases.push(format!(
            "{signed}_{:08x}",
            crc32fast::hash(signed.as_bytes())
        ));
        // A non-canonical last character (unused bits set), checksum matching.
        let signed = format!("acc_live_{}B", "A".repeat(42));
        cases.push(format!(
            "{signed}_{:08x}",
            crc32fast::hash(signed.as_bytes())
        ));
        // The separator replaced.
        cases.push(format!("{}-{}", &good[..52], &good[53..]));
        // Multi-byte characters of the right byte length.
        cases.push(format!("{}é{}", &good[..30], &good[32..]));
        for case in cases {
            assert!(
                matches!(parse_presented_key(&case), Err(ApiKeyError::Malformed)),
                "{case:?}"
            );
        }
        assert!(parse_presented_key(&good).is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let key = key(1);
        let debug = format!("{key:?}");
        assert_eq!(debug, "PlaintextApiKey(<redacted>)");
        let parsed = parse_presented_key(key.expose()).unwrap();
        let debug = format!("{parsed:?}");
        assert!(!debug.contains(&key.expose()[16..]), "{debug}");
        assert!(debug.contains(key.prefix()));
        let pepper = ApiKeyPepper::from_bytes(b"a-very-secret-pepper-of-32-bytes!!").unwrap();
        let debug = format!("{pepper:?}");
        assert_eq!(debug, "ApiKeyPepper(<redacted>)");
    }

    #[test]
    fn the_pepper_must_be_long_enough() {
        let short = ApiKeyPepper::from_bytes(&[1u8; 31]).unwrap_err();
        assert_eq!(short.len, 31);
        assert!(short.to_string().contains("at least 32 bytes"));
        assert!(ApiKeyPepper::from_bytes(&[1u8; 32]).is_ok());
    }

    #[test]
    fn the_digest_is_keyed_hex_hmac_sha256() {
        let pepper = pepper();
        let text = key(3);
        let d = digest(&pepper, text.expose());
        assert_eq!(d.len(), 64);
        assert!(
            d.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let mut mac = HmacSha256::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(text.expose().as_bytes());
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(d, expected);
        assert_eq!(d, digest(&pepper, text.expose()), "deterministic");
        let other = ApiKeyPepper::from_bytes(&[8u8; 32]).unwrap();
        assert_ne!(d, digest(&other, text.expose()), "the pepper matters");
        assert!(digests_match(&d, &d.clone()));
        assert!(!digests_match(&d, &d[..63]));
        assert!(!digests_match(&d, &digest(&other, text.expose())));
    }

    // Hostile input: the parser never panics, accepts exactly the keys it issues, and any
    // single change to an issued key (or any truncation) is refused.
    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_are_malformed(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128),
        ) {
            let text = String::from_utf8_lossy(&bytes);
            match parse_presented_key(&text) {
                // Only a 1 in 2^32 checksum accident could get here: it must still be a key.
                Ok(key) => proptest::prop_assert_eq!(key.expose(), &*text),
                Err(error) => {
                    proptest::prop_assert!(matches!(error, ApiKeyError::Malformed));
                    proptest::prop_assert!(!error.to_string().is_empty());
                }
            }
        }

        #[test]
        fn every_issued_key_parses_to_itself(random in proptest::prelude::any::<[u8; RANDOM_BYTES]>()) {
            let key = PlaintextApiKey::from_random(&random);
            let parsed = parse_presented_key(key.expose()).unwrap();
            proptest::prop_assert_eq!(parsed.expose(), key.expose());
            proptest::prop_assert_eq!(parsed.prefix(), key.prefix());
            let debug = format!("{parsed:?}");
            proptest::prop_assert!(!debug.contains(&key.expose()[KEY_PREFIX_LEN..]), "{}", debug);
        }

        #[test]
        fn any_single_change_or_truncation_is_refused(
            random in proptest::prelude::any::<[u8; RANDOM_BYTES]>(),
            at in 0..KEY_LEN,
            replacement in proptest::prelude::any::<u8>(),
        ) {
            let key = PlaintextApiKey::from_random(&random);
            let mut bytes = key.expose().as_bytes().to_vec();
            proptest::prop_assume!(bytes[at] != replacement);
            bytes[at] = replacement;
            let changed = String::from_utf8_lossy(&bytes);
            proptest::prop_assert!(matches!(parse_presented_key(&changed), Err(ApiKeyError::Malformed)));
            let truncated = &key.expose()[..at];
            proptest::prop_assert!(matches!(parse_presented_key(truncated), Err(ApiKeyError::Malformed)));
            let extended = format!("{}{}", key.expose(), char::from(replacement.clamp(b' ', b'~')));
            proptest::prop_assert!(matches!(parse_presented_key(&extended), Err(ApiKeyError::Malformed)));
        }
    }

    #[test]
    fn rfc_4231_case_6_vector() {
        // A 131-byte key (longer than the block, so HMAC hashes it first).
        let pepper = ApiKeyPepper::from_bytes(&[0xaa; 131]).unwrap();
        assert_eq!(
            digest(
                &pepper,
                "Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
