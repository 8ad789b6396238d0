//! The fuzz targets: each takes raw bytes and runs one decoding path exactly as the
//! server runs it on an incoming frame, up to the point where the service is called.
//! A target must not panic on any input; beyond that, a few properties the server
//! relies on are asserted (the frames it sends back are JSON, a decoded upload is
//! within its limit, a correlation tag reads back as the value it was made from).

use bytes::Bytes;
use engineioxide_core::{Packet as EioPacket, ProtocolVersion};
use futures_util::Stream;
use serde_json::Value;
use socketioxide_core::packet::{Packet as SioPacket, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_core::Str;
use socketioxide_parser_common::CommonParser;
use std::borrow::Cow;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&[u8]),
    /// Real frames of the protocol, from its spec and the decoders' tests.
    pub seeds: &'static [&'static str],
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "action-request",
        about: "action-request text frame → decode::Command (both endpoints), or the DRF error envelope",
        run: action_request,
        seeds: seeds::ACTION_REQUEST,
    },
    Target {
        name: "method-args",
        about: "method-args text frame → Envelope/Request, inline files → uploads, or the `error` event",
        run: method_args,
        seeds: seeds::METHOD_ARGS,
    },
    Target {
        name: "method-args-upload",
        about: "method-args send_message file data (base64, data: URLs) → Upload within a size limit",
        run: method_args_upload,
        seeds: seeds::UPLOAD,
    },
    Target {
        name: "type-content",
        about: "type-content text frame → decode::Request (chat ids resolved), or `{\"error\"}`",
        run: type_content,
        seeds: seeds::TYPE_CONTENT,
    },
    Target {
        name: "engineio-payload",
        about: "Engine.IO polling body / WebSocket frame → Engine.IO packets → Socket.IO packets (binary attachments too) → event name and first argument",
        run: engineio_payload,
        seeds: seeds::ENGINEIO,
    },
    Target {
        name: "socketio-rooms",
        about: "Engine.IO WebSocket text frame → Socket.IO event → socketio-rooms payload types and checks",
        run: socketio_rooms,
        seeds: seeds::SOCKETIO_ROOMS,
    },
    Target {
        name: "socketio-pubsub",
        about: "Engine.IO WebSocket text frame → Socket.IO event → socketio-pubsub payload types and checks",
        run: socketio_pubsub,
        seeds: seeds::SOCKETIO_PUBSUB,
    },
];

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// A WebSocket text frame: tungstenite hands the server valid UTF-8 only, so invalid
/// input is made valid rather than thrown away.
fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A frame the server sends must be JSON. (An echoed value may already be as deep as
/// the parser allows, so the envelope around it can be too deep to read back; that
/// is the reader's limit, not a malformed frame.)
fn assert_json(frame: &str) {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(frame) {
        assert!(
            e.to_string().starts_with("recursion limit exceeded"),
            "the server would send a frame that is not JSON ({e}): {frame:.200}"
        );
    }
}

// ---------------------------------------------------------------------- action-request

pub fn action_request(data: &[u8]) {
    use dialect_action_request::{decode, render, Endpoint};
    let text = text(data);
    for endpoint in [Endpoint::User, Endpoint::Admin] {
        match decode::decode(&text, endpoint) {
            Ok(frame) => {
                // The request_id travels as a correlation tag and is read back for
                // the push to the other connections of the room.
                if let Some(tag) = render::tag_of(&frame.request_id) {
                    let back: Value = serde_json::from_str(&tag).expect("a tag is JSON");
                    assert_eq!(back, frame.request_id, "the request_id survives its tag");
                }
                let _ = frame.action.as_str().unwrap_or_default();
            }
            Err(r) => assert_json(&render::failure(&r.failure, &r.action, &r.request_id)),
        }
    }
}

// ---------------------------------------------------------------------- method-args

/// The file limits uploads are decoded against: none, tiny, and the default-ish.
const LIMITS: [usize; 4] = [0, 3, 1000, 10 << 20];

pub fn method_args(data: &[u8]) {
    use dialect_method_args::decode::decode;
    use dialect_method_args::render::{chat_error, error};
    use dialect_method_args::upload::decode_file;
    use dialect_method_args::wire::Call;
    let text = text(data);
    let envelope = match decode(&text) {
        Ok(e) => e,
        Err(e) => return assert_json(&error(e.kind, e.detail, e.key).to_json()),
    };
    let key = envelope.key.clone();
    let request = match envelope.into_request() {
        Ok(r) => r,
        Err(e) => return assert_json(&error(e.kind, e.detail, e.key).to_json()),
    };
    let _ = (!key.is_null()).then(|| key.to_string());
    assert_eq!(request.call.event_response_key(), &key);
    if let Call::SendMessage(args) = &request.call {
        for (i, file) in args.files.iter().flatten().enumerate() {
            for limit in LIMITS {
                match decode_file(i, file, limit) {
                    Ok(u) => assert!(u.bytes.len() <= limit, "an upload over its limit"),
                    Err(e) => assert_json(&chat_error(&e, key.clone()).to_json()),
                }
            }
        }
    }
}

pub fn method_args_upload(data: &[u8]) {
    use dialect_method_args::upload::decode_file;
    use dialect_method_args::wire::FileArg;
    let (limit, rest) = match data.split_first() {
        Some((b, rest)) => (LIMITS[usize::from(*b) % LIMITS.len()], rest),
        None => (0, data),
    };
    let file = FileArg {
        name: "f.bin".into(),
        data: text(rest).into_owned(),
    };
    if let Ok(u) = decode_file(
        usize::from(data.first().copied().unwrap_or(0)),
        &file,
        limit,
    ) {
        assert!(u.bytes.len() <= limit, "an upload over its limit");
    }
}

// ---------------------------------------------------------------------- type-content

pub fn type_content(data: &[u8]) {
    use dialect_type_content::decode::{decode, Request};
    use dialect_type_content::encode::error_frame;
    match decode(&text(data)) {
        Ok(req) => {
            let _ = req.event();
            match req {
                Request::Send { chat, .. }
                | Request::Typing { chat }
                | Request::Read { chat, .. }
                | Request::Delete { chat, .. } => {
                    let _ = chat.room_ref();
                }
                Request::Presence { .. } => {}
            }
        }
        Err(e) => assert_json(&error_frame(e.to_string())),
    }
}

// ---------------------------------------------------------------------- Engine.IO / Socket.IO

/// What socketioxide hands the project's fallback handler for one client event:
/// the event name and the first argument, read the way `socketio_common::inbox`
/// reads them (socketioxide's `Event` and `TryData<serde_json::Value>` extractors).
#[derive(Debug)]
pub enum SioInput {
    Event {
        event: String,
        payload: Value,
        ack: Option<i64>,
    },
    /// A namespace CONNECT with its `auth` payload (`TryData<Value>` at connect).
    Connect { auth: Option<Value> },
}

/// The largest polling body socketioxide reads (the gateway passes its frame limit).
const MAX_PAYLOAD: u64 = 1 << 20;

/// Read one Socket.IO packet the way socketioxide's client does, into what the
/// project's handlers receive.
fn sio_packet(packet: SioPacket) -> Option<SioInput> {
    let parser = CommonParser;
    match packet.inner {
        PacketData::Connect(auth) => {
            let auth = parser.decode_default::<Value>(auth.as_ref()).ok();
            Some(SioInput::Connect { auth })
        }
        PacketData::Event(mut v, ack) | PacketData::BinaryEvent(mut v, ack) => {
            // socketioxide drops an event whose name it cannot read.
            let event = parser.read_event(&v).ok()?.to_string();
            let payload = parser
                .decode_value::<Value>(&mut v, true)
                .unwrap_or(Value::Null);
            Some(SioInput::Event {
                event,
                payload,
                ack,
            })
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
    let _ = socketio_common::token::find(auth, Some(query), &http::HeaderMap::new());
}

pub fn engineio_payload(data: &[u8]) {
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

/// One Socket.IO event of a dialect, through the whole path: the frame, the packet,
/// the extractor, then the dialect.
fn sio_dialect(data: &[u8], dialect: fn(&str, &Value) -> Result<(), socketio_common::WireError>) {
    let conn = SioConn::new();
    match ws_text(&conn, data) {
        Some(SioInput::Event { event, payload, .. }) => {
            if let Err(e) = dialect(&event, &payload) {
                let v = socketio_common::error::json_of(&e);
                assert!(v.is_object(), "the error shape serializes");
            }
        }
        Some(SioInput::Connect { auth }) => handshake(auth.as_ref(), ""),
        None => {}
    }
}

pub fn socketio_rooms(data: &[u8]) {
    sio_dialect(data, rooms_request);
}

pub fn socketio_pubsub(data: &[u8]) {
    sio_dialect(data, pubsub_request);
}

/// What socketio-rooms does with a request before it calls the service
/// (`dialect_socketio_rooms::session`): the payload decoded into its wire type, and
/// the checks made on it there.
fn rooms_request(event: &str, payload: &Value) -> Result<(), socketio_common::WireError> {
    use dialect_socketio_rooms::session::EVENTS;
    use dialect_socketio_rooms::wire::*;
    use socketio_common::error::decode;
    use socketio_common::{time, WireError};
    match event {
        "create-user" => {
            let CreateUser { user } = decode(event, payload)?;
            let _ = user.name.trim().is_empty();
            if let Some(ext) = &user.external_id {
                let _ = ext.0.trim().is_empty() || ext.0.chars().count() > 255;
            }
        }
        "create-chat" => {
            let req: CreateChat = decode(event, payload)?;
            let _ = req.users.first().map(|u| u.0);
        }
        "list-chats" => {
            let req: ListChats = decode(event, payload)?;
            let _ = user_id(&req.user);
        }
        "list-messages" => {
            let req: ListMessages = decode(event, payload)?;
            let window = req.query.unwrap_or_default();
            let when = |v: &Option<Value>| match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => time::parse(v)
                    .map(Some)
                    .map_err(|e| WireError::invalid(event, e)),
            };
            let (from, to) = (when(&window.from)?, when(&window.to)?);
            for t in [from, to].into_iter().flatten() {
                // RFC 3339 has four-digit years: within them, a time the server
                // writes reads back.
                let shown = time::format(&t);
                if (0..=9999).contains(&chrono::Datelike::year(&t)) {
                    assert_eq!(
                        time::parse(&Value::String(shown.clone())).ok(),
                        Some(t),
                        "a time reads back from its wire form {shown}"
                    );
                }
            }
            let _ = req.chat.id.0;
        }
        "new-message" => {
            let req: NewMessage = decode(event, payload)?;
            let _ = matches!(req.message.kind.as_str(), "text" | "img" | "file");
            let _ = req.message.value.trim().is_empty();
            let _ = (user_id(&req.user), req.chat.id.0);
        }
        other => return Err(WireError::unknown_event(other, EVENTS)),
    }
    Ok(())
}

/// What socketio-pubsub does with a request before it calls the service.
fn pubsub_request(event: &str, payload: &Value) -> Result<(), socketio_common::WireError> {
    use dialect_socketio_pubsub::session::EVENTS;
    use dialect_socketio_pubsub::{media, wire::*};
    use socketio_common::error::decode;
    use socketio_common::WireError;
    match event {
        "fetch-users" => {}
        "fetch-conversation-with-user"
        | "fetch-chats-with-user"
        | "wait-for-user"
        | "stop-waiting-for-user" => {
            let req: WithUser = decode(event, payload)?;
            let _ = req.user.trim();
        }
        "fetch-unread-chats-count" => {
            let req: UnreadCount = if payload.is_null() {
                UnreadCount::default()
            } else {
                decode(event, payload)?
            };
            let _ = req.user.filter(|u| !u.trim().is_empty());
        }
        "read-chat" => {
            let req: ReadChat = decode(event, payload)?;
            let _ = req.id.0;
        }
        "send-message" => {
            let req: SendMessage = decode(event, payload)?;
            for (i, url) in req.media.iter().flatten().enumerate() {
                for base in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/", ""] {
                    if let Ok((id, token)) = media::attachment_ref(base, url) {
                        assert!(id.0 > 0, "media[{i}]: an attachment id is positive");
                        assert!(!token.is_empty(), "media[{i}]: a file URL has a token");
                    }
                }
            }
        }
        other => return Err(WireError::unknown_event(other, EVENTS)),
    }
    Ok(())
}

// ---------------------------------------------------------------------- seeds

mod seeds {
    pub const ACTION_REQUEST: &[&str] = &[
        r#"{"action":"list","request_id":1500000}"#,
        r#"{"action":"join_room","room_pk":1,"request_id":1}"#,
        r#"{"action":"leave_room","request_id":1}"#,
        r#"{"action":"create_message","msg_text":"hello","request_id":1}"#,
        r#"{"action":"edit_message","msg_id":1,"edited_msg_text":"edited_text","request_id":1}"#,
        r#"{"action":"delete_messages","msg_id_list":[1,2],"request_id":1}"#,
        r#"{"action":"current_room_info","request_id":1}"#,
        r#"{"action":"list","request_id":{"a":[1]}}"#,
        r#"{"action":"leave_room","room_pk":"x","extra":[1],"request_id":2}"#,
        r#"{"action":"delete_messages","msg_id_list":[1,"a",null]}"#,
        r#"{"action":5}"#,
        r#"[1,2]"#,
    ];

    pub const METHOD_ARGS: &[&str] = &[
        r#"{"method":"auth","access_token":"token"}"#,
        r#"{"method":"create_chat","access_token":"t","args":{"users":[1,2],"title":"title","event_response_key":"k1"}}"#,
        r#"{"method":"update_chat","args":{"chat":1,"title":null,"event_response_key":{"n":1}}}"#,
        r#"{"method":"send_message","args":{"chat":1,"text":"string","files":[{"name":"a.txt","data":"aGVsbG8="}]}}"#,
        r#"{"method":"send_message","args":{"chat":"1","files":[{"name":"a.png","data":"data:image/png;base64,iVBORw0KGgo="},{"name":"b","data":"-_8"}],"event_response_key":7}}"#,
        r#"{"method":"read_messages","args":{"chat":1}}"#,
        r#"{"method":"remove_from_chat","args":{"users":[1],"chat":1}}"#,
        r#"{"method":"add_to_chat","args":{"users":["2"],"chat":1,"event_response_key":[1,2]}}"#,
        r#"{"method":"fly","args":{"event_response_key":"x"}}"#,
    ];

    pub const UPLOAD: &[&str] = &[
        "\u{2}aGVsbG8=",
        "\u{2}aGVs\nbG8",
        "\u{3}data:text/plain;base64,aGVsbG8=",
        "\u{2}DATA:image/png;name=x.png;base64,aGk=",
        "\u{1}-_8=",
        "\u{0}",
        "\u{2}data:;base64,",
        "\u{2}data:text/plain,hello",
    ];

    pub const TYPE_CONTENT: &[&str] = &[
        r#"{"type":"new_message","content":{"chat_type":"direct","chat_id":"12_23","message":"hello world","reply_to":54}}"#,
        r#"{"type":"new_message","content":{"chat_type":"project","chat_id":7,"message":"hi","reply_to":null}}"#,
        r#"{"type":"new_message","content":{"chat_type":"project","chat_id":"7","message":"hi","reply_to":"3"}}"#,
        r#"{"type":"user_typing","content":{"chat_type":"group","chat_id":5}}"#,
        r#"{"type":"message_read","content":{"chat_type":"direct","chat_id":"1_2","message_id":"9"}}"#,
        r#"{"type":"delete_message","content":{"chat_type":"direct","chat_id":"1_2","message_id":9}}"#,
        r#"{"type":"set_online"}"#,
        r#"{"type":"set_offline","content":{}}"#,
    ];

    pub const ENGINEIO: &[&str] = &[
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

    pub const SOCKETIO_ROOMS: &[&str] = &[
        r#"42["create-user",{"user":{"external_id":"crm-42","id":"7","name":"Ann","photo":"https://h/ann.png"}}]"#,
        r#"421["create-chat",{"chat":{"name":"project x"},"users":["2","3"]}]"#,
        r#"42["list-chats",{"user":{"id":"1"}}]"#,
        r#"422["list-messages",{"query":{"from":"2024-05-01T00:00:00Z","to":1714564805123},"chat":{"id":"5"}}]"#,
        r#"42["new-message",{"chat":{"id":"5"},"user":{"id":1},"message":{"value":"hello","type":"text"}}]"#,
        r#"42["new-message",{"chat":{"id":"5"},"user":{"id":"1"},"message":{"value":"http://h/a.png","type":"img"}}]"#,
        r#"40{"token":"abc"}"#,
        r#"42["nope"]"#,
    ];

    pub const SOCKETIO_PUBSUB: &[&str] = &[
        r#"42/chat,1["fetch-users"]"#,
        r#"42/chat,2["fetch-conversation-with-user",{"user":"bob"}]"#,
        r#"42/chat,3["fetch-unread-chats-count",{"user":"bob"}]"#,
        r#"42/chat,["fetch-unread-chats-count"]"#,
        r#"42/chat,4["read-chat",{"id":"12"}]"#,
        r#"42/chat,5["send-message",{"message":"hi bob","user":"bob","media":["http://127.0.0.1:8080/files/12/a%20b.png"]}]"#,
        r#"42/chat,["wait-for-user",{"user":"bob"}]"#,
        r#"42/chat,["stop-waiting-for-user",{"user":"bob"}]"#,
        r#"40/chat,{"token":"Bearer abc"}"#,
    ];
}
