//! The `type-content` dialect: the WebSocket API of a legacy Django Channels
//! `ChatsConsumer`, served at `/ws/chats/` by default.
//!
//! Frames are `{"type": <event>, "content": {...}}` in both directions and errors are
//! `{"error": "<message>"}`. Chats are named by `chat_type` and `chat_id`: a direct chat
//! by `"<low>_<high>"` (its two user ids, smaller first), a project chat by its project
//! id. The handshake must carry a valid access token; without one the upgrade is refused
//! with HTTP 403, as the original backend did. The protocol as served is specified in
//! `protocol-specs/type-content/README.md`.
//!
//! The crate is a translator, in the layering of tokio's mini-redis:
//!
//! * [`wire`] — serde types, exactly the JSON the spec spells, separate from the domain;
//! * [`decode`] — text frame → [`decode::Request`] (typed, in domain ids), or an error
//!   that names the event and field;
//! * [`session`] — one connection: a request becomes one [`chat_core::ChatService`]
//!   call; core authorizes, commits and publishes;
//! * [`encode`] — a published [`chat_core::Event`] → zero or more frames;
//! * [`error`] — a [`chat_core::ChatError`] → the text of `{"error": …}`.
//!
//! It owns no socket, queue or timer: the gateway's connection loop drives a
//! [`session::TypeContentSession`] through the [`chat_core::Session`] trait, so all of
//! this is testable without a network.

pub mod decode;
pub mod encode;
pub mod error;
pub mod fuzz;
pub mod session;
pub mod wire;

#[cfg(test)]
mod tests;

use chat_core::{Handshake, Refusal, RenderSlot, Session, WsDialect};
use dialect_kit::{Descriptor, Sample, Transport, TryIt};
use std::sync::{Arc, LazyLock};

/// The dialect's CLI name, also used as the origin of its commands.
pub const NAME: &str = "type-content";

/// Where the dialect is mounted unless configured otherwise.
pub const DEFAULT_PATH: &str = "/ws/chats/";

/// The dialect as the gateway mounts it.
pub const DESCRIPTORS: &[Descriptor] = &[Descriptor::ws(
    NAME,
    &[DEFAULT_PATH],
    || Arc::new(TypeContent),
    fuzz::TARGETS,
)
.with_try_it(TryIt {
    transport: Transport::WebSocket,
    samples: &[
        Sample {
            label: "send to a project chat",
            frame: r#"{"type": "new_message", "content": {"chat_type": "project", "chat_id": 1, "message": "hello from the console", "reply_to": null}}"#,
        },
        Sample {
            label: "typing",
            frame: r#"{"type": "user_typing", "content": {"chat_type": "project", "chat_id": 1}}"#,
        },
    ],
})];

/// This dialect's place in every event's render cache.
static SLOT: LazyLock<RenderSlot> = LazyLock::new(RenderSlot::claim);

/// The type-content dialect, to mount on the gateway.
#[derive(Clone, Copy, Debug, Default)]
pub struct TypeContent;

impl TypeContent {
    pub fn new() -> Self {
        TypeContent
    }
}

impl WsDialect for TypeContent {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A valid token in any handshake carrier signs the connection in; anything else
    /// is refused before the upgrade with 403, as the legacy backend did.
    fn accept(&self, hs: &Handshake) -> Result<Box<dyn Session>, Refusal> {
        match &hs.principal {
            Some(principal) => Ok(Box::new(session::TypeContentSession::new(
                principal.clone(),
            ))),
            None => Err(Refusal::forbidden(match &hs.token_error {
                Some(e) => format!("{e}"),
                None => "an access token is required: send \"Authorization: Bearer <token>\", \
                         \"?token=<token>\" or \"Sec-WebSocket-Protocol: Bearer, <token>\""
                    .to_string(),
            })),
        }
    }
}
