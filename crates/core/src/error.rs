//! The one error type of the domain. Each dialect maps it to its own error shape at the
//! edge (an error event type, an HTTP-like status code, `{"error": …}`, an ack). Two
//! things every edge shares are here once: the stable [`ChatError::code`], and the
//! [`ChatError::public_message`] that keeps storage internals out of what clients see.

use crate::ids::RoomId;
use crate::store::StoreError;
use crate::TokenError;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChatError {
    /// No principal, or the token was refused.
    #[error("authentication failed: {0}")]
    Unauthenticated(#[from] TokenError),
    /// The principal may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or the principal may not know it exists.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A field is missing or has a bad value.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A direct or project room with that key exists already.
    #[error("the chat exists already (id {existing})")]
    DuplicateRoom { existing: RoomId },
    /// A user with that id, username or external id exists already.
    #[error("{0}")]
    Conflict(String),
    /// A payload is bigger than the configured limit.
    #[error("{what} is too large ({size} bytes, limit {limit})")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    /// The user's uploads would pass their total (`--max-upload-bytes-per-user`).
    #[error("upload quota exceeded: {used} of {limit} bytes already used by your uploads, this file is {size} bytes")]
    QuotaExceeded { used: u64, size: u64, limit: u64 },
    /// Too many requests of one kind in a short time.
    #[error("too many {what} events; slow down")]
    RateLimited { what: &'static str },
    /// The storage failed; the command was not applied.
    #[error("storage error: {0}")]
    Storage(String),
}

impl ChatError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ChatError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        ChatError::Forbidden(reason.into())
    }

    pub fn not_found(what: &'static str) -> Self {
        ChatError::NotFound { what }
    }

    /// The stable, machine-readable name of the error, the same at every edge that
    /// shows one: `unauthenticated`, `forbidden`, `not_found`, `invalid`, `conflict`,
    /// `too_large`, `quota_exceeded`, `rate_limited`, `server_error`.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::Unauthenticated(_) => "unauthenticated",
            ChatError::Forbidden(_) => "forbidden",
            ChatError::NotFound { .. } => "not_found",
            ChatError::Invalid { .. } => "invalid",
            ChatError::DuplicateRoom { .. } | ChatError::Conflict(_) => "conflict",
            ChatError::TooLarge { .. } => "too_large",
            ChatError::QuotaExceeded { .. } => "quota_exceeded",
            ChatError::RateLimited { .. } => "rate_limited",
            ChatError::Storage(_) => "server_error",
        }
    }

    /// Whether this is the server's own failure, whose detail (hosts, files, SQL) is
    /// logged and never sent.
    pub fn is_internal(&self) -> bool {
        matches!(self, ChatError::Storage(_))
    }

    /// What a client may be told: the error's own sentence, except for an internal
    /// failure, which gets [`STORAGE_FAILED`] (log the detail where it is caught).
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            STORAGE_FAILED.to_string()
        } else {
            self.to_string()
        }
    }
}

/// The client's sentence for a storage failure.
pub const STORAGE_FAILED: &str =
    "the server could not store or read this; nothing was changed, try again";

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ChatError::NotFound { what },
            StoreError::DuplicateRoom(existing) => ChatError::DuplicateRoom { existing },
            StoreError::Conflict(what) => ChatError::Conflict(what),
            StoreError::QuotaExceeded { used, size, limit } => ChatError::QuotaExceeded {
                used: used.max(0) as u64,
                size: size.max(0) as u64,
                limit: limit.max(0) as u64,
            },
            StoreError::Backend(msg) => ChatError::Storage(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_public_messages() {
        let cases = [
            (
                ChatError::Unauthenticated(TokenError::Missing),
                "unauthenticated",
            ),
            (ChatError::forbidden("no"), "forbidden"),
            (ChatError::not_found("chat"), "not_found"),
            (ChatError::invalid("text", "empty"), "invalid"),
            (
                ChatError::DuplicateRoom {
                    existing: RoomId(3),
                },
                "conflict",
            ),
            (ChatError::Conflict("taken".into()), "conflict"),
            (
                ChatError::TooLarge {
                    what: "text",
                    size: 2,
                    limit: 1,
                },
                "too_large",
            ),
            (
                ChatError::QuotaExceeded {
                    used: 1,
                    size: 2,
                    limit: 2,
                },
                "quota_exceeded",
            ),
            (ChatError::RateLimited { what: "send" }, "rate_limited"),
            (
                ChatError::Storage("pg at 10.0.0.5 said no".into()),
                "server_error",
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err:?}");
            let shown = err.public_message();
            if err.is_internal() {
                assert_eq!(shown, STORAGE_FAILED);
                assert!(!shown.contains("10.0.0.5"));
            } else {
                assert_eq!(shown, err.to_string());
            }
        }
    }
}
