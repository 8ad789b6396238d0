//! The chat domain shared by every dialect.
//!
//! Data flows one way: a dialect decodes a client frame and calls the matching method
//! of the [`ChatService`], which authorizes the request ([`policy`]), commits it
//! through the [`Store`] and then publishes an [`Event`] on the [`Hub`]. The hub
//! pushes the event into the bounded queue of every connection of every recipient,
//! where the connection's dialect renders it in its own wire shape.
//!
//! Nothing in this crate knows JSON wire shapes or SQL: those live in the dialect crates
//! and in `chat-store`. Keeping the domain free of both is what lets five dialects share
//! one set of rooms and messages.

pub mod auth;
mod cache;
pub mod cluster;
pub mod error;
pub mod event;
pub mod files;
pub mod hub;
pub mod ids;
pub mod meter;
pub mod model;
pub mod policy;
pub mod service;
pub mod session;
pub mod store;
pub mod throttle;
pub mod typing;
pub mod unread;

pub use auth::{Claims, Principal, Subject, TokenError, TokenVerifier};
pub use error::ChatError;
pub use event::{Event, Origin, Published, RenderSlot};
pub use files::FileStore;
pub use hub::{Hub, Subscription};
pub use ids::{AttachmentId, ConnId, MessageId, RoomId, UserId};
pub use model::*;
pub use service::{
    ChatService, CreateRoom, QueuedMessage, RoomRef, RoomShape, SendMessage, ServiceConfig, Upload,
};
pub use session::{ConnCtx, Handshake, Outgoing, Refusal, Reply, Session, WsDialect};
pub use store::{Store, StoreError};

/// Result type of the chat domain.
pub type Result<T, E = ChatError> = std::result::Result<T, E>;
