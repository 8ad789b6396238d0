//! The `method-args` dialect: the WebSocket API of a Django Channels chat backend,
//! spoken over the shared chat domain.
//!
//! Clients send `{"method": …, "access_token": …, "args": {…, "event_response_key": …}}`
//! and receive `{"type": …, "data": {…}}`. The project's own description of the
//! protocol is `protocol-specs/method-args/README.md`.
//!
//! The crate is layered the way a frame travels, so each layer can be tested alone:
//!
//! - [`wire`]: the JSON shapes exactly as the protocol spells them, and the bridges
//!   from domain records to them;
//! - [`decode`]: text frame → typed request, never panicking, recovering the
//!   client's `event_response_key` even from a frame that is otherwise unusable;
//! - [`upload`]: inline base64 files → domain uploads;
//! - [`render`]: domain errors and events → outbound frames, per recipient role;
//! - [`session`]: the [`chat_core::WsDialect`] and the per-connection
//!   [`chat_core::Session`] the gateway's connection loop drives.
//!
//! There is no authorization logic here: the dialect translates, the core service
//! decides.

pub mod decode;
pub mod fuzz;
pub mod render;
pub mod session;
pub mod upload;
pub mod wire;

pub use session::{MethodArgs, MethodArgsSession, NAME};

use chat_core::RenderSlot;
use dialect_kit::{Descriptor, Sample, Transport, TryIt};
use std::sync::{Arc, LazyLock};

/// Where the dialect is mounted unless configured otherwise.
pub const DEFAULT_PATH: &str = "/ws/chat/";

/// The dialect as the gateway mounts it.
pub const DESCRIPTORS: &[Descriptor] = &[Descriptor::ws(
    NAME,
    &[DEFAULT_PATH],
    || Arc::new(MethodArgs),
    fuzz::TARGETS,
)
.with_try_it(TryIt {
    transport: Transport::WebSocket,
    samples: &[
        Sample {
            label: "sign in",
            frame: r#"{"method": "auth", "access_token": "{{token}}"}"#,
        },
        Sample {
            label: "send a message",
            frame: r#"{"method": "send_message", "args": {"chat": {{room}}, "text": "hello from the console"}, "event_response_key": 1}"#,
        },
        Sample {
            label: "create a chat",
            frame: r#"{"method": "create_chat", "args": {"users": [1], "title": "from the console"}, "event_response_key": 2}"#,
        },
    ],
})];

/// This dialect's place in every event's render cache.
static SLOT: LazyLock<RenderSlot> = LazyLock::new(RenderSlot::claim);
