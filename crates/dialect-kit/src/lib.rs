//! What every dialect shares, and how a dialect presents itself to the gateway.
//!
//! Invariant: a dialect is one crate that exports a [`Descriptor`], and nothing outside
//! the roster (`chat-dialects`) needs to know its name. Mechanism: the descriptor
//! carries everything the gateway asks of a dialect — its name and default paths, what it
//! needs from the handshake ([`TrustedMode`], file-carrying frames via
//! [`chat_core::WsDialect`]), how to serve it ([`Serve`]), and its fuzz targets — and the
//! helpers several dialects need (a lenient id with one rule, JSON kind names, wire time
//! formats, where a token travels) live here once. Consequence: adding a dialect is
//! writing its crate and adding one line to the roster; the gateway, the fuzzer and the
//! render cache pick it up from the list.

pub mod descriptor;
pub mod fuzz;
pub mod http;
pub mod id;
pub mod json;
pub mod time;
pub mod token;

pub use descriptor::{Descriptor, MountParams, Sample, Serve, Transport, TrustedMode, TryIt};
pub use fuzz::FuzzTarget;
pub use http::{Body, BoxError, BoxFuture, HttpMount};
pub use id::{parse_decimal, LenientId};
