//! Memory pin keys and list prefixes on arbitrary bytes.
//!
//! Oracle: no panic; accepted exactly when the §3.12 rules (restated here) hold; an accepted
//! key is stored unchanged and parses again to itself, through `Display` and serde; every key
//! is also a valid prefix, and so is every key with trailing whitespace.

#![no_main]

use account_values::{MemoryPinKey, MemoryPinPrefix};
use libfuzzer_sys::fuzz_target;

/// The rules both share; a key may not end in whitespace, a prefix may (`my ` starts `my pin`).
fn rules_hold(text: &str) -> bool {
    text.chars().count() <= MemoryPinKey::MAX
        && !text.contains("..")
        && !text.contains(['/', '\\'])
        && !text.chars().any(char::is_control)
        && text.trim_start() == text
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let key = MemoryPinKey::parse(&text);
    let prefix = MemoryPinPrefix::parse(&text);
    let whole_key = !text.is_empty() && text.trim_end() == text;
    assert_eq!(key.is_ok(), whole_key && rules_hold(&text), "{text:?}");
    assert_eq!(prefix.is_ok(), rules_hold(&text), "{text:?}");
    match key {
        Ok(key) => {
            assert_eq!(key.as_str(), text);
            assert_eq!(MemoryPinKey::parse(&key.to_string()).as_ref(), Ok(&key));
            let json = serde_json::to_string(&key).expect("a key serialises");
            assert_eq!(serde_json::from_str::<MemoryPinKey>(&json).ok(), Some(key));
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    if let Ok(prefix) = prefix {
        assert_eq!(prefix.as_str(), text);
    }
});
