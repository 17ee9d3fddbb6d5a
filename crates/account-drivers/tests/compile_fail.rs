//! The boundaries the compiler enforces for drivers (expected errors in `compile_fail/*.stderr`).

#[test]
fn drivers_cannot_control_transactions_or_call_upward() {
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
}
