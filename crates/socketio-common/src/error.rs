//! The one error shape of every Socket.IO dialect.
//!
//! No legacy spec says how a failure looks, so the gateway picks one shape that a
//! JavaScript client can test with `if (res.error)`: a stable machine-readable code, a
//! sentence for people, and the event that failed. It travels in the ack when the
//! client asked for one, and as an `error` event otherwise (a dialect whose replies
//! are events too sends the event in both cases).

use chat_core::ChatError;
use serde::Serialize;

/// `{"error": "<code>", "message": "<why>", "event": "<event name>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WireError {
    /// One of: `invalid`, `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `too_large`, `rate_limited`, `unknown_event`, `slow_consumer`, `server_error`.
    pub error: &'static str,
    pub message: String,
    /// The client event this answers; empty for errors not caused by one.
    pub event: String,
}

impl WireError {
    pub fn new(code: &'static str, event: &str, message: impl Into<String>) -> Self {
        WireError {
            error: code,
            message: message.into(),
            event: event.to_string(),
        }
    }

    /// A payload that does not have the event's shape.
    pub fn invalid(event: &str, message: impl Into<String>) -> Self {
        Self::new("invalid", event, message)
    }

    /// A domain error, with the domain's own sentence. Storage failures are logged
    /// here and shown to the client without internals.
    pub fn from_chat(event: &str, err: &ChatError) -> Self {
        if err.is_internal() {
            tracing::error!(event, error = %err, "a Socket.IO request failed in storage");
        }
        Self::new(err.code(), event, err.public_message())
    }

    /// An event name the dialect does not know.
    pub fn unknown_event(event: &str, known: &[&str]) -> Self {
        Self::new(
            "unknown_event",
            event,
            format!(
                "`{event}` is not an event of this API; known events: {}",
                known.join(", ")
            ),
        )
    }
}

/// What an event handler answers: a JSON payload, or the error shape.
pub type Reply = Result<serde_json::Value, WireError>;

/// Decode an event's payload, which both dialects require to be a JSON object.
pub fn decode<T: serde::de::DeserializeOwned>(
    event: &str,
    payload: &serde_json::Value,
) -> Result<T, WireError> {
    if !payload.is_object() {
        return Err(WireError::invalid(
            event,
            format!(
                "the payload of `{event}` must be a JSON object, not {}",
                dialect_kit::json::kind(payload)
            ),
        ));
    }
    serde_json::from_value(payload.clone())
        .map_err(|e| WireError::invalid(event, format!("bad `{event}` payload: {e}")))
}

/// A reply payload as JSON.
pub fn json_of<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Map a domain error of `event` to the wire shape.
pub fn chat_err(event: &str) -> impl Fn(ChatError) -> WireError + '_ {
    move |e| WireError::from_chat(event, &e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_keep_their_sentence_and_hide_storage_details() {
        let e = WireError::from_chat("some-event", &ChatError::not_found("user"));
        assert_eq!(e.error, "not_found");
        assert_eq!(e.message, "user not found");
        assert_eq!(e.event, "some-event");
        let e = WireError::from_chat(
            "x",
            &ChatError::Storage("pool timed out at 10.0.0.1".into()),
        );
        assert_eq!(e.error, "server_error");
        assert!(!e.message.contains("10.0.0.1"));
        let v = serde_json::to_value(WireError::invalid("a", "b")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "invalid", "message": "b", "event": "a"})
        );
    }
}
