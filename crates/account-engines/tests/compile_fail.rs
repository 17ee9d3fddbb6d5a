//! The boundaries the compiler enforces for engines (expected errors in `compile_fail/*.stderr`).

#[test]
fn engines_cannot_run_sql_or_call_upward() {
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
}
