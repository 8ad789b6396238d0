//! JSON kinds in error sentences.

use serde_json::Value;

/// The JSON kind of a value with its article ("a string", "an object", "null"), for
/// error messages such as "expected an array, got a string".
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
