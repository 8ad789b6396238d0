//! One scenario per dialect. Each is a legacy client's walk through its spec:
//! connect the users, then run cases in an order where later cases build on what
//! earlier ones created (a chat, a message id). A case that cannot run because an
//! earlier one failed is skipped, not failed, so one bug shows up once.

pub mod action_request;
pub mod method_args;
pub mod socketio_pubsub;
pub mod socketio_rooms;
pub mod type_content;

use serde_json::Value;

/// `v[key]` as an integer (pointer syntax: `/data/chat/id`).
pub(crate) fn int(v: &Value, pointer: &str) -> Result<i64, String> {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("no integer at {pointer} in {}", crate::peer::show(v)))
}

/// Fail with `why` unless `ok`.
pub(crate) fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

/// A fresh text that no earlier run used, so a case finds its own message even on a
/// server with history.
pub(crate) fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("conformance {what} {nanos:x}")
}
