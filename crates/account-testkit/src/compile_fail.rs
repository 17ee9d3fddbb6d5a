//! What the trybuild compile-fail suites of drivers and engines share.

/// Runs `test` of the current test binary again without cargo's per-package variables, and
/// fails when it fails; `Ok(false)` when those variables are already absent (this is the
/// rerun: go on with the suite).
///
/// trybuild's cargo inherits them, and ring's build script reruns when `CARGO_MANIFEST_DIR`
/// or `CARGO_PKG_NAME` differ from the last build's; the drivers' and the engines' suites share
/// a target directory, so each rebuilt rustls, sqlx and sea-orm after the other. Without
/// `CARGO_MANIFEST_DIR`, trybuild finds the crate from the working directory, the package root
/// under `cargo test`.
pub fn rerun_without_package_env(test: &str) -> std::io::Result<bool> {
    if std::env::var_os("CARGO_MANIFEST_DIR").is_none() {
        return Ok(false);
    }
    let mut child = std::process::Command::new(std::env::current_exe()?);
    child.args(["--exact", test]);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_MANIFEST_") {
            child.env_remove(&*name);
        }
    }
    let output = child.output()?;
    if !output.status.success() {
        let (stdout, stderr) = (&output.stdout, &output.stderr);
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(stderr)
        );
        return Err(std::io::Error::other(report));
    }
    Ok(true)
}
