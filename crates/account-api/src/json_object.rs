//! [`JsonObject`]: a body field the OpenAPI document declares as an object accepts only a JSON
//! object, so the document and the parser agree; an array, string, number or boolean is a 422
//! `invalid_request` naming the field.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde_json::{Map, Value};

/// A JSON object, and nothing else. Fields of this type carry
/// `#[schema(value_type = Object)]` (or `Option<Object>`), which is exactly what they accept.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// The object as a JSON value, for the spine.
    pub(crate) fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = match Value::deserialize(deserializer)? {
            Value::Object(map) => return Ok(Self(map)),
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
        };
        Err(D::Error::custom(format!(
            "must be a JSON object, not {kind}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_objects_are_objects() {
        let object: JsonObject = serde_json::from_value(json!({"a": [1]})).unwrap();
        assert_eq!(object.into_value(), json!({"a": [1]}));
        for (other, kind) in [
            (json!([1]), "an array"),
            (json!("x"), "a string"),
            (json!(1.5), "a number"),
            (json!(true), "a boolean"),
            (Value::Null, "null"),
        ] {
            let error = serde_json::from_value::<JsonObject>(other).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("must be a JSON object, not {kind}")
            );
        }
        let absent: Option<JsonObject> = serde_json::from_value(Value::Null).unwrap();
        assert_eq!(absent, None, "null is an absent optional object");
    }
}
