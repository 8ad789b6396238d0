//! The Socket.IO layer as the fuzzer drives it: bytes through socketioxide's own
//! Engine.IO and Socket.IO parsers into what a dialect's handlers receive (the event
//! name and first argument, or the `auth` of a namespace CONNECT), read the way
//! [`crate::inbox`] reads them. The Socket.IO dialects build their targets on
//! [`event`] (through [`crate::event_targets!`]); [`TARGETS`] fuzzes the shared
//! layer itself.

use bytes::Bytes;
use dialect_kit::fuzz::text;
pub use dialect_kit::FuzzTarget;
use engineioxide_core::{Packet as EioPacket, ProtocolVersion};
use futures_util::Stream;
use serde_json::Value;
use socketioxide_core::packet::{Packet as SioPacket, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_core::Str;
use socketioxide_parser_common::CommonParser;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

pub const TARGETS: &[FuzzTarget] = &[FuzzTarget {
    name: "engineio-payload",
    about: "Engine.IO polling body / WebSocket frame → Engine.IO packets → Socket.IO packets (binary attachments too) → event name and first argument",
    run: engineio_payload,
    seeds: ENGINEIO,
}];

/// What socketioxide hands the fallback handler for one client event.
#[derive(Debug)]
enum SioInput {
    Event {
        event: String,
        payload: Value,
    },
    /// A namespace CONNECT with its `auth` payload (`TryData<Value>` at connect).
    Connect {
        auth: Option<Value>,
    },
}

/// The largest polling body socketioxide reads (the gateway passes its frame limit).
const MAX_PAYLOAD: u64 = 1 << 20;

/// Read one Socket.IO packet the way socketioxide's client does.
fn sio_packet(packet: SioPacket) -> Option<SioInput> {
    let parser = CommonParser;
    match packet.inner {
        PacketData::Connect(auth) => {
            let auth = parser.decode_default::<Value>(auth.as_ref()).ok();
            Some(SioInput::Connect { auth })
        }
        PacketData::Event(mut v, _) | PacketData::BinaryEvent(mut v, _) => {
            // socketioxide drops an event whose name it cannot read.
            let event = parser.read_event(&v).ok()?.to_string();
            let payload = parser
                .decode_value::<Value>(&mut v, true)
                .unwrap_or(Value::Null);
            Some(SioInput::Event { event, payload })
        }
        PacketData::EventAck(mut v, _) | PacketData::BinaryAck(mut v, _) => {
            let _ = parser.decode_value::<Value>(&mut v, false);
            None
        }
        PacketData::Disconnect | PacketData::ConnectError(_) => None,
    }
}

/// The Socket.IO layer of one connection: text and binary Engine.IO messages in,
/// complete packets out (a binary event waits for its attachments).
struct SioConn {
    config: ParseConfig,
    state: ParserState,
}

impl SioConn {
    fn new() -> Self {
        SioConn {
            config: ParseConfig::default(),
            state: ParserState::default(),
        }
    }

    fn text(&self, s: Str) -> Option<SioInput> {
        match CommonParser.decode_str(&self.config, &self.state, s) {
            Ok(p) => sio_packet(p),
            Err(ParseError::NeedsMoreBinaryData) => None,
            Err(_) => None,
        }
    }

    fn binary(&self, b: Bytes) -> Option<SioInput> {
        match CommonParser.decode_bin(&self.config, &self.state, b) {
            Ok(p) => sio_packet(p),
            Err(_) => None,
        }
    }

    /// One Engine.IO packet.
    fn engine(&self, p: EioPacket) -> Option<SioInput> {
        match p {
            EioPacket::Message(s) => self.text(s),
            EioPacket::Binary(b) | EioPacket::BinaryV3(b) => self.binary(b),
            other => {
                let _ = String::from(other);
                None
            }
        }
    }
}

/// The packets of a polling body (an HTTP POST), in order, up to the first error
/// (where engineioxide stops reading the body).
fn polling_packets(data: &[u8]) -> Vec<EioPacket> {
    let body = http_body_util::Full::new(Bytes::copy_from_slice(data));
    let mut stream = pin!(engineioxide_core::payload::decoder(
        body,
        None,
        ProtocolVersion::V4,
        MAX_PAYLOAD,
    ));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(p))) => out.push(p),
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => break,
            Poll::Pending => panic!("a body in memory never makes the decoder wait"),
        }
        assert!(
            out.len() <= data.len() + 1,
            "more packets than bytes in the body"
        );
    }
    out
}

/// An Engine.IO WebSocket text frame, as engineioxide's WebSocket transport parses it.
fn ws_text(conn: &SioConn, data: &[u8]) -> Option<SioInput> {
    let frame = text(data).into_owned();
    EioPacket::parse(ProtocolVersion::V4, frame)
        .ok()
        .and_then(|p| conn.engine(p))
}

/// The handshake pieces a Socket.IO dialect decides on.
fn handshake(auth: Option<&Value>, query: &str) {
    let _ = dialect_kit::token::in_socketio(auth, Some(query), &http::HeaderMap::new());
}

fn engineio_payload(data: &[u8]) {
    // As a polling body: many packets, one Socket.IO connection state across them.
    let conn = SioConn::new();
    for p in polling_packets(data) {
        if let Some(SioInput::Connect { auth }) = conn.engine(p) {
            handshake(auth.as_ref(), "");
        }
    }
    // As one WebSocket text frame, and as a WebSocket binary frame (an attachment).
    let conn = SioConn::new();
    let _ = ws_text(&conn, data);
    let _ = conn.binary(Bytes::copy_from_slice(data));
    // As a query string of the handshake.
    handshake(None, &text(data));
}

/// One Socket.IO event of a dialect, through the whole path: the WebSocket frame, the
/// packet, the extractor, then `dialect` (what the dialect does with the payload
/// before it calls the service). An error it returns must serialize to the error shape.
pub fn event(data: &[u8], dialect: fn(&str, &Value) -> Result<(), crate::WireError>) {
    let conn = SioConn::new();
    match ws_text(&conn, data) {
        Some(SioInput::Event { event, payload }) => {
            if let Err(e) = dialect(&event, &payload) {
                let v = crate::error::json_of(&e);
                assert!(v.is_object(), "the error shape serializes");
            }
        }
        Some(SioInput::Connect { auth }) => handshake(auth.as_ref(), ""),
        None => {}
    }
}

/// A Socket.IO dialect's fuzz targets (a `&[FuzzTarget]`): one, named `$name`, that
/// runs [`event`] with `$request` (what the dialect does with an event's payload) and
/// starts from the frames `$seeds`. A macro because a target's `run` is a plain `fn`,
/// a different one for each dialect.
#[macro_export]
macro_rules! event_targets {
    ($name:literal, $request:path, $seeds:expr) => {
        &[$crate::fuzz::FuzzTarget {
            name: $name,
            about: concat!(
                "Engine.IO WebSocket text frame → Socket.IO event → ",
                $name,
                " payload types and checks"
            ),
            run: |data| $crate::fuzz::event(data, $request),
            seeds: $seeds,
        }]
    };
}

const ENGINEIO: &[&str] = &[
    "40",
    "40/chat,{\"token\":\"abc\"}",
    "42[\"create-user\",{\"user\":{\"id\":\"1\",\"name\":\"Ann\",\"photo\":\"\"}}]\u{1e}42[\"list-chats\",{\"user\":{\"id\":\"1\"}}]",
    "42/chat,3[\"send-message\",{\"message\":\"hi\",\"user\":\"bob\"}]\u{1e}2\u{1e}3",
    "451-[\"new-message\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID",
    "452-/chat,9[\"x\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\u{1e}bAA==\u{1e}b/w==",
    "43/chat,5[{\"ok\":true}]",
    "41/chat,",
    "2probe\u{1e}5\u{1e}6\u{1e}1",
];
