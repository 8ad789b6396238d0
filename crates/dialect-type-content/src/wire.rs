//! The wire format, exactly as the type-content spec spells it.
//!
//! Every frame, in both directions, is `{"type": <event>, "content": {...}}`; errors are
//! `{"error": "<message>"}`. These types are *only* the JSON shapes: they carry ids as
//! plain integers and chat ids as the legacy `int | "<low>_<high>"` union, and know
//! nothing about rooms, users or policy. [`crate::decode`] turns a [`ClientEvent`] into a
//! typed [`crate::decode::Request`]; [`crate::encode`] builds [`ServerEvent`]s from core
//! events. Keeping the shapes apart from the domain means a change of wording here can
//! never change what the domain does, and the domain can grow without changing a byte
//! that legacy clients see.
//!
//! Field types that clients get wrong most often ([`ChatType`], [`ChatIdWire`],
//! [`WireId`]) have hand-written `Deserialize` impls whose error text says what was
//! expected, and each client field is deserialized through a wrapper that prefixes the
//! field's name, so a decoding error reads like
//! `` delete_message: `message_id`: invalid type: boolean `true`, expected a message id (an integer) ``.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

// ------------------------------------------------------------------ shared field types

/// `chat_type`: which kind of chat `chat_id` names.
///
/// The legacy backend had `direct` and `project`; `group` is this gateway's extension for
/// rooms of any size created through other dialects (see the spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatType {
    Direct,
    Project,
    Group,
}

impl ChatType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatType::Direct => "direct",
            ChatType::Project => "project",
            ChatType::Group => "group",
        }
    }
}

impl<'de> Deserialize<'de> for ChatType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ChatType;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"one of the strings "direct", "project" or "group""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ChatType, E> {
                match v {
                    "direct" => Ok(ChatType::Direct),
                    "project" => Ok(ChatType::Project),
                    "group" => Ok(ChatType::Group),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `chat_id`: an integer (project id, group room id) or a string (direct chats,
/// `"<low>_<high>"`; project ids are also accepted as numeric strings). Which one is
/// valid depends on `chat_type`; [`crate::decode`] checks the pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatIdWire {
    Int(i64),
    Text(String),
}

impl fmt::Display for ChatIdWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatIdWire::Int(n) => write!(f, "{n}"),
            ChatIdWire::Text(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for ChatIdWire {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ChatIdWire::Int(n) => s.serialize_i64(*n),
            ChatIdWire::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for ChatIdWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ChatIdWire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a chat id: a string "<low>_<high>" for a direct chat, an integer for a project chat"#)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ChatIdWire, E> {
                Ok(ChatIdWire::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ChatIdWire, E> {
                i64::try_from(v)
                    .map(ChatIdWire::Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ChatIdWire, E> {
                Ok(ChatIdWire::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A message id as a client sends it: an integer, or (as the legacy backend's ORM
/// lookups tolerated) a string of decimal digits — the one rule of [`dialect_kit::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WireId(pub i64);

dialect_kit::deserialize_id!(WireId, "a message id (an integer)");

pub use dialect_kit::parse_decimal;

/// Deserialize a field through `T`, prefixing any error with the field's name.
fn named<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D, field: &str) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|e| de::Error::custom(format_args!("`{field}`: {e}")))
}

macro_rules! field_fn {
    ($($fn:ident: $ty:ty = $name:literal;)*) => {
        $(fn $fn<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            named(d, $name)
        })*
    };
}

field_fn! {
    de_chat_type: ChatType = "chat_type";
    de_chat_id: ChatIdWire = "chat_id";
    de_message: String = "message";
    de_message_id: WireId = "message_id";
    // `Option` with `deserialize_with` is *not* implicitly optional: the key is
    // required, as the spec demands ("if there is none, you must send None").
    de_reply_to: Option<WireId> = "reply_to";
}

// ------------------------------------------------------------------ client → server

/// `new_message` content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    #[serde(deserialize_with = "de_chat_type")]
    pub chat_type: ChatType,
    #[serde(deserialize_with = "de_chat_id")]
    pub chat_id: ChatIdWire,
    #[serde(deserialize_with = "de_message")]
    pub message: String,
    /// Required key; `null` when the message is not a reply.
    #[serde(deserialize_with = "de_reply_to")]
    pub reply_to: Option<WireId>,
}

/// `user_typing` content: just the chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRef {
    #[serde(deserialize_with = "de_chat_type")]
    pub chat_type: ChatType,
    #[serde(deserialize_with = "de_chat_id")]
    pub chat_id: ChatIdWire,
}

/// `message_read` and `delete_message` content: a chat and a message of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    #[serde(deserialize_with = "de_chat_type")]
    pub chat_type: ChatType,
    #[serde(deserialize_with = "de_chat_id")]
    pub chat_id: ChatIdWire,
    #[serde(deserialize_with = "de_message_id")]
    pub message_id: WireId,
}

/// A frame a client sends. This enum is the contract; [`ClientEvent::TYPES`] lists its
/// tags. (Decoding goes through [`crate::decode`], which dispatches on `type` by hand to
/// name the failing event and field in its errors; a unit test pins that it accepts
/// exactly what this derived `Deserialize` accepts on well-formed frames.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "content", rename_all = "snake_case")]
pub enum ClientEvent {
    NewMessage(NewMessage),
    UserTyping(ChatRef),
    MessageRead(MessageRef),
    DeleteMessage(MessageRef),
    /// No parameters; any `content` is ignored.
    SetOnline,
    /// No parameters; any `content` is ignored.
    SetOffline,
    /// `set_online` as the seed's prose calls it ("general events … user_online and
    /// user_offline"); the same request.
    UserOnline,
    /// `set_offline` under its prose name.
    UserOffline,
}

impl ClientEvent {
    /// Every `type` a client may send.
    pub const TYPES: [&'static str; 8] = [
        "new_message",
        "user_typing",
        "message_read",
        "delete_message",
        "set_online",
        "set_offline",
        "user_online",
        "user_offline",
    ];
}

/// Which names a connection uses for presence: the seed's `EventType` values
/// (`set_online` / `set_offline`, the default) or the names of its prose
/// (`user_online` / `user_offline`). A connection is answered in the names it used
/// last, so a client written from the prose hears the names it knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PresenceNames {
    #[default]
    Set,
    User,
}

impl PresenceNames {
    /// The `type` of a presence event in these names.
    pub fn event(self, online: bool) -> &'static str {
        match (self, online) {
            (PresenceNames::Set, true) => "set_online",
            (PresenceNames::Set, false) => "set_offline",
            (PresenceNames::User, true) => "user_online",
            (PresenceNames::User, false) => "user_offline",
        }
    }
}

// ------------------------------------------------------------------ server → client

/// An attachment of a message (sent through another dialect), as a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLink {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub content_type: String,
    pub size: i64,
}

/// `new_message` push content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePush {
    pub message_id: i64,
    pub chat_id: ChatIdWire,
    pub chat_type: ChatType,
    pub author_id: i64,
    /// The text, followed by one line per attachment URL (see the spec).
    pub text: String,
    /// RFC 3339, UTC, milliseconds: `2024-05-01T12:00:00.123Z`.
    pub created_at: String,
    pub reply_to: Option<i64>,
    /// Extension: attachments as structured links; empty for plain text messages.
    pub files: Vec<FileLink>,
}

/// `user_typing` push content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingPush {
    pub chat_type: ChatType,
    pub chat_id: ChatIdWire,
    pub user_id: i64,
    /// When the indicator should disappear unless refreshed (RFC 3339, UTC).
    pub end_time: String,
}

/// `message_read` push content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPush {
    pub chat_type: ChatType,
    pub chat_id: ChatIdWire,
    pub user_id: i64,
    pub message_id: i64,
}

/// `delete_message` push content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletePush {
    pub chat_type: ChatType,
    pub chat_id: ChatIdWire,
    pub message_id: i64,
}

/// `set_online` / `set_offline` push content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresencePush {
    pub user_id: i64,
}

/// A frame the server pushes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "content", rename_all = "snake_case")]
pub enum ServerEvent {
    NewMessage(MessagePush),
    UserTyping(TypingPush),
    MessageRead(ReadPush),
    DeleteMessage(DeletePush),
    SetOnline(PresencePush),
    SetOffline(PresencePush),
    /// `set_online` for a connection that speaks the prose names ([`PresenceNames`]).
    UserOnline(PresencePush),
    /// `set_offline` in the prose names.
    UserOffline(PresencePush),
}

/// The answer to a frame the server could not act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub error: String,
}

/// Serialize a wire value. These types have only string keys and plain values, so
/// serialization cannot fail; should it ever, the frame is dropped with a log line
/// rather than a panic.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "type-content: could not serialize a frame");
        String::new()
    })
}
