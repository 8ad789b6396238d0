//! The `socketio-pubsub` dialect: the Socket.IO API of a Node messenger in which two
//! users, named by their usernames, exchange "chats" (single messages).
//!
//! Clients connect with socket.io-client to path `/ws`, namespace `/chat`, with
//! `auth: {token}`. Requests are events answered through their ack (`fetch-users`,
//! `fetch-conversation-with-user`, `fetch-unread-chats-count`, `read-chat`,
//! `send-message`, `wait-for-user`, `stop-waiting-for-user`); the server pushes
//! `chat`, `unread-chats-count`, `read-chat`, `user-join`, `user-leave`,
//! `user-online`, `user-offline`, and `auth-failed` before disconnecting a bad token.
//! A conversation is the direct room of two users, shared with every other dialect.
//! The project's description of the protocol is
//! `protocol-specs/socketio-pubsub/README.md`.
//!
//! - [`wire`]: the payloads as the protocol spells them, and the bridges from domain
//!   records to them;
//! - [`media`]: attachment URLs of this gateway back to attachment ids;
//! - [`session`]: the connect decision and the per-socket session.

pub mod media;
pub mod session;
pub mod wire;

pub use session::{PubsubDialect, NAME};

use chat_core::ChatService;
use socketio_common::{MountOptions, Params, SioService};
use std::sync::Arc;

/// The namespace of this dialect.
pub const NAMESPACE: &str = "/chat";

/// Build the socketioxide service the gateway mounts at `params.path`.
pub fn mount(service: Arc<ChatService>, params: Params) -> (SioService, socketioxide::SocketIo) {
    let opts = MountOptions {
        path: params.path.clone(),
        namespace: NAMESPACE,
        max_payload: params.max_payload,
        outbound_buffer: service.config().outbound_queue,
        inbox: socketio_common::INBOX,
        connect_timeout: params.connect_timeout,
    };
    socketio_common::mount(service, Arc::new(PubsubDialect::default()), opts)
}
