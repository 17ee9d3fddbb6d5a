//! The presented-key parser on arbitrary bytes, and on keys with a correct checksum so the
//! fuzzer reaches the alphabet and canonical-encoding checks behind it.
//!
//! Oracle: no panic; a key is accepted exactly when its body is the canonical base64url
//! encoding of 32 bytes (decided independently here); an accepted key is returned unchanged
//! and its `Debug` never shows the secret part.

#![no_main]

use account_values::api_key_format::{
    KEY_LEN, KEY_PREFIX, KEY_PREFIX_LEN, MalformedApiKey, OPERATOR_KEYS, parse_presented_key,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    // The same bytes as a key body, signed with the right checksum.
    let signed = format!("{KEY_PREFIX}{text}");
    let key = format!("{signed}_{:08x}", crc32fast::hash(signed.as_bytes()));
    let accepted = check(&key);
    // A tenant key is never an operator key, whatever its body.
    assert!(OPERATOR_KEYS.parse(&key).is_err(), "{key:?}");
    let canonical = text.len() == 43
        && URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .is_ok_and(|bytes| bytes.len() == 32 && URL_SAFE_NO_PAD.encode(&bytes) == text);
    assert_eq!(accepted, canonical, "{key:?}");
});

/// Parses `text`, checks what an accepted key promises, and says whether it was accepted.
fn check(text: &str) -> bool {
    match parse_presented_key(text) {
        Ok(key) => {
            assert_eq!(key.expose(), text);
            assert_eq!(text.len(), KEY_LEN);
            assert_eq!(key.prefix(), &text[..KEY_PREFIX_LEN]);
            let debug = format!("{key:?}");
            assert!(!debug.contains(&text[KEY_PREFIX_LEN..]), "{debug}");
            true
        }
        Err(error) => {
            // One fixed refusal: it never echoes what was presented.
            assert_eq!(error, MalformedApiKey);
            false
        }
    }
}
