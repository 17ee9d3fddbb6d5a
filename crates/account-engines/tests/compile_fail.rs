//! The boundaries the compiler enforces for engines (expected errors in `compile_fail/*.stderr`).

#[test]
fn engines_cannot_run_sql_or_call_upward() -> std::io::Result<()> {
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        return rerun_without_package_env("engines_cannot_run_sql_or_call_upward");
    }
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
    Ok(())
}

/// Runs `test` of this binary again without cargo's per-package variables.
///
/// trybuild's cargo inherits them, and ring's build script reruns when `CARGO_MANIFEST_DIR`
/// or `CARGO_PKG_NAME` differ from the last build's; this suite and the drivers' one share a
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
