//! Email addresses on arbitrary bytes.
//!
//! Oracle: no panic; what is accepted is trimmed ASCII, lower case, at most 254 characters
//! with exactly one `@`, and parses again to itself (normalising is idempotent).

#![no_main]

use account_values::Email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Email::parse(&text) {
        Ok(email) => {
            let stored = email.as_str();
            assert!(text.trim().is_ascii(), "{text:?}");
            assert_eq!(stored, text.trim().to_ascii_lowercase());
            assert!(stored.len() <= Email::MAX);
            assert_eq!(stored.matches('@').count(), 1);
            assert_eq!(Email::parse(stored).as_ref(), Ok(&email));
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
