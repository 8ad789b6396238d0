//! Ids as legacy clients send them.
//!
//! One rule for every dialect: an id is a JSON integer, or a string of ASCII decimal
//! digits (surrounding whitespace ignored), as Django REST framework's integer fields and
//! JavaScript clients that keep ids as strings both send them; it must fit an `i64`.
//! Signs, fractions, empty strings and every other JSON type are refused. Each dialect
//! words the refusal in its own vocabulary (`expecting`), so its documented error texts
//! stay as they are.

use serde::de::{self, Deserializer, Visitor};
use serde::Serialize;
use std::fmt;

/// An id under the one rule, for a dialect with no wording of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct LenientId(pub i64);

crate::deserialize_id!(
    LenientId,
    "an id: an integer, or a string of decimal digits"
);

/// `impl Deserialize` for `$id`, a newtype over `i64`, under the one rule: a dialect's
/// id type, refused with its own wording `$expecting` (see [`deserialize`]).
#[macro_export]
macro_rules! deserialize_id {
    ($id:ident, $expecting:expr) => {
        impl<'de> ::serde::Deserialize<'de> for $id {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::id::deserialize(d, $expecting).map($id)
            }
        }
    };
}

/// Deserialize an id under the one rule; `expecting` completes serde's "expected …".
pub fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
) -> Result<i64, D::Error> {
    d.deserialize_any(IdVisitor(expecting))
}

struct IdVisitor(&'static str);

impl Visitor<'_> for IdVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("the id {v} is out of range")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        parse_decimal(v.trim()).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// A non-empty run of ASCII digits that fits an `i64`. Stricter than `str::parse`,
/// which would also take a sign.
pub fn parse_decimal(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn id(v: serde_json::Value) -> Result<i64, String> {
        LenientId::deserialize(v)
            .map(|i| i.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_one_rule() {
        let cases: &[(serde_json::Value, Option<i64>)] = &[
            (json!(12), Some(12)),
            (json!("12"), Some(12)),
            (json!(" 12 "), Some(12)),
            (json!(0), Some(0)),
            (json!(i64::MAX), Some(i64::MAX)),
            (json!(-3), Some(-3)),
            (json!("-3"), None),
            (json!("+3"), None),
            (json!(""), None),
            (json!("1e3"), None),
            (json!(1.5), None),
            (json!(u64::MAX), None),
            (json!("99999999999999999999"), None),
            (json!(true), None),
            (json!(null), None),
            (json!([1]), None),
        ];
        for (input, want) in cases {
            assert_eq!(id(input.clone()).ok(), *want, "{input}");
        }
    }

    #[test]
    fn refusals_use_the_dialects_wording() {
        let err = deserialize(json!("x"), "a message id (an integer)").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value: string \"x\", expected a message id (an integer)"
        );
        let err = id(json!(u64::MAX)).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }
}
