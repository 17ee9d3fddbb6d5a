//! Secrets: API keys carry at least 128 bits from the operating system's random source (ASVS
//! 11.5.1), and every comparison of a secret's digest in Rust is constant-time (ASVS 11.2.4).
//!
//! A test cannot time a comparison reliably (nanosecond differences drown in scheduler noise),
//! so the constant-time rule is checked structurally, over the engine's own source: the one
//! comparison function uses `subtle`'s `ConstantTimeEq`, and no digest or token is compared
//! with `==`/`!=` anywhere else. Lookups by digest in SQL are equality on a keyed HMAC the
//! caller cannot steer, so an index lookup's timing says nothing about the stored secret.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_engines::api_keys::secret::{
    KEY_LEN, KEY_PREFIX, PlaintextApiKey, RANDOM_BYTES, digests_match, parse_presented_key,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const KEYS: usize = 10_000;

/// The engine's library sources without their `#[cfg(test)]` modules: `(path, text)`.
fn library_sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let library = text.split("#[cfg(test)]").next().unwrap().to_owned();
                found.push((path, library));
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.len() > 10, "the engine's sources are found");
    found
}

fn source(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(relative);
    let text = std::fs::read_to_string(path).unwrap();
    text.split("#[cfg(test)]").next().unwrap().to_owned()
}

/// The text of `fn <name>` in `source`, up to the end of its body (the first line that is a
/// lone closing brace: the crate is rustfmt-formatted).
fn function<'a>(source: &'a str, name: &str) -> &'a str {
    let start = source
        .find(&format!("fn {name}("))
        .unwrap_or_else(|| panic!("fn {name} exists"));
    let rest = &source[start..];
    let end = rest
        .find("\n}\n")
        .or_else(|| rest.find("\n    }\n"))
        .unwrap();
    &rest[..end]
}

#[test]
fn digests_are_compared_in_constant_time_only() {
    let secret = source("api_keys/secret.rs");
    assert!(
        secret.contains("use subtle::ConstantTimeEq;"),
        "secret.rs uses subtle"
    );
    let compare = function(&secret, "digests_match");
    assert!(
        compare.contains(".ct_eq("),
        "digests_match compares with ConstantTimeEq::ct_eq:\n{compare}"
    );
    assert!(
        !compare.contains("==") && !compare.contains("!="),
        "and never with a short-circuiting comparison:\n{compare}"
    );
    // The behaviour the structure promises.
    assert!(digests_match("ab", "ab"));
    assert!(!digests_match("ab", "ac"));
    assert!(!digests_match("ab", "abc"));

    // No digest, token or key text is compared with `==`/`!=` anywhere in the engine: a
    // comparison of secrets goes through `digests_match`.
    let mut offenders = Vec::new();
    for (path, text) in library_sources() {
        for (n, line) in text.lines().enumerate() {
            // A length is public (every key has the same one), so comparing it is fine.
            let code = line
                .split("//")
                .next()
                .unwrap()
                .replace(".len() !=", "")
                .replace(".len() ==", "");
            let compares = code.contains("==") || code.contains("!=");
            let secretish = ["digest", "token", "plaintext", "presented", "expose()"]
                .iter()
                .any(|word| code.to_lowercase().contains(word));
            // Counters named `*tokens*` (usage) are not secrets.
            let usage = code.contains("tokens") || code.contains("usage_month");
            if compares && secretish && !usage {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "secrets compared without digests_match:\n{}",
        offenders.join("\n")
    );
    // The operator-key check, the one place a stored digest comes back to Rust, uses it.
    let operator = source("operators.rs");
    assert!(
        function(&operator, "verify_operator_key").contains("digests_match("),
        "operator keys compare digests with digests_match"
    );
}

#[test]
fn every_secret_comes_from_the_os_random_source() {
    // Each generator fills its bytes from `getrandom` (the OS CSPRNG) and from nothing else.
    for (file, generator) in [
        ("api_keys/secret.rs", "generate"),
        ("operators.rs", "generate"),
        ("invitations.rs", "generate"),
    ] {
        let text = source(file);
        let body = function(&text, generator);
        assert!(
            body.contains("getrandom::fill("),
            "{file}: {generator} uses getrandom:\n{body}"
        );
        for weak in [
            "rand::",
            "thread_rng",
            "SmallRng",
            "Uuid::",
            "SystemTime",
            "now()",
        ] {
            assert!(
                !body.contains(weak),
                "{file}: {generator} uses {weak}:\n{body}"
            );
        }
        assert!(
            body.contains("[0u8; RANDOM_BYTES]") || body.contains("[0u8; 32]"),
            "{file}: {generator} draws 32 bytes:\n{body}"
        );
    }
}

#[test]
fn keys_carry_256_random_bits_and_ten_thousand_are_distinct() {
    const { assert!(RANDOM_BYTES * 8 >= 128, "at least 128 bits (ASVS 11.5.1)") };
    let mut seen = HashSet::with_capacity(KEYS);
    // How often each of the 256 bits is set, over all keys.
    let mut ones = vec![0u32; RANDOM_BYTES * 8];
    for _ in 0..KEYS {
        let key = PlaintextApiKey::generate().unwrap();
        let text = key.expose();
        assert_eq!(text.len(), KEY_LEN);
        assert!(parse_presented_key(text).is_ok());
        let body = &text[KEY_PREFIX.len()..KEY_PREFIX.len() + 43];
        let bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
        assert_eq!(bytes.len(), RANDOM_BYTES, "the body encodes 32 bytes");
        for (i, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if byte >> bit & 1 == 1 {
                    ones[i * 8 + bit] += 1;
                }
            }
        }
        assert!(seen.insert(text.to_owned()), "a key repeated");
    }
    assert_eq!(seen.len(), KEYS);
    // Every bit is a fair coin: set in 50 % of keys ± 5 points (10 standard deviations at
    // 10,000 keys, so a true random source never fails; a constant or a partly-filled buffer
    // sits at 0 % or 100 %).
    let unfair: Vec<_> = ones
        .iter()
        .enumerate()
        .filter(|(_, n)| !(4_500..=5_500).contains(*n))
        .collect();
    assert!(unfair.is_empty(), "bits that are not random: {unfair:?}");
}
