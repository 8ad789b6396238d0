//! The reply envelope checks both suites share (sessions driven directly and over
//! sockets).
//!
//! Invariant: a success carries `errors: []`, the request's `action`, its status and
//! its `request_id`; a refusal carries its status and `data: null`. Mechanism: each
//! check asserts every one of those fields and hands back the part the test goes on
//! to look at. Consequence: a test never forgets an envelope field, and both suites
//! hold the dialect to the same envelope.

use serde_json::{json, Value};

/// Assert a successful reply to `action` with `status` and `request_id`; its `data`.
pub fn ok(frame: &Value, action: &str, status: u16, request_id: Value) -> Value {
    assert_eq!(frame["errors"], json!([]), "{frame}");
    assert_eq!(frame["action"], json!(action), "{frame}");
    assert_eq!(frame["response_status"], json!(status), "{frame}");
    assert_eq!(frame["request_id"], request_id, "{frame}");
    frame["data"].clone()
}

/// Assert a refusal with `status`; its `errors`.
pub fn err(frame: &Value, status: u16) -> Value {
    assert_eq!(frame["response_status"], json!(status), "{frame}");
    assert_eq!(frame["data"], Value::Null, "{frame}");
    frame["errors"].clone()
}
