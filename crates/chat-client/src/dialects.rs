//! Thin constructors for each dialect's client frames and connection settings.
//!
//! They only spell envelopes; they do not validate, so a caller can still build a
//! deliberately wrong frame by hand. Default paths are those of chat-gateway; a
//! legacy deployment may use others (take them from the caller's configuration).

use serde_json::{json, Map, Value};

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

/// method-args: `{method, access_token, args}` in, `{type, data}` out.
pub mod method_args {
    use super::*;

    pub const PATH: &str = "/ws/chat/";

    /// A method call; `token` goes in `access_token` when given.
    pub fn call(method: &str, token: Option<&str>, args: Value) -> Value {
        let mut m = Map::new();
        m.insert("method".into(), Value::from(method));
        if let Some(t) = token {
            m.insert("access_token".into(), Value::from(t));
        }
        m.insert("args".into(), args);
        Value::Object(m)
    }
}

/// type-content: `{type, content}` both ways, `{error}` for refusals.
pub mod type_content {
    use super::*;

    pub const PATH: &str = "/ws/chats/";

    /// A client event.
    pub fn event(kind: &str, content: Value) -> Value {
        json!({"type": kind, "content": content})
    }

    /// The `chat_id` of the direct chat of two users: `"<low>_<high>"`.
    pub fn direct_chat_id(a: i64, b: i64) -> String {
        format!("{}_{}", a.min(b), a.max(b))
    }

    /// A `new_message` event.
    pub fn new_message(
        chat_type: &str,
        chat_id: Value,
        text: &str,
        reply_to: Option<i64>,
    ) -> Value {
        event(
            "new_message",
            json!({"chat_type": chat_type, "chat_id": chat_id, "message": text, "reply_to": reply_to}),
        )
    }
}

/// action-request (djangochannelsrestframework): `{action, request_id, …}` in, the
/// envelope `{errors, data, action, response_status, request_id}` out.
pub mod action_request {
    use super::*;

    pub const PATH: &str = "/ws/dcrf/chat/";
    pub const ADMIN_PATH: &str = "/ws/admin-chat/";

    /// A request: `fields` (an object) plus `action` and `request_id`.
    pub fn request(action: &str, request_id: Value, fields: Value) -> Value {
        let mut m = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert("action".into(), Value::from(action));
        m.insert("request_id".into(), request_id);
        Value::Object(m)
    }
}

/// socketio-rooms: Socket.IO at `/socket.io/`, namespace `/`.
pub mod socketio_rooms {
    pub const PATH: &str = "/socket.io/";
    pub const NAMESPACE: &str = "/";
}

/// socketio-pubsub: Socket.IO at `/ws/`, namespace `/chat`, token in the handshake auth.
pub mod socketio_pubsub {
    pub const PATH: &str = "/ws/";
    pub const NAMESPACE: &str = "/chat";
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

    #[test]
    fn direct_ids_are_ordered() {
        assert_eq!(type_content::direct_chat_id(23, 12), "12_23");
    }
}
