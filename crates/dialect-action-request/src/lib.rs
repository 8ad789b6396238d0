//! The `action-request` dialect: the WebSocket API of a djangochannelsrestframework
//! (DCRF) chat backend, with a user endpoint and an admin endpoint.
//!
//! Clients send `{"action": …, "request_id": …, …fields}` and get back the DRF-style
//! envelope `{"errors", "data", "action", "response_status", "request_id"}`. A
//! connection joins one room at a time; messages are created, edited and deleted in
//! the joined room, and the resulting frame — carrying the sender's `request_id` — goes
//! to every connection joined to that room. The admin endpoint lets admins view any
//! room and write only in rooms with a business plan.
//!
//! The crate is a translator in four layers, after tokio's mini-redis:
//!
//! - [`wire`]: the frames exactly as the legacy clients spell them (serde);
//! - [`decode`]: a text frame into a typed [`decode::Command`], or a DRF error reply;
//! - [`session`]: the per-connection state (the joined room) and the thin handlers that
//!   call [`chat_core::ChatService`];
//! - [`render`]: results, domain errors and hub events into envelopes.
//!
//! Sockets, queues and timers are the gateway's; authorization is core's policy. The
//! only decisions made here are the ones the wire forces: which statuses and messages a
//! DCRF client expects, and which events it has a word for. See
//! `protocol-specs/action-request/README.md` for the protocol as served.

pub mod decode;
pub mod fuzz;
pub mod render;
pub mod session;
pub mod wire;

use chat_core::{Handshake, Refusal, RenderSlot, Session, TokenError, WsDialect};
use dialect_kit::{Descriptor, Sample, Transport, TryIt};
pub use session::ActionSession;
use std::sync::{Arc, LazyLock};

/// The dialect's name as an origin of domain commands (correlation tags are kept per
/// dialect; both endpoints share it so that their `request_id`s travel between them).
pub const DIALECT: &str = "action-request";
/// The name of the admin endpoint.
pub const ADMIN_NAME: &str = "action-request-admin";
/// The default mount of the user endpoint.
pub const USER_PATH: &str = "/ws/dcrf/chat/";
/// The default mount of the admin endpoint.
pub const ADMIN_PATH: &str = "/ws/admin-chat/";

/// The two endpoints as the gateway mounts them.
pub const DESCRIPTORS: &[Descriptor] = &[
    Descriptor::ws(
        DIALECT,
        &[USER_PATH],
        || Arc::new(ActionRequest::user()),
        fuzz::TARGETS,
    )
    .with_try_it(TRY_IT),
    Descriptor::ws(
        ADMIN_NAME,
        &[ADMIN_PATH],
        || Arc::new(ActionRequest::admin()),
        &[],
    )
    .with_try_it(TRY_IT),
];

/// The console's frames for both endpoints.
const TRY_IT: TryIt = TryIt {
    transport: Transport::WebSocket,
    samples: &[
        Sample {
            label: "list rooms",
            frame: r#"{"action": "list", "request_id": 1}"#,
        },
        Sample {
            label: "join a room",
            frame: r#"{"action": "join_room", "room_pk": {{room}}, "request_id": 2}"#,
        },
        Sample {
            label: "send a message (after joining)",
            frame: r#"{"action": "create_message", "msg_text": "hello from the console", "request_id": 3}"#,
        },
    ],
};

/// The dialect's place in every event's render cache (both endpoints render alike).
static SLOT: LazyLock<RenderSlot> = LazyLock::new(RenderSlot::claim);

/// Which of the two endpoints a connection came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The ordinary chat: members of a room see and write in it.
    User,
    /// The admin chat: admins view any room and write where the room has a business
    /// plan. Has no `current_room_info`.
    Admin,
}

impl Endpoint {
    /// Whether the endpoint has `action` (one of [`wire::actions::ALL`]).
    pub fn offers(self, action: &str) -> bool {
        !(self == Endpoint::Admin && action == wire::actions::CURRENT_ROOM_INFO)
    }
}

/// The dialect, mounted once per endpoint.
#[derive(Clone, Debug)]
pub struct ActionRequest {
    endpoint: Endpoint,
}

impl ActionRequest {
    /// The user endpoint (`action-request`, default path [`USER_PATH`]).
    pub fn user() -> Self {
        ActionRequest {
            endpoint: Endpoint::User,
        }
    }

    /// The admin endpoint (`action-request-admin`, default path [`ADMIN_PATH`]).
    pub fn admin() -> Self {
        ActionRequest {
            endpoint: Endpoint::Admin,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The path this endpoint is mounted at unless configured otherwise.
    pub fn default_path(&self) -> &'static str {
        match self.endpoint {
            Endpoint::User => USER_PATH,
            Endpoint::Admin => ADMIN_PATH,
        }
    }
}

impl WsDialect for ActionRequest {
    fn name(&self) -> &'static str {
        match self.endpoint {
            Endpoint::User => DIALECT,
            Endpoint::Admin => ADMIN_NAME,
        }
    }

    /// Channels refuses a WebSocket during the handshake, which its servers turn into
    /// HTTP 403; so does this: no valid token, a refused Origin, or (admin endpoint) a
    /// principal who is not an admin.
    fn accept(&self, hs: &Handshake) -> Result<Box<dyn Session>, Refusal> {
        if let Some(e) = &hs.token_error {
            return Err(Refusal::forbidden(format!("token refused: {e}")));
        }
        let Some(principal) = hs.principal.clone() else {
            return Err(Refusal::forbidden(format!(
                "token refused: {}",
                TokenError::Missing
            )));
        };
        if !hs.origin_allowed {
            return Err(Refusal::forbidden(if hs.origin_present {
                "origin not allowed"
            } else {
                "an Origin header is required"
            }));
        }
        let principal = match self.endpoint {
            Endpoint::User => principal,
            Endpoint::Admin if principal.is_admin => chat_core::Principal {
                moderator: true,
                ..principal
            },
            Endpoint::Admin => return Err(Refusal::forbidden("the admin chat requires an admin")),
        };
        Ok(Box::new(ActionSession::new(self.endpoint, principal)))
    }

    /// `Bearer` when offered (the token carrier `Sec-WebSocket-Protocol: Bearer, <token>`);
    /// else `chat` on the user endpoint and `admin-chat` on the admin endpoint, the
    /// subprotocols later versions of the original backend required.
    fn subprotocol(&self, offered: &[&str]) -> Option<&'static str> {
        let has = |p: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(p));
        if has("bearer") {
            return Some("Bearer");
        }
        match self.endpoint {
            Endpoint::User if has("chat") => Some("chat"),
            Endpoint::Admin if has("admin-chat") => Some("admin-chat"),
            _ => None,
        }
    }
}
