//! Prefix search that means "starts with", whatever the prefix contains.

/// The escape character used with every `LIKE` the drivers build.
pub(crate) const LIKE_ESCAPE: char = '\\';

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
