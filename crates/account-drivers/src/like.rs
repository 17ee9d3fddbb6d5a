//! Prefix search that means "starts with", whatever the prefix contains.

use sea_orm::Condition;
use sea_orm::sea_query::{Expr, ExprTrait, Func, IntoColumnRef, LikeExpr};

/// The escape character used with every `LIKE` the drivers build.
pub(crate) const LIKE_ESCAPE: char = '\\';

/// Values of `column` starting with `prefix`, literally and case-sensitively on both backends
/// (SQLite's `LIKE` ignores ASCII case, so an exact `substr` comparison backs it up; the
/// `LIKE` lets PostgreSQL and SQLite narrow the rows first).
pub(crate) fn column_starts_with(column: impl IntoColumnRef + Copy, prefix: &str) -> Condition {
    let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    Condition::all()
        .add(Expr::col(column).like(LikeExpr::new(starts_with_pattern(prefix)).escape(LIKE_ESCAPE)))
        .add(
            Expr::expr(
                Func::cust("substr")
                    .arg(Expr::col(column))
                    .arg(1)
                    .arg(length),
            )
            .eq(prefix),
        )
}

/// A `LIKE` pattern matching values that start with `prefix`, literally: `%` and `_` in the
/// prefix are escaped (the original passed them through as wildcards).
pub(crate) fn starts_with_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::starts_with_pattern;

    #[test]
    fn wildcards_and_the_escape_character_are_escaped() {
        assert_eq!(starts_with_pattern("cfg"), "cfg%");
        assert_eq!(starts_with_pattern("50%_off"), "50\\%\\_off%");
        assert_eq!(starts_with_pattern("a\\b"), "a\\\\b%");
        assert_eq!(starts_with_pattern(""), "%");
    }
}
