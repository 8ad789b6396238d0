//! The `socketio-rooms` dialect: the Socket.IO API of a legacy chat server whose
//! clients create users and chats themselves and exchange `new-message` events.
//!
//! Five events, each answered with an event of the same name (and through the ack
//! when the client passed one): `create-user`, `create-chat`, `list-chats`,
//! `list-messages`, `new-message`. Messages sent from any dialect to a chat reach its
//! socketio-rooms members as `new-message`. The project's description of the protocol
//! is `protocol-specs/socketio-rooms/README.md`.
//!
//! - [`wire`]: the payloads exactly as the protocol spells them, and the bridges from
//!   domain records to them;
//! - [`session`]: the connect decision (token, or the trusted mode) and the
//!   per-socket session: decode → call the chat service → encode.
//!
//! Who may do what is decided by the core service; the only check here is the one the
//! protocol's shape makes necessary: ids in a body must be the caller's own.

pub mod session;
pub mod wire;

pub use session::{RoomsDialect, NAME};

use chat_core::ChatService;
use socketio_common::{MountOptions, Params, SioService};
use std::sync::Arc;

/// The namespace of this dialect.
pub const NAMESPACE: &str = "/";

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
    let dialect = Arc::new(RoomsDialect {
        trusted: params.trusted,
    });
    socketio_common::mount(service, dialect, opts)
}
