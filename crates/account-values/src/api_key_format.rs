//! The shape of an API key, and the parser that checks a presented one without a database.
//!
//! ```text
//! acc_live_<43 chars: base64url, no padding, of 32 random bytes>_<8 lowercase hex: CRC32>
//! ```
//!
//! 61 characters in all. The CRC32 covers everything before the last `_`, so a scanner (or
//! [`parse_presented_key`]) can tell a real key from a typo or a truncated paste without a
//! database round trip. The CRC is not a security measure: the 256 random bits are. Generating
//! keys and digesting them is the engines' business (`account_engines::api_keys::secret`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What every key starts with: the product and the environment, for secret scanners.
pub const KEY_PREFIX: &str = "acc_live_";
/// Random bytes in a key.
pub const RANDOM_BYTES: usize = 32;
/// Characters of base64url (no padding) that encode [`RANDOM_BYTES`].
pub const BODY_LEN: usize = 43;
/// Hex digits of the CRC32 checksum.
const CHECKSUM_LEN: usize = 8;
/// Length of every key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + BODY_LEN + 1 + CHECKSUM_LEN;
/// Characters of the key stored and shown to identify it (`acc_live_` plus 7 random ones).
pub const KEY_PREFIX_LEN: usize = 16;

/// The presented string is not a key of ours. Carries nothing of the input, so it can be
/// logged and answered as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the API key is malformed; send the whole key as issued (acc_live_…)")]
pub struct MalformedApiKey;

/// One kind of key: its prefix. Tenant keys and operator keys share the body and checksum and
/// differ in prefix, so neither ever parses as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFormat {
    /// What every key of this kind starts with.
    pub prefix: &'static str,
}

/// Tenant API keys (`acc_live_…`).
pub const TENANT_KEYS: KeyFormat = KeyFormat { prefix: KEY_PREFIX };
/// Platform operator keys (`acc_op_…`).
pub const OPERATOR_KEYS: KeyFormat = KeyFormat { prefix: "acc_op_" };

impl KeyFormat {
    /// Length of every key of this kind.
    pub const fn key_len(self) -> usize {
        self.prefix.len() + BODY_LEN + 1 + CHECKSUM_LEN
    }

    /// The key text made of these random bytes: prefix, body, checksum.
    pub fn format(self, random: &[u8; RANDOM_BYTES]) -> String {
        let mut key = String::with_capacity(self.key_len());
        key.push_str(self.prefix);
        key.push_str(&URL_SAFE_NO_PAD.encode(random));
        let checksum = crc32fast::hash(key.as_bytes());
        key.push('_');
        key.push_str(&format!("{checksum:08x}"));
        key
    }

    /// Checks prefix, length, alphabet, canonical encoding and checksum; the key as given.
    pub fn parse(self, presented: &str) -> Result<&str, MalformedApiKey> {
        if presented.len() != self.key_len() || !presented.is_ascii() {
            return Err(MalformedApiKey);
        }
        let rest = presented.strip_prefix(self.prefix).ok_or(MalformedApiKey)?;
        // Fixed positions: the body's alphabet includes `_`, so splitting on it would be wrong.
        let (body, tail) = rest.split_at(BODY_LEN);
        let checksum = tail.strip_prefix('_').ok_or(MalformedApiKey)?;
        let body_ok = body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let checksum_ok = checksum
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !body_ok || !checksum_ok {
            return Err(MalformedApiKey);
        }
        // Canonical encoding only (the last character carries 2 unused bits that must be zero).
        if URL_SAFE_NO_PAD
            .decode(body)
            .map_or(true, |bytes| bytes.len() != RANDOM_BYTES)
        {
            return Err(MalformedApiKey);
        }
        let signed = &presented[..self.prefix.len() + BODY_LEN];
        let expected = format!("{:08x}", crc32fast::hash(signed.as_bytes()));
        if expected != checksum {
            return Err(MalformedApiKey);
        }
        Ok(presented)
    }
}

/// The tenant key text made of these random bytes.
pub fn format_key(random: &[u8; RANDOM_BYTES]) -> String {
    TENANT_KEYS.format(random)
}

/// A presented key that has the right shape and checksum; still unverified against storage.
///
/// Borrowed from the request; `Debug` shows only the display prefix.
#[derive(Clone, Copy)]
pub struct PresentedApiKey<'a>(&'a str);

impl<'a> PresentedApiKey<'a> {
    /// The key as presented (needed to compute its digest).
    pub fn expose(&self) -> &'a str {
        self.0
    }

    /// The non-secret display prefix.
    pub fn prefix(&self) -> &'a str {
        key_prefix(self.0)
    }
}

impl std::fmt::Debug for PresentedApiKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedApiKey({}…<redacted>)", self.prefix())
    }
}

/// The first [`KEY_PREFIX_LEN`] characters of a well-formed key (all ASCII).
pub fn key_prefix(key: &str) -> &str {
    key.get(..KEY_PREFIX_LEN).unwrap_or(key)
}

/// Checks a presented tenant key: everything that needs no database.
///
/// The key must be exactly as issued (no surrounding spaces; the API layer strips the
/// `Bearer ` scheme). Any failure is the same [`MalformedApiKey`], which never echoes the input.
pub fn parse_presented_key(presented: &str) -> Result<PresentedApiKey<'_>, MalformedApiKey> {
    TENANT_KEYS.parse(presented).map(PresentedApiKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formatted_key_parses_to_itself_and_one_flipped_character_does_not() {
        let key = format_key(&[0xA5; RANDOM_BYTES]);
        assert_eq!(key.len(), KEY_LEN);
        assert_eq!(parse_presented_key(&key).unwrap().expose(), key);
        let mut flipped = key.into_bytes();
        flipped[KEY_PREFIX.len() + 3] ^= 0x01;
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(parse_presented_key(&flipped).unwrap_err(), MalformedApiKey);
    }

    #[test]
    fn a_key_of_one_kind_never_parses_as_the_other() {
        let random = [0x3C; RANDOM_BYTES];
        let operator = OPERATOR_KEYS.format(&random);
        assert_eq!(OPERATOR_KEYS.parse(&operator), Ok(operator.as_str()));
        assert_eq!(TENANT_KEYS.parse(&operator), Err(MalformedApiKey));
        assert_eq!(
            OPERATOR_KEYS.parse(&format_key(&random)),
            Err(MalformedApiKey)
        );
    }

    #[test]
    fn debug_shows_only_the_display_prefix() {
        let key = format_key(&[7; RANDOM_BYTES]);
        let shown = format!("{:?}", parse_presented_key(&key).unwrap());
        assert!(shown.contains(&key[..KEY_PREFIX_LEN]));
        assert!(!shown.contains(&key[KEY_PREFIX_LEN..]));
    }
}
