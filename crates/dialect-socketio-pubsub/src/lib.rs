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

pub mod fuzz;
pub mod media;
pub mod session;
pub mod wire;

pub use session::{PubsubDialect, NAME};

use chat_core::{ChatService, RenderSlot};
use dialect_kit::{Descriptor, HttpMount, MountParams, Sample, Transport, TryIt};
use std::sync::{Arc, LazyLock};

/// The namespace of this dialect.
pub const NAMESPACE: &str = "/chat";

/// Where the dialect is mounted unless configured otherwise. A prefix mount: exact
/// WebSocket paths below it (`/ws/chat/`, `/ws/chats/`) keep their own dialects.
pub const DEFAULT_PATH: &str = "/ws/";

/// The dialect as the gateway mounts it.
pub const DESCRIPTORS: &[Descriptor] =
    &[
        Descriptor::http(NAME, &[DEFAULT_PATH], serve, fuzz::TARGETS).with_try_it(TryIt {
            transport: Transport::SocketIo {
                namespace: NAMESPACE,
            },
            samples: &[
                Sample {
                    label: "list users",
                    frame: r#"["fetch-users", {}]"#,
                },
                Sample {
                    label: "send a direct message",
                    frame: r#"["send-message", {"user": "<a username>", "message": "hello from the console"}]"#,
                },
            ],
        }),
    ];

/// This dialect's place in every event's render cache.
static SLOT: LazyLock<RenderSlot> = LazyLock::new(RenderSlot::claim);

/// The socketioxide service at `params.path`, namespace [`NAMESPACE`].
pub fn serve(service: Arc<ChatService>, params: MountParams) -> Arc<dyn HttpMount> {
    socketio_common::serve(service, PubsubDialect::default(), NAMESPACE, params)
}
