//! A dialect as the gateway sees it: a name, default paths, and how to serve it.

use crate::fuzz::FuzzTarget;
use crate::http::HttpMount;
use chat_core::{ChatService, WsDialect};
use std::sync::Arc;
use std::time::Duration;

/// Everything the gateway needs to mount a dialect. A dialect crate exports one per
/// endpoint it offers (a dialect with a user and an admin endpoint exports two).
#[derive(Clone, Copy, Debug)]
pub struct Descriptor {
    /// The name used by `--dialects`, `--mount NAME=…`, logs and metrics.
    pub name: &'static str,
    /// Where it is mounted on the main listener unless `--mount` says otherwise.
    pub default_paths: &'static [&'static str],
    /// How it is served.
    pub serve: Serve,
    /// Whether it can run without tokens (a trusted legacy deployment), and the flag
    /// that turns that on.
    pub trusted_mode: Option<TrustedMode>,
    /// Its decoders, for the fuzzer: every path raw client bytes take into the dialect.
    pub fuzz: &'static [FuzzTarget],
    /// How the console's "try it" pane talks to it (none: not offered there).
    pub try_it: Option<TryIt>,
}

impl Descriptor {
    /// A plain-WebSocket dialect at `default_paths`, with no trusted mode.
    pub const fn ws(
        name: &'static str,
        default_paths: &'static [&'static str],
        make: fn() -> Arc<dyn WsDialect>,
        fuzz: &'static [FuzzTarget],
    ) -> Self {
        Descriptor {
            name,
            default_paths,
            serve: Serve::Ws(make),
            trusted_mode: None,
            fuzz,
            try_it: None,
        }
    }

    /// A dialect that serves HTTP itself under `default_paths`, with no trusted mode.
    pub const fn http(
        name: &'static str,
        default_paths: &'static [&'static str],
        serve: fn(Arc<ChatService>, MountParams) -> Arc<dyn HttpMount>,
        fuzz: &'static [FuzzTarget],
    ) -> Self {
        Descriptor {
            name,
            default_paths,
            serve: Serve::Http(serve),
            trusted_mode: None,
            fuzz,
            try_it: None,
        }
    }

    /// The same dialect offered in the console's "try it" pane.
    pub const fn with_try_it(mut self, try_it: TryIt) -> Self {
        self.try_it = Some(try_it);
        self
    }

    /// The same dialect with a trusted mode.
    pub const fn with_trusted_mode(mut self, mode: TrustedMode) -> Self {
        self.trusted_mode = Some(mode);
        self
    }
}

/// How a dialect is served.
#[derive(Clone, Copy, Debug)]
pub enum Serve {
    /// A plain-WebSocket dialect: the gateway's connection loop owns the socket and
    /// drives the dialect's [`chat_core::Session`]s. Mounted at exact paths.
    Ws(fn() -> Arc<dyn WsDialect>),
    /// A dialect that answers HTTP itself under its path (Socket.IO: polling and the
    /// upgrade to WebSocket), built once the service exists. Mounted as a prefix, after
    /// every WebSocket mount, so an exact WebSocket path below it keeps its own dialect.
    Http(fn(Arc<ChatService>, MountParams) -> Arc<dyn HttpMount>),
}

/// What the gateway tells an HTTP-served dialect when it mounts it.
#[derive(Clone, Debug)]
pub struct MountParams {
    /// The mount path (normalized, no trailing slash except for `/`).
    pub path: String,
    /// Largest payload accepted, in bytes.
    pub max_payload: u64,
    /// Serve in the dialect's trusted mode (only for a dialect with a [`TrustedMode`]).
    pub trusted: bool,
    /// Time a client has to present its token after connecting.
    pub connect_timeout: Duration,
}

/// A dialect that can serve without tokens, trusting the ids in request bodies. While
/// it does, the gateway refuses every request of it that carries an `Origin` header, so
/// no web page can reach it.
#[derive(Clone, Copy, Debug)]
pub struct TrustedMode {
    /// The CLI flag that turns it on, without the leading `--`.
    pub flag: &'static str,
    /// The flag's help text.
    pub help: &'static str,
}

/// What a browser needs to talk to a dialect from the console: the transport, and
/// frames to start from (the admin edits them before sending).
///
/// In a sample, `{{token}}` stands for the token typed in the console and `{{room}}`
/// for the room id typed there. The console sends the token where every dialect
/// finds it at the handshake — the `token` query parameter of a WebSocket upgrade,
/// the `auth` payload of a Socket.IO connect — so a sample only carries it where the
/// dialect's own frames do.
#[derive(Clone, Copy, Debug)]
pub struct TryIt {
    pub transport: Transport,
    pub samples: &'static [Sample],
}

/// How a browser connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A plain WebSocket; a sample is one text frame.
    WebSocket,
    /// Socket.IO (the npm `socket.io-client`) on `namespace`; a sample is a JSON
    /// array, the event name then its argument, emitted with an ack.
    SocketIo { namespace: &'static str },
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::SocketIo { .. } => "socket.io",
        }
    }
}

/// A frame to start from.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// What it does, in a few words.
    pub label: &'static str,
    pub frame: &'static str,
}
