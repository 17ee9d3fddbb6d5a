//! The boundaries the compiler enforces for engines (expected errors in `compile_fail/*.stderr`).

#[test]
fn engines_cannot_run_sql_or_call_upward() -> std::io::Result<()> {
    // Rerun without cargo's package variables (see the testkit), then run the suite there.
    if account_testkit::compile_fail::rerun_without_package_env(
        "engines_cannot_run_sql_or_call_upward",
    )? {
        return Ok(());
    }
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
    Ok(())
}
