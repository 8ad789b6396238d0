//! The wire shapes of the dialect, spelled exactly as the legacy clients send and
//! expect them. Nothing here knows the domain: [`crate::decode`] turns a [`Request`]
//! into a typed command, and [`crate::render`] turns domain records into the outbound
//! structs below.
//!
//! Inbound fields are [`Field`]s rather than bare values because a
//! djangochannelsrestframework backend answers a bad field with a DRF validation error
//! naming that field (`{"room_pk": ["A valid integer is required."]}`), which a plain
//! `serde` failure ("invalid type: string, expected i64") cannot say. A `Field` records
//! what arrived — absent, `null`, the wrong type, or a good value — and decoding turns
//! the first three into DRF field errors.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The spelling of every action, as it appears in `action`.
pub mod actions {
    pub const LIST: &str = "list";
    pub const JOIN_ROOM: &str = "join_room";
    pub const LEAVE_ROOM: &str = "leave_room";
    pub const CREATE_MESSAGE: &str = "create_message";
    pub const EDIT_MESSAGE: &str = "edit_message";
    pub const DELETE_MESSAGES: &str = "delete_messages";
    pub const CURRENT_ROOM_INFO: &str = "current_room_info";

    /// Every action of the user endpoint; the admin endpoint has all but
    /// `current_room_info`.
    pub const ALL: [&str; 7] = [
        LIST,
        JOIN_ROOM,
        LEAVE_ROOM,
        CREATE_MESSAGE,
        EDIT_MESSAGE,
        DELETE_MESSAGES,
        CURRENT_ROOM_INFO,
    ];
}

/// A client request. `request_id` travels beside the action in the same object; it is
/// read separately (it may be any JSON value) and is ignored here, like any other key
/// an action does not know.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Request {
    List,
    JoinRoom {
        #[serde(default)]
        room_pk: Field<i64>,
    },
    LeaveRoom,
    CreateMessage {
        #[serde(default)]
        msg_text: Field<String>,
    },
    EditMessage {
        #[serde(default)]
        msg_id: Field<i64>,
        #[serde(default)]
        edited_msg_text: Field<String>,
    },
    DeleteMessages {
        #[serde(default)]
        msg_id_list: Field<Vec<i64>>,
    },
    CurrentRoomInfo,
}

/// One request field as it arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T> {
    /// The key was absent.
    #[default]
    Missing,
    /// The key was `null`.
    Null,
    /// The value had the wrong type or shape; the DRF error detail for the field
    /// (a list of messages, or for a list field a map of item index to messages).
    Wrong(Value),
    Given(T),
}

impl<'de, T: WireValue> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => Field::Null,
            v => match T::from_wire(v) {
                Ok(t) => Field::Given(t),
                Err(detail) => Field::Wrong(detail),
            },
        })
    }
}

/// A value type a request field can have, with DRF's message for a wrong one.
pub trait WireValue: Sized {
    /// Convert a non-null JSON value, or return the DRF error detail.
    fn from_wire(v: Value) -> Result<Self, Value>;
}

/// DRF `IntegerField`: "A valid integer is required."
pub const INVALID_INTEGER: &str = "A valid integer is required.";
/// DRF `CharField`: "Not a valid string."
pub const INVALID_STRING: &str = "Not a valid string.";

/// Longest string DRF's `IntegerField` looks at (`MAX_STRING_LENGTH`); longer is
/// refused without parsing.
pub const MAX_INTEGER_STRING: usize = 1000;

/// DRF `IntegerField.to_internal_value`, as far as a legacy client relies on it: a JSON
/// integer, or a string that is an integer once the surrounding whitespace is stripped
/// (`"1"`, `" 42 "`, `"-3"`): ASCII digits with an optional sign, within `i64`.
/// Anything else (`"1.5"`, `"x"`, `""`, `true`, `1.5`) is refused. Unlike Python's
/// `int()`, digit group underscores (`"1_000"`) and non-ASCII digits are refused too
/// (see protocol-specs/action-request/README.md, "Differences").
pub fn drf_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if s.len() <= MAX_INTEGER_STRING => {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse::<i64>().ok()
        }
        _ => None,
    }
}

impl WireValue for i64 {
    fn from_wire(v: Value) -> Result<Self, Value> {
        drf_integer(&v).ok_or_else(|| Value::from(vec![INVALID_INTEGER]))
    }
}

impl WireValue for String {
    fn from_wire(v: Value) -> Result<Self, Value> {
        match v {
            Value::String(s) => Ok(s),
            _ => Err(Value::from(vec![INVALID_STRING])),
        }
    }
}

impl WireValue for Vec<i64> {
    /// DRF `ListField(child=IntegerField())`: a non-list is
    /// `Expected a list of items but got type "<type>".`; bad items are reported by
    /// index, `{"1": ["A valid integer is required."]}`.
    fn from_wire(v: Value) -> Result<Self, Value> {
        let Value::Array(items) = v else {
            return Err(Value::from(vec![format!(
                "Expected a list of items but got type \"{}\".",
                python_type_name(&v)
            )]));
        };
        let mut out = Vec::with_capacity(items.len());
        let mut bad = Map::new();
        for (i, item) in items.iter().enumerate() {
            match drf_integer(item) {
                Some(n) => out.push(n),
                None => {
                    bad.insert(i.to_string(), Value::from(vec![INVALID_INTEGER]));
                }
            }
        }
        if bad.is_empty() {
            Ok(out)
        } else {
            Err(Value::Object(bad))
        }
    }
}

/// The name Python gives the type a JSON value decodes to, as DRF puts it in messages.
pub fn python_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

// ---------------------------------------------------------------------- outbound

/// Every frame the server sends: a reply to a request or a push caused by another
/// connection. `errors` is empty on success; `data` is `null` on failure.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    pub errors: &'a [Value],
    pub data: T,
    /// The request's `action`, echoed verbatim (any JSON value; `null` when absent).
    pub action: &'a Value,
    pub response_status: u16,
    /// The request's `request_id`, echoed verbatim (any JSON value; `null` when absent).
    pub request_id: &'a Value,
}

/// A user object, in `participants` and a message's `user`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserOut<'a> {
    pub id: i64,
    pub username: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

/// A room object: `list` items, `join_room`, `current_room_info`, a message's `room`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomOut<'a> {
    pub pk: i64,
    pub participants: Vec<UserOut<'a>>,
    pub has_business: bool,
}

/// `create_message` data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageOut<'a> {
    pub id: i64,
    pub text: &'a str,
    pub user: UserOut<'a>,
    /// ISO 8601 in UTC with milliseconds, `2024-06-17T18:00:00.000Z`.
    pub created_at: String,
    pub room: RoomOut<'a>,
}

/// `edit_message` data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditedOut<'a> {
    pub room_id: i64,
    pub message_id: i64,
    pub message_text: &'a str,
}

/// `delete_messages` data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeletedOut {
    pub room_id: i64,
    pub messages_ids: Vec<i64>,
}

/// `leave_room` data: `{"response": "leaved room 1 successfully!"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOut {
    pub response: String,
}
