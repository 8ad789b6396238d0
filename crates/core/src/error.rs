//! The one error type of the domain. Each dialect maps it to its own error shape at the
//! edge (method-args `error` types, DRF status codes, `{"error": …}`, Socket.IO acks).

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
}

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
