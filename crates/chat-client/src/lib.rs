//! Wire-level clients for the five chat dialects served by chat-gateway (and by the
//! legacy backends they came from).
//!
//! Why a crate of its own: the conformance runner and the load generator both need to
//! speak the dialects exactly as an old client would — nothing more — and both must
//! work against a legacy backend as well as against the gateway. So this crate knows
//! only the wire: it has no dependency on the gateway's crates, no serde derives and
//! no policy. It is meant to be cheap per message (a frame is sent as the `String` it
//! was built in and received as the `String` the WebSocket layer produced), because a
//! load generator sends many of them.
//!
//! - [`ws::WsConn`]: one plain WebSocket carrying JSON text frames (the three
//!   dialects that are not Socket.IO).
//! - [`socketio::SioClient`]: Engine.IO v4 / Socket.IO v5 over the websocket transport
//!   only (no long-polling), one namespace per client: events, acks, pings.
//! - [`dialects`]: the catalogue — [`Dialect`] (names, paths, token carriers,
//!   namespaces) and each dialect's client frames, so callers neither repeat the
//!   envelope shapes nor name a dialect themselves.
//! - [`jwt`]: the bearer header and the unverified claims of a token.
//!
//! Every network read takes a timeout and every failure is an [`Error`] value: a
//! misbehaving server must never panic the caller.

pub mod dialects;
pub mod jwt;
pub mod socketio;
pub mod ws;

use std::fmt;

pub use dialects::{Dialect, Ready, Target, TokenCarrier};
pub use socketio::{SioClient, SioPacket};
pub use ws::{Incoming, WsConn};

/// Everything that can go wrong talking to a server.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The URL or a header could not be turned into a request.
    BadRequest(String),
    /// The server answered the upgrade with this HTTP status instead of 101.
    Refused { status: u16, body: String },
    /// TCP or WebSocket failure.
    Transport(String),
    /// Nothing arrived in time.
    Timeout,
    /// The peer closed the connection (close code and reason, when it sent them).
    Closed(Option<(u16, String)>),
    /// The peer sent something the protocol does not allow (not JSON, a broken
    /// Engine.IO packet, ...).
    Protocol(String),
    /// A Socket.IO namespace connection was refused (`44` packet) with this payload.
    ConnectError(serde_json::Value),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadRequest(s) => write!(f, "bad request: {s}"),
            Error::Refused { status, body } => {
                write!(f, "upgrade refused with HTTP {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Error::Transport(s) => write!(f, "transport error: {s}"),
            Error::Timeout => write!(f, "timed out waiting for the server"),
            Error::Closed(Some((code, reason))) => {
                write!(f, "connection closed by the server ({code} {reason})")
            }
            Error::Closed(None) => write!(f, "connection closed by the server"),
            Error::Protocol(s) => write!(f, "protocol violation: {s}"),
            Error::ConnectError(v) => write!(f, "namespace connection refused: {v}"),
        }
    }
}

impl std::error::Error for Error {}
