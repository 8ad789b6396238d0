//! Times on the wire, in UTC with a `Z`: milliseconds (`2024-05-01T12:00:05.123Z`, the
//! shape JavaScript's `Date.prototype.toJSON` writes and `new Date(s)` reads) or
//! microseconds (`2024-05-01T12:00:05.123456Z`, the stored precision).

use chat_core::Timestamp;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// RFC 3339 in UTC with milliseconds.
pub fn millis(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 3339 in UTC with microseconds.
pub fn micros(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
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
            crate::json::kind(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_and_parses_both_ways() {
        let t = parse(&json!("2024-05-01T14:00:05.123+02:00")).unwrap();
        assert_eq!(millis(&t), "2024-05-01T12:00:05.123Z");
        assert_eq!(micros(&t), "2024-05-01T12:00:05.123000Z");
        assert_eq!(parse(&json!(1714564805123i64)).unwrap(), t);
        assert!(parse(&json!("yesterday")).is_err());
        assert!(parse(&json!(true)).is_err());
    }
}
