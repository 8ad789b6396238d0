//! [`ChatError`] → the text of `{"error": …}`.
//!
//! The legacy protocol has one error shape and no error codes, so the text is all a
//! client developer gets: it names the event that failed and says what to change.
//! Core decides *whether* something is allowed; this only words its answer.

use chat_core::typing::TYPING_FLOOD_PER_SEC;
use chat_core::ChatError;

/// The error message for a request `event` that core refused.
pub fn describe(event: &str, e: &ChatError) -> String {
    let what = match e {
        ChatError::NotFound { what: "chat" } => "chat not found, or you are not a member of it".to_string(),
        ChatError::NotFound { what: "project chat" } => {
            "project chat not found: no chat exists for this project id".to_string()
        }
        ChatError::NotFound { what: "group chat" } => {
            "group chat not found: no group chat with this id, or you are not a member of it".to_string()
        }
        ChatError::NotFound { what: "message" } => "message not found in this chat".to_string(),
        ChatError::NotFound { what: "user" } => {
            "user not found: the other user of this direct chat does not exist".to_string()
        }
        ChatError::NotFound { what } => format!("{what} not found"),
        ChatError::Forbidden(reason) => format!("not allowed: {reason}"),
        // Core calls the message body `text`; this protocol calls it `message`.
        ChatError::Invalid { field, reason } if field == "text" => format!("`message`: {reason}"),
        ChatError::Invalid { field, reason } => format!("`{field}`: {reason}"),
        ChatError::TooLarge {
            what: "text",
            size,
            limit,
        } => format!("`message` is too long ({size} characters, at most {limit} allowed)"),
        ChatError::TooLarge { what, size, limit } => {
            format!("the {what} is too large ({size} bytes, at most {limit} allowed)")
        }
        ChatError::QuotaExceeded { .. } => e.to_string(),
        ChatError::RateLimited { what: "typing" } => format!(
            "too many {event} events; send at most {TYPING_FLOOD_PER_SEC} per second (one per second is enough to keep the indicator on)"
        ),
        ChatError::RateLimited { .. } => {
            format!("too many {event} events; slow down (see the server's --user-rate)")
        }
        ChatError::Storage(detail) => {
            tracing::warn!(%event, %detail, "type-content: storage error");
            "the server could not save this right now; nothing was changed, try again".to_string()
        }
        ChatError::Unauthenticated(e) => format!("authentication failed: {e}"),
        ChatError::DuplicateRoom { .. } | ChatError::Conflict(_) => e.to_string(),
    };
    format!("{event}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_event_and_the_problem() {
        assert_eq!(
            describe("delete_message", &ChatError::not_found("message")),
            "delete_message: message not found in this chat"
        );
        assert_eq!(
            describe("new_message", &ChatError::not_found("chat")),
            "new_message: chat not found, or you are not a member of it"
        );
        assert_eq!(
            describe(
                "new_message",
                &ChatError::invalid("reply_to", "message 5 is not a message of this chat")
            ),
            "new_message: `reply_to`: message 5 is not a message of this chat"
        );
        assert_eq!(
            describe(
                "delete_message",
                &ChatError::forbidden("only the author or an admin may delete a message")
            ),
            "delete_message: not allowed: only the author or an admin may delete a message"
        );
        assert!(
            describe("user_typing", &ChatError::RateLimited { what: "typing" })
                .starts_with("user_typing: too many user_typing events")
        );
        assert_eq!(
            describe(
                "new_message",
                &ChatError::TooLarge {
                    what: "text",
                    size: 20,
                    limit: 10
                }
            ),
            "new_message: `message` is too long (20 characters, at most 10 allowed)"
        );
        let m = describe(
            "new_message",
            &ChatError::Storage("disk I/O error at /var/db".into()),
        );
        assert!(
            !m.contains("/var/db"),
            "internal details stay in the log: {m}"
        );
        assert_eq!(
            describe("x", &ChatError::not_found("thing")),
            "x: thing not found"
        );
    }
}
