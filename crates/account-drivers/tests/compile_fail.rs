//! The boundaries the compiler enforces for drivers (expected errors in `compile_fail/*.stderr`).

// Named so this crate's trybuild project resolves the same features as the engines' one:
// both build in `target/tests/trybuild`, and a difference there (hmac's `digest/mac`,
// proptest's `bitflags/std`) compiled sea-orm and everything below it twice.
use zeroize as _;
use {aes_gcm as _, hkdf as _, serde as _, sha2 as _, subtle as _, url as _, uuid as _};
use {base64 as _, chrono_tz as _, crc32fast as _, getrandom as _, hmac as _, proptest as _};

#[test]
fn drivers_cannot_control_transactions_or_call_upward() -> std::io::Result<()> {
    // Rerun without cargo's package variables (see the testkit), then run the suite there.
    if account_testkit::compile_fail::rerun_without_package_env(
        "drivers_cannot_control_transactions_or_call_upward",
    )? {
        return Ok(());
    }
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
    Ok(())
}
