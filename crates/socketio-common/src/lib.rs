//! What the Socket.IO dialects share.
//!
//! Socket.IO itself — Engine.IO polling, the upgrade to WebSocket, heartbeats,
//! namespaces, acks — is socketioxide's job. This crate is the thin layer between it and
//! the chat domain, written once so each dialect crate only translates:
//!
//! - [`serve()`] builds the socketioxide service for one dialect at one path and
//!   namespace, with the gateway's payload limit and an outbound buffer as deep as the
//!   hub's queue, and hands it to the router as an [`http::SocketIoMount`];
//! - at connect time the dialect decides, from the handshake ([`Handshake`]: the
//!   `auth` payload, query and headers), whether to refuse (`connect_error`), accept, or
//!   accept only to say why and disconnect (a legacy server that answered a bad token
//!   with an event);
//! - every accepted socket gets **one worker task** ([`worker`]) that owns its session
//!   and handles, one at a time, the client's events (in the order they arrived) and
//!   the events the hub queued for the socket's user. That one task is why a client's
//!   two quick `send-message`s are stored in the order they were sent, why replies come
//!   back in request order, and why a slow client is cut off by the hub's kill switch
//!   rather than growing a queue;
//! - [`WireError`] is the one error shape both dialects use, in acks and in `error`
//!   events.
//!
//! socketioxide runs each event handler as its own task, which would let two events of
//! one socket overtake each other. So no per-event handler is registered: a fallback
//! handler's argument extractor ([`inbox::Enqueued`]) runs synchronously, in arrival
//! order, inside socketioxide's receive path, and only moves the event into the
//! socket's bounded inbox. The worker drains it.

pub mod error;
pub mod fuzz;
pub mod http;
pub mod inbox;
pub mod mount;
pub mod outbox;
pub mod worker;

#[cfg(feature = "test-client")]
pub mod harness;
#[cfg(feature = "test-client")]
pub mod node;

pub use error::WireError;
pub use inbox::Request;
pub use mount::{mount, serve, Handshake, MountOptions, Opening, SioDialect};

/// Client events that may wait for a socket's worker before more are refused.
pub const INBOX: usize = 64;
pub use worker::{SioCtx, SioSession};

/// socketioxide's service type as the gateway mounts it: Engine.IO requests go to
/// socketioxide, anything else under the mount path gets [`mount::NotSocketIo`]'s 404.
pub type SioService = socketioxide::service::SocketIoService<mount::NotSocketIo>;
