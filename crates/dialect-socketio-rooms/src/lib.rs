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

pub mod fuzz;
pub mod session;
pub mod wire;

pub use session::{RoomsDialect, NAME};

use chat_core::{ChatService, RenderSlot};
use dialect_kit::{Descriptor, HttpMount, MountParams, Sample, Transport, TrustedMode, TryIt};
use std::sync::{Arc, LazyLock};

/// The namespace of this dialect.
pub const NAMESPACE: &str = "/";

/// Where the dialect is mounted unless configured otherwise.
pub const DEFAULT_PATH: &str = "/socket.io/";

/// The dialect as the gateway mounts it.
pub const DESCRIPTORS: &[Descriptor] =
    &[
        Descriptor::http(NAME, &[DEFAULT_PATH], serve, fuzz::TARGETS)
            .with_trusted_mode(TrustedMode {
            flag: "socketio-rooms-trusted",
            help:
                "Serve socketio-rooms without tokens, trusting the ids in request bodies (only for \
               a deployment behind a trusted network; any request with an Origin header is \
               refused while it is on)",
        })
        .with_try_it(TryIt {
            transport: Transport::SocketIo {
                namespace: NAMESPACE,
            },
            samples: &[
                Sample {
                    label: "list chats",
                    frame: r#"["list-chats", {}]"#,
                },
                Sample {
                    label: "send a message",
                    frame: r#"["new-message", {"chat": {"id": "{{room}}"}, "message": {"value": "hello from the console", "type": "text"}}]"#,
                },
            ],
        }),
    ];

/// This dialect's place in every event's render cache.
static SLOT: LazyLock<RenderSlot> = LazyLock::new(RenderSlot::claim);

/// The socketioxide service at `params.path`, namespace [`NAMESPACE`].
pub fn serve(service: Arc<ChatService>, params: MountParams) -> Arc<dyn HttpMount> {
    if params.trusted {
        tracing::warn!(
            path = %params.path,
            "socketio-rooms runs in TRUSTED mode (--socketio-rooms-trusted): no token is required \
             and any client can act as any user named in a request body; use it only behind a \
             trusted network"
        );
    }
    let dialect = RoomsDialect {
        trusted: params.trusted,
    };
    socketio_common::serve(service, dialect, NAMESPACE, params)
}
