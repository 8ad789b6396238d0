//! Times on the wire: RFC 3339 in UTC with milliseconds (`2024-05-01T12:00:05.123Z`),
//! the shape JavaScript's `Date.prototype.toJSON` produces and `new Date(s)` reads.

use chat_core::Timestamp;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub fn format(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A client's time: an RFC 3339 string (any offset), or a number of milliseconds
/// since the epoch (`Date.now()`). `Err` names what was wrong.
pub fn parse(v: &Value) -> Result<Timestamp, String> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("`{s}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z")),
        Value::Number(n) => n
            .as_i64()
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or_else(|| format!("{n} is not a time in milliseconds since 1970")),
        other => Err(format!(
            "expected an RFC 3339 string or milliseconds since 1970, got {}",
            kind(other)
        )),
    }
}

/// The JSON kind of a value, for error messages.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_and_parses_both_ways() {
        let t = parse(&json!("2024-05-01T14:00:05.123+02:00")).unwrap();
        assert_eq!(format(&t), "2024-05-01T12:00:05.123Z");
        assert_eq!(parse(&json!(1714564805123i64)).unwrap(), t);
        assert!(parse(&json!("yesterday")).is_err());
        assert!(parse(&json!(true)).is_err());
    }
}
