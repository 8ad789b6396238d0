//! Client frame → typed [`Request`].
//!
//! Decoding is pure and total: any text yields either a [`Request`] or a
//! [`DecodeError`] whose message tells a client developer what to fix, and nothing is
//! asked of the service until a frame is fully valid. The `chat_type`/`chat_id` pair is
//! resolved here into a [`Chat`], because it is a wire convention (`"<low>_<high>"`,
//! integer project ids), not a domain rule; who may use a chat is decided by the core
//! service, never here.

use crate::wire::{self, ChatIdWire, ChatType, ClientEvent, PresenceNames};
use chat_core::{MessageId, RoomId, RoomRef, UserId};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A chat as this dialect names it, after decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chat {
    /// `chat_type: "direct"`, `chat_id: "<low>_<high>"`, `low < high`.
    Direct { low: UserId, high: UserId },
    /// `chat_type: "project"`, `chat_id`: the project id.
    Project(i64),
    /// `chat_type: "group"` (extension), `chat_id`: the room id.
    Group(RoomId),
}

impl Chat {
    /// How core names the chat. A group id is a plain room id; the session checks
    /// that it is a group room before using it (see [`crate::session`]).
    pub fn room_ref(self) -> RoomRef {
        match self {
            Chat::Direct { low, high } => RoomRef::DirectPair(low, high),
            Chat::Project(id) => RoomRef::Project(id),
            Chat::Group(id) => RoomRef::Id(id),
        }
    }

    /// Resolve a `chat_type`/`chat_id` pair.
    pub fn from_wire(
        event: &'static str,
        ty: ChatType,
        id: &ChatIdWire,
    ) -> Result<Chat, DecodeError> {
        let bad = |reason: String| DecodeError::ChatId { event, reason };
        match (ty, id) {
            (ChatType::Direct, ChatIdWire::Text(s)) => parse_direct(s).map_err(bad),
            (ChatType::Direct, ChatIdWire::Int(n)) => Err(bad(format!(
                r#"a direct chat id is a string "<low>_<high>" of the two user ids (e.g. "12_23"), not the number {n}"#
            ))),
            (ChatType::Project, ChatIdWire::Int(n)) => Ok(Chat::Project(*n)),
            (ChatType::Project, ChatIdWire::Text(s)) => {
                wire::parse_decimal(s).map(Chat::Project).ok_or_else(|| {
                    bad(format!(
                        "a project chat id is the integer id of the project, not {s:?}"
                    ))
                })
            }
            (ChatType::Group, ChatIdWire::Int(n)) => Ok(Chat::Group(RoomId(*n))),
            (ChatType::Group, ChatIdWire::Text(s)) => wire::parse_decimal(s)
                .map(|n| Chat::Group(RoomId(n)))
                .ok_or_else(|| {
                    bad(format!(
                        "a group chat id is the integer id of the chat, not {s:?}"
                    ))
                }),
        }
    }
}

/// Parse a direct chat id `"<low>_<high>"`: two decimal user ids joined by `_`, the
/// smaller first (the legacy spec: "the first number is always less than the second").
pub fn parse_direct(s: &str) -> Result<Chat, String> {
    let shape = || {
        format!(
            r#"a direct chat id is "<low>_<high>", two user ids joined by "_" (e.g. "12_23"), not {s:?}"#
        )
    };
    let (a, b) = s.split_once('_').ok_or_else(shape)?;
    let (Some(a), Some(b)) = (wire::parse_decimal(a), wire::parse_decimal(b)) else {
        return Err(shape());
    };
    match a.cmp(&b) {
        std::cmp::Ordering::Less => Ok(Chat::Direct {
            low: UserId(a),
            high: UserId(b),
        }),
        std::cmp::Ordering::Greater => Err(format!(
            r#"in a direct chat id the smaller user id comes first: "{b}_{a}", not {s:?}"#
        )),
        std::cmp::Ordering::Equal => Err(format!(
            "a direct chat is between two different users; {s:?} names user {a} twice"
        )),
    }
}

/// A decoded client frame: what the client asks for, in domain ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `new_message`.
    Send {
        chat: Chat,
        text: String,
        reply_to: Option<MessageId>,
    },
    /// `user_typing`.
    Typing { chat: Chat },
    /// `message_read`: the chat is read up to `message`.
    Read { chat: Chat, message: MessageId },
    /// `delete_message`.
    Delete { chat: Chat, message: MessageId },
    /// `set_online` / `set_offline` (or `user_online` / `user_offline`: `names`).
    Presence { online: bool, names: PresenceNames },
}

impl Request {
    /// The wire name of the event, for error messages and logs.
    pub fn event(&self) -> &'static str {
        match self {
            Request::Send { .. } => "new_message",
            Request::Typing { .. } => "user_typing",
            Request::Read { .. } => "message_read",
            Request::Delete { .. } => "delete_message",
            Request::Presence { online, names } => names.event(*online),
        }
    }
}

/// Why a frame could not be decoded. Each variant's text is sent to the client as
/// `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "the frame is not valid JSON ({0}); send {{\"type\": \"<event>\", \"content\": {{...}}}}"
    )]
    NotJson(String),
    #[error(
        "the frame must be a JSON object {{\"type\": \"<event>\", \"content\": {{...}}}}, not {0}"
    )]
    NotObject(&'static str),
    #[error("the frame has no \"type\"; send {{\"type\": \"<event>\", \"content\": {{...}}}}")]
    MissingType,
    #[error("\"type\" must be a string naming the event, not {0}")]
    TypeNotString(&'static str),
    #[error("unknown event type {0:?}; expected one of: new_message, user_typing, message_read, delete_message, set_online, set_offline (or user_online, user_offline)")]
    UnknownType(String),
    #[error("{event}: missing \"content\"; send {{\"type\": \"{event}\", \"content\": {{...}}}}")]
    MissingContent { event: &'static str },
    #[error("{event}: \"content\" must be a JSON object, not {found}")]
    ContentNotObject {
        event: &'static str,
        found: &'static str,
    },
    #[error("{event}: {reason}")]
    Field { event: &'static str, reason: String },
    #[error("{event}: `chat_id`: {reason}")]
    ChatId { event: &'static str, reason: String },
}

fn content<T: DeserializeOwned>(
    event: &'static str,
    content: Option<Value>,
) -> Result<T, DecodeError> {
    let content = match content {
        None => return Err(DecodeError::MissingContent { event }),
        Some(v @ Value::Object(_)) => v,
        Some(other) => {
            return Err(DecodeError::ContentNotObject {
                event,
                found: dialect_kit::json::kind(&other),
            })
        }
    };
    serde_json::from_value(content).map_err(|e| {
        let mut reason = e.to_string();
        if reason == "missing field `reply_to`" {
            reason.push_str(" (send \"reply_to\": null when the message is not a reply)");
        }
        DecodeError::Field { event, reason }
    })
}

/// Parse a text frame into the wire enum, naming the event and field of any error.
pub fn parse(text: &str) -> Result<ClientEvent, DecodeError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(DecodeError::NotObject(dialect_kit::json::kind(&value)));
    };
    let ty = match map.remove("type") {
        None => return Err(DecodeError::MissingType),
        Some(Value::String(s)) => s,
        Some(other) => return Err(DecodeError::TypeNotString(dialect_kit::json::kind(&other))),
    };
    let body = map.remove("content");
    Ok(match ty.as_str() {
        "new_message" => ClientEvent::NewMessage(content("new_message", body)?),
        "user_typing" => ClientEvent::UserTyping(content("user_typing", body)?),
        "message_read" => ClientEvent::MessageRead(content("message_read", body)?),
        "delete_message" => ClientEvent::DeleteMessage(content("delete_message", body)?),
        "set_online" => ClientEvent::SetOnline,
        "set_offline" => ClientEvent::SetOffline,
        "user_online" => ClientEvent::UserOnline,
        "user_offline" => ClientEvent::UserOffline,
        _ => return Err(DecodeError::UnknownType(ty)),
    })
}

/// Turn a wire event into a request, resolving chat ids.
pub fn to_request(ev: ClientEvent) -> Result<Request, DecodeError> {
    Ok(match ev {
        ClientEvent::NewMessage(m) => Request::Send {
            chat: Chat::from_wire("new_message", m.chat_type, &m.chat_id)?,
            text: m.message,
            reply_to: m.reply_to.map(|id| MessageId(id.0)),
        },
        ClientEvent::UserTyping(c) => Request::Typing {
            chat: Chat::from_wire("user_typing", c.chat_type, &c.chat_id)?,
        },
        ClientEvent::MessageRead(r) => Request::Read {
            chat: Chat::from_wire("message_read", r.chat_type, &r.chat_id)?,
            message: MessageId(r.message_id.0),
        },
        ClientEvent::DeleteMessage(r) => Request::Delete {
            chat: Chat::from_wire("delete_message", r.chat_type, &r.chat_id)?,
            message: MessageId(r.message_id.0),
        },
        ClientEvent::SetOnline => Request::Presence {
            online: true,
            names: PresenceNames::Set,
        },
        ClientEvent::SetOffline => Request::Presence {
            online: false,
            names: PresenceNames::Set,
        },
        ClientEvent::UserOnline => Request::Presence {
            online: true,
            names: PresenceNames::User,
        },
        ClientEvent::UserOffline => Request::Presence {
            online: false,
            names: PresenceNames::User,
        },
    })
}

/// Decode a text frame into a request.
pub fn decode(text: &str) -> Result<Request, DecodeError> {
    to_request(parse(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dec(v: Value) -> Result<Request, DecodeError> {
        decode(&v.to_string())
    }

    fn err(v: Value) -> String {
        match dec(v.clone()) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("{v} decoded as {r:?}"),
        }
    }

    const D12_23: Chat = Chat::Direct {
        low: UserId(12),
        high: UserId(23),
    };

    #[test]
    fn new_message_direct_with_reply() {
        let r = dec(json!({"type": "new_message", "content": {
            "chat_type": "direct", "chat_id": "12_23", "message": "hello world", "reply_to": 54}}));
        assert_eq!(
            r,
            Ok(Request::Send {
                chat: D12_23,
                text: "hello world".into(),
                reply_to: Some(MessageId(54)),
            })
        );
    }

    #[test]
    fn new_message_project_null_reply() {
        let r = dec(json!({"type": "new_message", "content": {
            "chat_type": "project", "chat_id": 7, "message": "hi", "reply_to": null}}));
        assert_eq!(
            r,
            Ok(Request::Send {
                chat: Chat::Project(7),
                text: "hi".into(),
                reply_to: None,
            })
        );
    }

    #[test]
    fn numeric_strings_are_accepted_for_project_ids_and_message_ids() {
        let r = dec(json!({"type": "new_message", "content": {
            "chat_type": "project", "chat_id": "7", "message": "hi", "reply_to": "3"}}));
        assert_eq!(
            r,
            Ok(Request::Send {
                chat: Chat::Project(7),
                text: "hi".into(),
                reply_to: Some(MessageId(3)),
            })
        );
        let r = dec(json!({"type": "message_read", "content": {
            "chat_type": "direct", "chat_id": "1_2", "message_id": "9"}}));
        assert_eq!(
            r,
            Ok(Request::Read {
                chat: Chat::Direct {
                    low: UserId(1),
                    high: UserId(2)
                },
                message: MessageId(9),
            })
        );
    }

    #[test]
    fn group_extension() {
        let r =
            dec(json!({"type": "user_typing", "content": {"chat_type": "group", "chat_id": 5}}));
        assert_eq!(
            r,
            Ok(Request::Typing {
                chat: Chat::Group(RoomId(5))
            })
        );
        let r =
            dec(json!({"type": "user_typing", "content": {"chat_type": "group", "chat_id": "5"}}));
        assert_eq!(
            r,
            Ok(Request::Typing {
                chat: Chat::Group(RoomId(5))
            })
        );
        assert!(err(
            json!({"type": "user_typing", "content": {"chat_type": "group", "chat_id": "x"}})
        )
        .contains("group chat id is the integer id"));
    }

    #[test]
    fn every_other_event() {
        assert_eq!(
            dec(
                json!({"type": "user_typing", "content": {"chat_type": "direct", "chat_id": "12_23"}})
            ),
            Ok(Request::Typing { chat: D12_23 })
        );
        assert_eq!(
            dec(
                json!({"type": "message_read", "content": {"chat_type": "project", "chat_id": 3, "message_id": 10}})
            ),
            Ok(Request::Read {
                chat: Chat::Project(3),
                message: MessageId(10)
            })
        );
        assert_eq!(
            dec(
                json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "12_23", "message_id": 11}})
            ),
            Ok(Request::Delete {
                chat: D12_23,
                message: MessageId(11)
            })
        );
        assert_eq!(
            dec(json!({"type": "set_online"})),
            Ok(Request::Presence {
                online: true,
                names: PresenceNames::Set
            })
        );
        assert_eq!(
            dec(json!({"type": "set_online", "content": {}})),
            Ok(Request::Presence {
                online: true,
                names: PresenceNames::Set
            })
        );
        assert_eq!(
            dec(json!({"type": "set_offline", "content": null})),
            Ok(Request::Presence {
                online: false,
                names: PresenceNames::Set
            })
        );
        assert_eq!(
            dec(json!({"type": "set_offline", "content": {"anything": 1}})),
            Ok(Request::Presence {
                online: false,
                names: PresenceNames::Set
            })
        );
    }

    #[test]
    fn presence_under_the_prose_names() {
        assert_eq!(
            dec(json!({"type": "user_online"})),
            Ok(Request::Presence {
                online: true,
                names: PresenceNames::User
            })
        );
        assert_eq!(
            dec(json!({"type": "user_offline", "content": {}})),
            Ok(Request::Presence {
                online: false,
                names: PresenceNames::User
            })
        );
        assert_eq!(
            dec(json!({"type": "user_offline"})).map(|r| r.event()),
            Ok("user_offline")
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let r = dec(json!({"type": "user_typing", "extra": 1, "content": {
            "chat_type": "direct", "chat_id": "12_23", "foo": "bar"}}));
        assert_eq!(r, Ok(Request::Typing { chat: D12_23 }));
    }

    #[test]
    fn request_event_names_match_wire_types() {
        for ty in ClientEvent::TYPES {
            let content = match ty {
                "new_message" => {
                    json!({"chat_type": "project", "chat_id": 1, "message": "m", "reply_to": null})
                }
                "message_read" | "delete_message" => {
                    json!({"chat_type": "project", "chat_id": 1, "message_id": 1})
                }
                _ => json!({"chat_type": "project", "chat_id": 1}),
            };
            let r = dec(json!({"type": ty, "content": content})).expect(ty);
            assert_eq!(r.event(), ty);
        }
    }

    #[test]
    fn hand_dispatch_agrees_with_the_derived_enum() {
        let frames = [
            json!({"type": "new_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message": "x", "reply_to": null}}),
            json!({"type": "new_message", "content": {"chat_type": "project", "chat_id": 4, "message": "x", "reply_to": 3}}),
            json!({"type": "user_typing", "content": {"chat_type": "direct", "chat_id": "1_2"}}),
            json!({"type": "message_read", "content": {"chat_type": "project", "chat_id": "4", "message_id": 2}}),
            json!({"type": "delete_message", "content": {"chat_type": "group", "chat_id": 9, "message_id": "2"}}),
            json!({"type": "set_online"}),
            json!({"type": "set_offline"}),
            json!({"type": "user_online"}),
            json!({"type": "user_offline"}),
        ];
        for f in frames {
            let derived: ClientEvent = serde_json::from_value(f.clone()).expect("derived");
            assert_eq!(parse(&f.to_string()), Ok(derived.clone()), "{f}");
            // And what the enum serializes is what it parses.
            let back = wire::to_json(&derived);
            assert_eq!(parse(&back), Ok(derived), "{back}");
        }
    }

    #[test]
    fn malformed_frames() {
        assert!(matches!(decode("not json"), Err(DecodeError::NotJson(_))));
        assert!(matches!(decode(""), Err(DecodeError::NotJson(_))));
        assert!(matches!(
            decode("{\"type\": \"set_online\""),
            Err(DecodeError::NotJson(_))
        ));
        assert_eq!(decode("[1,2]"), Err(DecodeError::NotObject("an array")));
        assert_eq!(
            decode("\"new_message\""),
            Err(DecodeError::NotObject("a string"))
        );
        assert_eq!(decode("null"), Err(DecodeError::NotObject("null")));
        assert_eq!(decode("{}"), Err(DecodeError::MissingType));
        assert_eq!(decode("{\"content\": {}}"), Err(DecodeError::MissingType));
        assert_eq!(
            decode("{\"type\": 1}"),
            Err(DecodeError::TypeNotString("a number"))
        );
        assert_eq!(
            decode("{\"type\": \"send_message\"}"),
            Err(DecodeError::UnknownType("send_message".into()))
        );
        assert!(err(json!({"type": "NEW_MESSAGE"})).contains("unknown event type \"NEW_MESSAGE\""));
        assert_eq!(
            decode("{\"type\": \"new_message\"}"),
            Err(DecodeError::MissingContent {
                event: "new_message"
            })
        );
        assert_eq!(
            decode("{\"type\": \"user_typing\", \"content\": \"1_2\"}"),
            Err(DecodeError::ContentNotObject {
                event: "user_typing",
                found: "a string"
            })
        );
        assert_eq!(
            decode("{\"type\": \"message_read\", \"content\": null}"),
            Err(DecodeError::ContentNotObject {
                event: "message_read",
                found: "null"
            })
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let m = err(
            json!({"type": "new_message", "content": {"chat_type": "direct", "message": "x", "reply_to": null}}),
        );
        assert_eq!(m, "new_message: missing field `chat_id`");
        let m = err(
            json!({"type": "new_message", "content": {"chat_type": "direct", "chat_id": "1_2", "reply_to": null}}),
        );
        assert_eq!(m, "new_message: missing field `message`");
        let m = err(
            json!({"type": "new_message", "content": {"chat_id": "1_2", "message": "x", "reply_to": null}}),
        );
        assert_eq!(m, "new_message: missing field `chat_type`");
        let m = err(
            json!({"type": "new_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message": "x"}}),
        );
        assert!(
            m.starts_with("new_message: missing field `reply_to`"),
            "{m}"
        );
        assert!(m.contains("null"), "{m}");
        let m = err(
            json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2"}}),
        );
        assert_eq!(m, "delete_message: missing field `message_id`");
        let m = err(
            json!({"type": "message_read", "content": {"chat_type": "direct", "chat_id": "1_2"}}),
        );
        assert_eq!(m, "message_read: missing field `message_id`");
        let m = err(json!({"type": "user_typing", "content": {"chat_type": "direct"}}));
        assert_eq!(m, "user_typing: missing field `chat_id`");
    }

    #[test]
    fn wrong_types_are_named() {
        let m = err(
            json!({"type": "new_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message": 5, "reply_to": null}}),
        );
        assert!(
            m.starts_with("new_message: `message`: invalid type: integer `5`"),
            "{m}"
        );
        let m = err(
            json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": true}}),
        );
        assert!(
            m.starts_with("delete_message: `message_id`: invalid type: boolean `true`"),
            "{m}"
        );
        assert!(m.contains("a message id (an integer)"), "{m}");
        let m = err(
            json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": 1.5}}),
        );
        assert!(
            m.contains("`message_id`: invalid type: floating point"),
            "{m}"
        );
        let m = err(
            json!({"type": "message_read", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": "abc"}}),
        );
        assert!(
            m.contains("`message_id`: invalid value: string \"abc\""),
            "{m}"
        );
        let m = err(
            json!({"type": "new_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message": "x", "reply_to": "x"}}),
        );
        assert!(m.contains("`reply_to`: invalid value"), "{m}");
        let m =
            err(json!({"type": "user_typing", "content": {"chat_type": "chat", "chat_id": "1_2"}}));
        assert!(
            m.starts_with("user_typing: `chat_type`: invalid value: string \"chat\""),
            "{m}"
        );
        assert!(m.contains("\"direct\", \"project\" or \"group\""), "{m}");
        let m = err(json!({"type": "user_typing", "content": {"chat_type": 1, "chat_id": "1_2"}}));
        assert!(
            m.starts_with("user_typing: `chat_type`: invalid type: integer `1`"),
            "{m}"
        );
        let m = err(
            json!({"type": "user_typing", "content": {"chat_type": "direct", "chat_id": [1, 2]}}),
        );
        assert!(
            m.starts_with("user_typing: `chat_id`: invalid type: sequence"),
            "{m}"
        );
        let m = err(
            json!({"type": "user_typing", "content": {"chat_type": "project", "chat_id": null}}),
        );
        assert!(
            m.starts_with("user_typing: `chat_id`: invalid type: null"),
            "{m}"
        );
        let m = err(
            json!({"type": "user_typing", "content": {"chat_type": "project", "chat_id": u64::MAX}}),
        );
        assert!(
            m.starts_with("user_typing: `chat_id`: invalid value"),
            "{m}"
        );
    }

    #[test]
    fn direct_chat_ids() {
        assert_eq!(parse_direct("12_23"), Ok(D12_23));
        assert_eq!(
            parse_direct("1_9223372036854775807"),
            Ok(Chat::Direct {
                low: UserId(1),
                high: UserId(i64::MAX)
            })
        );
        for bad in [
            "",
            "_",
            "12",
            "12_",
            "_23",
            "12-23",
            "12__23",
            "12_23_34",
            "a_b",
            "1_b",
            " 1_2",
            "1_2 ",
            "+1_2",
            "-1_2",
            "1.0_2",
            "1_99999999999999999999",
        ] {
            let e = parse_direct(bad).expect_err(bad);
            assert!(e.contains("\"<low>_<high>\""), "{bad}: {e}");
        }
        assert!(parse_direct("23_12").unwrap_err().contains("\"12_23\""));
        assert!(parse_direct("5_5").unwrap_err().contains("twice"));
    }

    #[test]
    fn chat_id_must_match_chat_type() {
        let m = err(
            json!({"type": "user_typing", "content": {"chat_type": "direct", "chat_id": 1223}}),
        );
        assert!(
            m.starts_with("user_typing: `chat_id`: a direct chat id is a string"),
            "{m}"
        );
        let m = err(
            json!({"type": "user_typing", "content": {"chat_type": "direct", "chat_id": "12:23"}}),
        );
        assert!(m.contains("two user ids joined by \"_\""), "{m}");
        let m = err(
            json!({"type": "message_read", "content": {"chat_type": "direct", "chat_id": "23_12", "message_id": 1}}),
        );
        assert!(
            m.starts_with(
                "message_read: `chat_id`: in a direct chat id the smaller user id comes first"
            ),
            "{m}"
        );
        let m = err(
            json!({"type": "new_message", "content": {"chat_type": "project", "chat_id": "12_23", "message": "x", "reply_to": null}}),
        );
        assert!(
            m.starts_with("new_message: `chat_id`: a project chat id is the integer id"),
            "{m}"
        );
        let m = err(
            json!({"type": "new_message", "content": {"chat_type": "project", "chat_id": "-4", "message": "x", "reply_to": null}}),
        );
        assert!(m.contains("project chat id"), "{m}");
    }
}
