//! Tokens as a client sees them: the bearer header that carries one, and the claims
//! read back without checking the signature.
//!
//! Invariant: nothing here trusts a token. Mechanism: the payload segment is decoded
//! and parsed, never verified, and every failure is `None`. Consequence: a caller may
//! learn whom a token names (to address that user) but must not take it as proof.

use serde_json::{Map, Value};

/// `Authorization: Bearer <token>`, the carrier every token-in-handshake dialect accepts.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// The `user_id` claim of a JWT, read without checking the signature (the caller
/// only needs to know who a token names, e.g. to address that user in a request).
/// Integers and numeric strings are accepted.
pub fn jwt_user_id(token: &str) -> Option<i64> {
    let claims = jwt_claims(token)?;
    match claims.get("user_id")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The claims of a JWT, unverified; `None` when the token is not a JWT.
pub fn jwt_claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_id_claims() {
        // {"alg":"HS256"} . {"user_id":42,"username":"ann"} . sig
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo0MiwidXNlcm5hbWUiOiJhbm4ifQ.x";
        assert_eq!(jwt_user_id(t), Some(42));
        assert_eq!(jwt_claims(t).unwrap()["username"], "ann");
        assert_eq!(jwt_user_id("not-a-jwt"), None);
    }
}
