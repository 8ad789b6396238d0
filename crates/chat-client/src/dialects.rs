//! The catalogue: every dialect this crate speaks, what a driver needs to connect to
//! it, and the client frames it sends.
//!
//! Invariant: this is the only file of the crate (and the only place a driver needs)
//! that knows a dialect by name. Mechanism: [`Dialect`] carries names, default paths,
//! token carriers and Socket.IO namespaces; the per-dialect modules spell request
//! envelopes as `Value`s, and [`Dialect::send_frame`] and friends spell the few frames
//! a load generator sends as ready text, with byte-pattern recognisers for their
//! answers. Consequence: a runner or generator iterates [`Dialect::ALL`] and asks the
//! catalogue, so adding a dialect is one change here, not one per tool.
//!
//! Nothing here validates: a caller can still build a deliberately wrong frame by
//! hand. Default paths are chat-gateway's; a legacy deployment may mount a dialect
//! elsewhere (take the path from the caller's configuration).

use std::fmt;

pub use crate::jwt::{bearer, jwt_claims, jwt_user_id};

/// The dialects, in the order tools list them (and sort them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    MethodArgs,
    TypeContent,
    ActionRequest,
    SocketioRooms,
    SocketioPubsub,
}

/// Where a dialect's client puts its access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCarrier {
    /// In the first message after the upgrade (see [`Dialect::hello`]).
    FirstMessage,
    /// `Authorization: Bearer` on the upgrade request (see [`bearer`]).
    BearerHeader,
    /// `{"token": …}` in the Socket.IO namespace connect.
    SocketioAuth,
}

/// Whether a set-up frame answered what a driver asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    Yes,
    NotYet,
    Refused,
}

/// The room a frame from [`Dialect::send_frame`] goes to, as each dialect names it.
#[derive(Clone, Debug)]
pub struct Target {
    pub room_id: i64,
    /// True for a two-member direct room.
    pub direct: bool,
    /// The other member (direct rooms only): user id and username.
    pub peer: Option<(i64, String)>,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [
        Dialect::MethodArgs,
        Dialect::TypeContent,
        Dialect::ActionRequest,
        Dialect::SocketioRooms,
        Dialect::SocketioPubsub,
    ];

    /// The name used on command lines, in reports and as the spec's directory.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::MethodArgs => "method-args",
            Dialect::TypeContent => "type-content",
            Dialect::ActionRequest => "action-request",
            Dialect::SocketioRooms => "socketio-rooms",
            Dialect::SocketioPubsub => "socketio-pubsub",
        }
    }

    /// The dialect called `name` (as [`Dialect::name`] spells it).
    pub fn parse(name: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.name() == name)
    }

    /// chat-gateway's path for this dialect.
    pub fn default_path(self) -> &'static str {
        match self {
            Dialect::MethodArgs => method_args::PATH,
            Dialect::TypeContent => type_content::PATH,
            Dialect::ActionRequest => action_request::PATH,
            Dialect::SocketioRooms => socketio_rooms::PATH,
            Dialect::SocketioPubsub => socketio_pubsub::PATH,
        }
    }

    pub fn token_carrier(self) -> TokenCarrier {
        match self {
            Dialect::MethodArgs => TokenCarrier::FirstMessage,
            Dialect::TypeContent | Dialect::ActionRequest => TokenCarrier::BearerHeader,
            Dialect::SocketioRooms | Dialect::SocketioPubsub => TokenCarrier::SocketioAuth,
        }
    }

    /// The Socket.IO namespace, `None` for a plain WebSocket dialect.
    pub fn namespace(self) -> Option<&'static str> {
        match self {
            Dialect::SocketioRooms => Some(socketio_rooms::NAMESPACE),
            Dialect::SocketioPubsub => Some(socketio_pubsub::NAMESPACE),
            _ => None,
        }
    }

    pub fn is_socketio(self) -> bool {
        self.namespace().is_some()
    }

    /// Whether members on this dialect see messages of rooms with more than two members.
    pub fn sees_groups(self) -> bool {
        self != Dialect::SocketioPubsub
    }

    /// Whether the dialect's servers check the upgrade's `Origin` against an allow-list.
    pub fn checks_origin(self) -> bool {
        self == Dialect::ActionRequest
    }

    /// The namespace part of a Socket.IO packet (`/chat,`), empty for `/` and for
    /// plain WebSocket dialects.
    pub fn nsp_prefix(self) -> &'static str {
        match self {
            Dialect::SocketioPubsub => "/chat,",
            _ => "",
        }
    }

    /// The first frame after the upgrade (after the Engine.IO open packet for a
    /// Socket.IO dialect), if the dialect needs one to become usable.
    pub fn hello(self, token: &str) -> Option<String> {
        match self.token_carrier() {
            TokenCarrier::FirstMessage => Some(format!(
                r#"{{"method":"auth","access_token":"{token}","args":{{"event_response_key":"bench"}}}}"#
            )),
            TokenCarrier::SocketioAuth => {
                Some(format!(r#"40{}{{"token":"{token}"}}"#, self.nsp_prefix()))
            }
            TokenCarrier::BearerHeader => None,
        }
    }

    /// Whether `frame` says the session is usable (after [`Dialect::hello`]).
    pub fn is_ready(self, frame: &str) -> Ready {
        match self.token_carrier() {
            TokenCarrier::FirstMessage => {
                if frame.contains(r#""type":"authenticated""#) {
                    Ready::Yes
                } else if frame.contains(r#""type":"error""#) {
                    Ready::Refused
                } else {
                    Ready::NotYet
                }
            }
            TokenCarrier::SocketioAuth => {
                if let Some(rest) = frame.strip_prefix("40") {
                    if rest.starts_with(self.nsp_prefix()) {
                        return Ready::Yes;
                    }
                }
                if frame.starts_with("44") || frame.contains("auth-failed") {
                    Ready::Refused
                } else {
                    Ready::NotYet
                }
            }
            // Authenticated at the handshake: usable once upgraded.
            TokenCarrier::BearerHeader => Ready::Yes,
        }
    }

    /// A frame that makes this connection show the room's pushes, when the dialect
    /// needs one (one of them shows only the joined room).
    pub fn join(self, target: &Target) -> Option<String> {
        match self {
            Dialect::ActionRequest => Some(format!(
                r#"{{"action":"join_room","room_pk":{},"request_id":"join"}}"#,
                target.room_id
            )),
            _ => None,
        }
    }

    /// Whether a client of this dialect needs the room's id before it can send into a
    /// room of this shape (`direct`: two members). type-content names a direct chat by
    /// its two members and socketio-pubsub by the peer's username, so those need no
    /// room set up; every other room is named by an id the server gave it.
    pub fn needs_room_id(self, direct: bool) -> bool {
        match self {
            Dialect::TypeContent | Dialect::SocketioPubsub => !direct,
            Dialect::MethodArgs | Dialect::ActionRequest | Dialect::SocketioRooms => true,
        }
    }

    /// The frame that creates a room of the caller and `others` in the protocol itself,
    /// if the dialect has one that a minimal server of it implements (method-args
    /// `create_chat`). Untitled with one other member: the pair's direct chat. The
    /// answer is recognised by [`Dialect::room_created`].
    pub fn create_room(self, others: &[i64], title: Option<&str>) -> Option<String> {
        match self {
            Dialect::MethodArgs => {
                let mut args = serde_json::Map::new();
                args.insert("users".into(), serde_json::Value::from(others.to_vec()));
                if let Some(t) = title {
                    args.insert("title".into(), serde_json::Value::from(t));
                }
                args.insert("event_response_key".into(), SETUP_KEY.into());
                Some(
                    method_args::call("create_chat", None, serde_json::Value::Object(args))
                        .to_string(),
                )
            }
            _ => None,
        }
    }

    /// Whether `frame` answers [`Dialect::create_room`]: `Some(Ok(room id))` when the
    /// room exists (created now, or already there: method-args'
    /// `chat_duplication_error` names the existing chat), `Some(Err(why))` when it was
    /// refused, `None` for any other frame.
    pub fn room_created(self, frame: &str) -> Option<Result<i64, String>> {
        if self != Dialect::MethodArgs {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(frame).ok()?;
        let data = &v["data"];
        let ours = data["event_response_key"] == SETUP_KEY;
        let id = |x: &serde_json::Value| {
            x.as_i64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        };
        match v["type"].as_str()? {
            "chat_created" if ours => {
                Some(id(&data["chat"]["id"]).ok_or_else(|| format!("no chat id in {frame}")))
            }
            "error" if ours || data["event_response_key"].is_null() => {
                match (data["type"].as_str(), id(&data["chat_id"])) {
                    (Some("chat_duplication_error"), Some(existing)) => Some(Ok(existing)),
                    _ => Some(Err(frame.chars().take(300).collect())),
                }
            }
            _ => None,
        }
    }

    /// Whether `frame` answers the frame of [`Dialect::join`].
    pub fn is_joined(self, frame: &str) -> Ready {
        if frame.contains(r#""action":"join_room""#) {
            if frame.contains(r#""response_status":200"#) {
                Ready::Yes
            } else {
                Ready::Refused
            }
        } else {
            Ready::NotYet
        }
    }

    /// The frame that sends `text` from user `me` to `target`; `ack_id` numbers the
    /// request where the dialect echoes a key in its answer. `text` is written as is,
    /// so it must need no JSON escaping.
    pub fn send_frame(self, me: i64, target: &Target, text: &str, ack_id: u64) -> String {
        match self {
            Dialect::MethodArgs => format!(
                r#"{{"method":"send_message","args":{{"chat":{},"text":"{text}","event_response_key":{ack_id}}}}}"#,
                target.room_id
            ),
            Dialect::TypeContent => {
                if target.direct {
                    let peer = target.peer.as_ref().map_or(me, |p| p.0);
                    let chat_id = type_content::direct_chat_id(me, peer);
                    format!(
                        r#"{{"type":"new_message","content":{{"chat_type":"direct","chat_id":"{chat_id}","message":"{text}","reply_to":null}}}}"#
                    )
                } else {
                    format!(
                        r#"{{"type":"new_message","content":{{"chat_type":"group","chat_id":{},"message":"{text}","reply_to":null}}}}"#,
                        target.room_id
                    )
                }
            }
            Dialect::ActionRequest => format!(
                r#"{{"action":"create_message","msg_text":"{text}","request_id":{ack_id}}}"#
            ),
            // The answer comes back as a same-named event; no ack is asked for, so the
            // reply arrives once.
            Dialect::SocketioRooms => format!(
                r#"42["new-message",{{"chat":{{"id":"{}"}},"user":{{"id":"{me}"}},"message":{{"value":"{text}","type":"text"}}}}]"#,
                target.room_id
            ),
            // Replies travel only in acks.
            Dialect::SocketioPubsub => {
                let peer = target.peer.as_ref().map_or("", |p| p.1.as_str());
                format!(
                    r#"42/chat,{ack_id}["send-message",{{"message":"{text}","user":"{peer}"}}]"#
                )
            }
        }
    }
}

/// The `event_response_key` of the set-up calls, so their answers are told apart.
const SETUP_KEY: &str = "chat-bench-setup";

/// Whether a frame of any dialect looks like a refusal: an error event, a non-empty
/// `errors` list, an `error` field.
pub fn looks_like_error(frame: &str) -> bool {
    frame.contains(r#""type":"error""#)
        || frame.contains(r#""errors":["#) && !frame.contains(r#""errors":[]"#)
        || frame.contains(r#""error":"#)
}

/// method-args: `{method, access_token, args}` in, `{type, data}` out.
pub mod method_args {
    use serde_json::{Map, Value};

    pub const PATH: &str = "/ws/chat/";

    /// A method call; `token` goes in `access_token` when given.
    pub fn call(method: &str, token: Option<&str>, args: Value) -> Value {
        let mut m = Map::new();
        m.insert("method".into(), Value::from(method));
        if let Some(t) = token {
            m.insert("access_token".into(), Value::from(t));
        }
        m.insert("args".into(), args);
        Value::Object(m)
    }
}

/// type-content: `{type, content}` both ways, `{error}` for refusals.
pub mod type_content {
    use serde_json::{json, Value};

    pub const PATH: &str = "/ws/chats/";

    /// A client event.
    pub fn event(kind: &str, content: Value) -> Value {
        json!({"type": kind, "content": content})
    }

    /// The `chat_id` of the direct chat of two users: `"<low>_<high>"`.
    pub fn direct_chat_id(a: i64, b: i64) -> String {
        format!("{}_{}", a.min(b), a.max(b))
    }

    /// A `new_message` event.
    pub fn new_message(
        chat_type: &str,
        chat_id: Value,
        text: &str,
        reply_to: Option<i64>,
    ) -> Value {
        event(
            "new_message",
            json!({"chat_type": chat_type, "chat_id": chat_id, "message": text, "reply_to": reply_to}),
        )
    }
}

/// action-request (djangochannelsrestframework): `{action, request_id, …}` in, the
/// envelope `{errors, data, action, response_status, request_id}` out.
pub mod action_request {
    use serde_json::{Map, Value};

    pub const PATH: &str = "/ws/dcrf/chat/";
    pub const ADMIN_PATH: &str = "/ws/admin-chat/";

    /// A request: `fields` (an object) plus `action` and `request_id`.
    pub fn request(action: &str, request_id: Value, fields: Value) -> Value {
        let mut m = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert("action".into(), Value::from(action));
        m.insert("request_id".into(), request_id);
        Value::Object(m)
    }
}

/// socketio-rooms: Socket.IO at `/socket.io/`, namespace `/`.
pub mod socketio_rooms {
    pub const PATH: &str = "/socket.io/";
    pub const NAMESPACE: &str = "/";
}

/// socketio-pubsub: Socket.IO at `/ws/`, namespace `/chat`, token in the handshake auth.
pub mod socketio_pubsub {
    pub const PATH: &str = "/ws/";
    pub const NAMESPACE: &str = "/chat";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_ids_are_ordered() {
        assert_eq!(type_content::direct_chat_id(23, 12), "12_23");
    }

    #[test]
    fn names_round_trip() {
        for d in Dialect::ALL {
            assert_eq!(Dialect::parse(d.name()), Some(d));
        }
        assert_eq!(Dialect::parse("nope"), None);
    }

    #[test]
    fn method_args_creates_rooms_and_reads_the_answer() {
        let d = Dialect::MethodArgs;
        let f = d
            .create_room(&[7, 8], Some("t"))
            .expect("method-args creates chats");
        let v: serde_json::Value = serde_json::from_str(&f).expect("JSON");
        assert_eq!(v["method"], "create_chat");
        assert_eq!(v["args"]["users"], serde_json::json!([7, 8]));
        assert_eq!(v["args"]["title"], "t");
        let created = r#"{"type":"chat_created","data":{"chat":{"id":41,"users":[]},"event_response_key":"chat-bench-setup"}}"#;
        assert_eq!(d.room_created(created), Some(Ok(41)));
        let dup = r#"{"type":"error","data":{"type":"chat_duplication_error","detail":"x","event_response_key":"chat-bench-setup","chat_id":"9"}}"#;
        assert_eq!(d.room_created(dup), Some(Ok(9)));
        let refused = r#"{"type":"error","data":{"type":"field_error","detail":"users","event_response_key":"chat-bench-setup"}}"#;
        assert!(matches!(d.room_created(refused), Some(Err(_))));
        assert_eq!(
            d.room_created(r#"{"type":"new_chat","data":{"chat":{"id":3}}}"#),
            None
        );
        assert_eq!(
            d.room_created(r#"{"type":"authenticated","data":{}}"#),
            None
        );
        assert_eq!(Dialect::ActionRequest.create_room(&[1], None), None);
    }

    #[test]
    fn only_named_rooms_need_an_id() {
        assert!(!Dialect::TypeContent.needs_room_id(true));
        assert!(Dialect::TypeContent.needs_room_id(false));
        assert!(!Dialect::SocketioPubsub.needs_room_id(true));
        assert!(Dialect::MethodArgs.needs_room_id(true));
        assert!(Dialect::ActionRequest.needs_room_id(true));
    }

    #[test]
    fn direct_sends_name_the_ordered_pair() {
        let t = Target {
            room_id: 5,
            direct: true,
            peer: Some((3, "b3".into())),
        };
        let f = Dialect::TypeContent.send_frame(9, &t, "hi", 1);
        assert!(f.contains(r#""chat_id":"3_9""#), "{f}");
        let f = Dialect::SocketioPubsub.send_frame(9, &t, "hi", 4);
        assert_eq!(
            f,
            r#"42/chat,4["send-message",{"message":"hi","user":"b3"}]"#
        );
    }
}
