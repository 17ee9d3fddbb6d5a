//! The boundaries the compiler enforces for drivers (expected errors in `compile_fail/*.stderr`).

// Named so this crate's trybuild project resolves the same features as the engines' one:
// both build in `target/tests/trybuild`, and a difference there (hmac's `digest/mac`,
// proptest's `bitflags/std`) compiled sea-orm and everything below it twice.
use {base64 as _, chrono_tz as _, crc32fast as _, getrandom as _, hmac as _, proptest as _};
use {serde as _, sha2 as _, subtle as _};

#[test]
fn drivers_cannot_control_transactions_or_call_upward() -> std::io::Result<()> {
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        return rerun_without_package_env("drivers_cannot_control_transactions_or_call_upward");
    }
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
    Ok(())
}

/// Runs `test` of this binary again without cargo's per-package variables.
///
/// trybuild's cargo inherits them, and ring's build script reruns when `CARGO_MANIFEST_DIR`
/// or `CARGO_PKG_NAME` differ from the last build's; this suite and the engines' one share a
/// target directory, so each rebuilt rustls, sqlx and sea-orm after the other. Without
/// `CARGO_MANIFEST_DIR`, trybuild finds this crate from the working directory, the package
/// root under `cargo test`.
fn rerun_without_package_env(test: &str) -> std::io::Result<()> {
    let mut child = std::process::Command::new(std::env::current_exe()?);
    child.args(["--exact", test]);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_MANIFEST_") {
            child.env_remove(&*name);
        }
    }
    let output = child.output()?;
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
