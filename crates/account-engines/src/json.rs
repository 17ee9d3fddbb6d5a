//! Rules for free-form JSON and text that callers store: PostgreSQL cannot hold the NUL
//! character (U+0000) in `jsonb` or `text` while SQLite can, so every engine refuses it where
//! caller text enters, and both backends answer the same.

use serde_json::Value as Json;

/// Where a NUL character was found: the field's dotted path into the request body
/// (`value.notes[2]`), and whether it sat in an object key rather than a string value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} must not contain the NUL character (U+0000){}", if *.in_key { " in an object key" } else { "" })]
pub struct NulCharacter {
    /// The dotted path, starting with the body field's own name.
    pub field: String,
    /// True when an object key holds the NUL, false when a string value does.
    pub in_key: bool,
}

/// Longest key shown in a path: the path is for people, not a copy of the input.
const MAX_SHOWN_KEY_CHARS: usize = 64;

/// Refuses `value` if any string in it, or any object key at any depth, holds a NUL.
/// `field` names the body field the value arrived in; the error extends it to the spot.
/// Walks with an explicit stack, so no nesting depth can exhaust the call stack.
pub fn reject_nul(field: &str, value: &Json) -> Result<(), NulCharacter> {
    let mut pending: Vec<(String, &Json)> = vec![(field.to_owned(), value)];
    while let Some((path, value)) = pending.pop() {
        match value {
            Json::String(text) if text.contains('\0') => {
                return Err(NulCharacter {
                    field: path,
                    in_key: false,
                });
            }
            Json::Array(items) => {
                pending.extend(
                    items
                        .iter()
                        .enumerate()
                        .rev()
                        .map(|(index, item)| (format!("{path}[{index}]"), item)),
                );
            }
            Json::Object(entries) => {
                if entries.keys().any(|key| key.contains('\0')) {
                    return Err(NulCharacter {
                        field: path,
                        in_key: true,
                    });
                }
                let mut children: Vec<_> = entries
                    .iter()
                    .map(|(key, item)| (format!("{path}.{}", shown_key(key)), item))
                    .collect();
                children.reverse();
                pending.extend(children);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses plain text holding a NUL; `field` names the body field.
pub fn reject_nul_text(field: &str, text: &str) -> Result<(), NulCharacter> {
    if text.contains('\0') {
        return Err(NulCharacter {
            field: field.to_owned(),
            in_key: false,
        });
    }
    Ok(())
}

fn shown_key(key: &str) -> String {
    if key.chars().count() <= MAX_SHOWN_KEY_CHARS {
        key.to_owned()
    } else {
        let head: String = key.chars().take(MAX_SHOWN_KEY_CHARS).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn nul_in_a_nested_value_is_refused_with_its_path() {
        let error = reject_nul("value", &json!({"a": {"b": [1, "ok", "x\u{0}y"]}})).unwrap_err();
        assert_eq!(
            error,
            NulCharacter {
                field: "value.a.b[2]".into(),
                in_key: false
            }
        );
        assert_eq!(
            error.to_string(),
            "value.a.b[2] must not contain the NUL character (U+0000)"
        );
    }

    #[test]
    fn nul_in_a_key_is_refused_at_the_object_holding_it() {
        let error = reject_nul("preferences", &json!({"outer": {"k\u{0}": 1}})).unwrap_err();
        assert_eq!(error.field, "preferences.outer");
        assert!(error.in_key);
        assert!(error.to_string().ends_with("in an object key"));
    }

    #[test]
    fn nul_free_values_and_text_pass() {
        assert_eq!(
            reject_nul("value", &json!({"a": ["\u{1}", {"b": null}], "c": 1.5})),
            Ok(())
        );
        assert_eq!(reject_nul_text("task", "two\nlines"), Ok(()));
        assert!(reject_nul_text("task", "\u{0}").is_err());
    }

    #[test]
    fn deep_nesting_does_not_exhaust_the_stack() {
        let mut value = json!("x\u{0}");
        for _ in 0..5_000 {
            value = Json::Array(vec![value]);
        }
        assert!(reject_nul("output", &value).is_err());
        // Dropping a value this deep recurses in serde_json; unwind it iteratively.
        while let Json::Array(mut items) = value {
            value = items.pop().unwrap_or(Json::Null);
        }
    }

    proptest! {
        #[test]
        fn refused_exactly_when_some_string_or_key_holds_nul(
            key in "[a\u{0}]{0,3}",
            text in "[b\u{0}]{0,3}",
        ) {
            let value = json!({"outer": [{ key.clone(): text.clone() }]});
            let refused = reject_nul("value", &value).is_err();
            prop_assert_eq!(refused, key.contains('\0') || text.contains('\0'));
        }
    }
}
