//! Decoding: one text frame in, a typed [`Command`] (with the `request_id` and `action`
//! to echo) or a [`Rejected`] reply out.
//!
//! The checks run in the order a djangochannelsrestframework consumer meets them, so
//! each bad input gets the status the legacy backend would have given it (or, where the
//! backend crashed and closed the socket, the status DRF would give it):
//!
//! 1. not JSON → 400 `JSON parse error - …` (DRF's `JSONParser` wording);
//! 2. not an object → 400 `Invalid data. Expected a dictionary, but got list.`;
//! 3. `action` missing, not a string, or not an action of this endpoint → 405
//!    `Method "<action>" not allowed.` (DRF `MethodNotAllowed`);
//! 4. fields missing or of the wrong type → 400 with one DRF field-error object
//!    naming every bad field.
//!
//! Whatever fails, the reply echoes `request_id` and `action` when the frame was an
//! object, so a client can still correlate it.

use crate::render::Failure;
use crate::wire::{self, actions, Field, Request};
use crate::Endpoint;
use chat_core::{MessageId, RoomId};
use serde_json::{Map, Value};

/// DRF: a required field is absent.
pub const REQUIRED: &str = "This field is required.";
/// DRF: a field is `null` and may not be.
pub const NOT_NULL: &str = "This field may not be null.";
/// DRF `CharField`: empty or only whitespace.
pub const NOT_BLANK: &str = "This field may not be blank.";
/// DRF `ListField(allow_empty=False)`.
pub const NOT_EMPTY_LIST: &str = "This list may not be empty.";

/// What a request asks for, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    List,
    JoinRoom { room: RoomId },
    LeaveRoom,
    CreateMessage { text: String },
    EditMessage { message: MessageId, text: String },
    DeleteMessages { messages: Vec<MessageId> },
    CurrentRoomInfo,
}

impl Command {
    /// The action's wire name.
    pub fn name(&self) -> &'static str {
        use crate::wire::actions;
        match self {
            Command::List => actions::LIST,
            Command::JoinRoom { .. } => actions::JOIN_ROOM,
            Command::LeaveRoom => actions::LEAVE_ROOM,
            Command::CreateMessage { .. } => actions::CREATE_MESSAGE,
            Command::EditMessage { .. } => actions::EDIT_MESSAGE,
            Command::DeleteMessages { .. } => actions::DELETE_MESSAGES,
            Command::CurrentRoomInfo => actions::CURRENT_ROOM_INFO,
        }
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Echoed verbatim in the reply (`null` when absent).
    pub request_id: Value,
    /// The `action` as sent, echoed verbatim in the reply.
    pub action: Value,
    pub command: Command,
}

/// A request refused before it reached the domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub request_id: Value,
    pub action: Value,
    pub failure: Failure,
}

/// Decode a text frame for `endpoint`.
pub fn decode(text: &str, endpoint: Endpoint) -> Result<Frame, Rejected> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => decode_value(v, endpoint),
        Err(e) => Err(Rejected {
            request_id: Value::Null,
            action: Value::Null,
            failure: Failure::bad_request(format!("JSON parse error - {e}")),
        }),
    }
}

/// Decode a parsed frame for `endpoint`.
pub fn decode_value(v: Value, endpoint: Endpoint) -> Result<Frame, Rejected> {
    let Value::Object(obj) = v else {
        return Err(Rejected {
            request_id: Value::Null,
            action: Value::Null,
            failure: Failure::bad_request(format!(
                "Invalid data. Expected a dictionary, but got {}.",
                wire::python_type_name(&v)
            )),
        });
    };
    let request_id = obj.get("request_id").cloned().unwrap_or(Value::Null);
    let action = obj.get("action").cloned().unwrap_or(Value::Null);
    let reject = |failure: Failure| Rejected {
        request_id: request_id.clone(),
        action: action.clone(),
        failure,
    };

    let known = action
        .as_str()
        .is_some_and(|a| actions::ALL.contains(&a) && endpoint.offers(a));
    if !known {
        return Err(reject(Failure::method_not_allowed(&action)));
    }
    let request: Request = match serde_json::from_value(Value::Object(obj)) {
        Ok(r) => r,
        // Unreachable with the lenient `Field`s, but never trust that with input.
        Err(e) => return Err(reject(Failure::bad_request(e.to_string()))),
    };
    match command_of(request) {
        Ok(command) => Ok(Frame {
            request_id,
            action,
            command,
        }),
        Err(fields) => Err(reject(Failure::fields(fields))),
    }
}

/// Check every field of a request; all bad fields are reported together, as a DRF
/// serializer does.
fn command_of(request: Request) -> Result<Command, Map<String, Value>> {
    let mut errs = FieldErrors::default();
    let command = match request {
        Request::List => Some(Command::List),
        Request::LeaveRoom => Some(Command::LeaveRoom),
        Request::CurrentRoomInfo => Some(Command::CurrentRoomInfo),
        Request::JoinRoom { room_pk } => errs
            .take("room_pk", room_pk)
            .map(|pk| Command::JoinRoom { room: RoomId(pk) }),
        Request::CreateMessage { msg_text } => errs
            .take_text("msg_text", msg_text)
            .map(|text| Command::CreateMessage { text }),
        Request::EditMessage {
            msg_id,
            edited_msg_text,
        } => {
            let id = errs.take("msg_id", msg_id);
            let text = errs.take_text("edited_msg_text", edited_msg_text);
            id.zip(text).map(|(id, text)| Command::EditMessage {
                message: MessageId(id),
                text,
            })
        }
        Request::DeleteMessages { msg_id_list } => {
            let ids = errs.take("msg_id_list", msg_id_list);
            match ids {
                Some(ids) if ids.is_empty() => {
                    errs.add("msg_id_list", Value::from(vec![NOT_EMPTY_LIST]));
                    None
                }
                Some(ids) => Some(Command::DeleteMessages {
                    messages: ids.into_iter().map(MessageId).collect(),
                }),
                None => None,
            }
        }
    };
    match command {
        Some(c) if errs.0.is_empty() => Ok(c),
        _ => Err(errs.0),
    }
}

/// DRF field errors being collected: field name → detail.
#[derive(Default)]
struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    fn add(&mut self, field: &str, detail: Value) {
        self.0.insert(field.to_string(), detail);
    }

    fn take<T>(&mut self, field: &str, f: Field<T>) -> Option<T> {
        match f {
            Field::Given(t) => Some(t),
            Field::Missing => {
                self.add(field, Value::from(vec![REQUIRED]));
                None
            }
            Field::Null => {
                self.add(field, Value::from(vec![NOT_NULL]));
                None
            }
            Field::Wrong(detail) => {
                self.add(field, detail);
                None
            }
        }
    }

    /// A text field: also refuses blank text, as DRF's `CharField` does. The text is
    /// kept as sent (not trimmed).
    fn take_text(&mut self, field: &str, f: Field<String>) -> Option<String> {
        let text = self.take(field, f)?;
        if text.trim().is_empty() {
            self.add(field, Value::from(vec![NOT_BLANK]));
            return None;
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> Frame {
        decode(text, Endpoint::User).expect("decodes")
    }

    fn err(text: &str, endpoint: Endpoint) -> Rejected {
        decode(text, endpoint).expect_err("is refused")
    }

    #[test]
    fn every_action_decodes_with_spec_fields() {
        let f = ok(r#"{"action":"list","request_id":1500000}"#);
        assert_eq!(f.command, Command::List);
        assert_eq!(f.request_id, json!(1500000));
        assert_eq!(f.action, json!("list"));
        assert_eq!(
            ok(r#"{"action":"join_room","room_pk":1,"request_id":1}"#).command,
            Command::JoinRoom { room: RoomId(1) }
        );
        assert_eq!(
            ok(r#"{"action":"leave_room","request_id":1}"#).command,
            Command::LeaveRoom
        );
        assert_eq!(
            ok(r#"{"action":"create_message","msg_text":"hello","request_id":1}"#).command,
            Command::CreateMessage {
                text: "hello".into()
            }
        );
        assert_eq!(
            ok(r#"{"action":"edit_message","msg_id":1,"edited_msg_text":"edited_text","request_id":1}"#).command,
            Command::EditMessage {
                message: MessageId(1),
                text: "edited_text".into()
            }
        );
        assert_eq!(
            ok(r#"{"action":"delete_messages","msg_id_list":[1,2],"request_id":1}"#).command,
            Command::DeleteMessages {
                messages: vec![MessageId(1), MessageId(2)]
            }
        );
        assert_eq!(
            ok(r#"{"action":"current_room_info","request_id":1}"#).command,
            Command::CurrentRoomInfo
        );
    }

    #[test]
    fn request_id_is_any_json_value_or_null() {
        assert_eq!(ok(r#"{"action":"list"}"#).request_id, Value::Null);
        assert_eq!(
            ok(r#"{"action":"list","request_id":"abc"}"#).request_id,
            json!("abc")
        );
        assert_eq!(
            ok(r#"{"action":"list","request_id":{"a":[1]}}"#).request_id,
            json!({"a":[1]})
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert_eq!(
            ok(r#"{"action":"leave_room","room_pk":"x","extra":[1],"request_id":2}"#).command,
            Command::LeaveRoom
        );
    }

    #[test]
    fn non_json_and_non_objects_are_400() {
        let r = err("not json", Endpoint::User);
        assert_eq!(r.failure.status, 400);
        assert_eq!(r.request_id, Value::Null);
        assert_eq!(r.action, Value::Null);
        assert!(r.failure.errors[0]
            .as_str()
            .is_some_and(|s| s.starts_with("JSON parse error - ")));
        let r = err("[1,2]", Endpoint::User);
        assert_eq!(r.failure.status, 400);
        assert_eq!(
            r.failure.errors,
            vec![json!("Invalid data. Expected a dictionary, but got list.")]
        );
        let r = err("\"list\"", Endpoint::User);
        assert_eq!(
            r.failure.errors,
            vec![json!("Invalid data. Expected a dictionary, but got str.")]
        );
    }

    #[test]
    fn missing_unknown_or_non_string_action_is_405() {
        let r = err(r#"{"request_id":7}"#, Endpoint::User);
        assert_eq!(r.failure.status, 405);
        assert_eq!(
            r.failure.errors,
            vec![json!("Method \"None\" not allowed.")]
        );
        assert_eq!(r.request_id, json!(7));
        assert_eq!(r.action, Value::Null);
        let r = err(r#"{"action":"fly","request_id":7}"#, Endpoint::User);
        assert_eq!(r.failure.status, 405);
        assert_eq!(r.failure.errors, vec![json!("Method \"fly\" not allowed.")]);
        assert_eq!(r.action, json!("fly"));
        let r = err(r#"{"action":5}"#, Endpoint::User);
        assert_eq!(r.failure.errors, vec![json!("Method \"5\" not allowed.")]);
        assert_eq!(r.action, json!(5));
    }

    #[test]
    fn current_room_info_is_not_an_admin_action() {
        assert!(decode(r#"{"action":"current_room_info"}"#, Endpoint::User).is_ok());
        let r = err(
            r#"{"action":"current_room_info","request_id":1}"#,
            Endpoint::Admin,
        );
        assert_eq!(r.failure.status, 405);
        assert_eq!(
            r.failure.errors,
            vec![json!("Method \"current_room_info\" not allowed.")]
        );
        assert!(decode(r#"{"action":"list"}"#, Endpoint::Admin).is_ok());
    }

    #[test]
    fn field_errors_are_drf_shaped() {
        let r = err(r#"{"action":"join_room","request_id":1}"#, Endpoint::User);
        assert_eq!(r.failure.status, 400);
        assert_eq!(r.failure.errors, vec![json!({"room_pk": [REQUIRED]})]);
        for bad in [
            r#""1.5""#,
            r#""x""#,
            r#""""#,
            r#""  ""#,
            "true",
            r#""1_000""#,
            r#""+""#,
        ] {
            let r = err(
                &format!(r#"{{"action":"join_room","room_pk":{bad}}}"#),
                Endpoint::User,
            );
            assert_eq!(
                r.failure.errors,
                vec![json!({"room_pk": [wire::INVALID_INTEGER]})],
                "{bad}"
            );
        }
        let r = err(r#"{"action":"join_room","room_pk":1.5}"#, Endpoint::User);
        assert_eq!(
            r.failure.errors,
            vec![json!({"room_pk": [wire::INVALID_INTEGER]})]
        );
        let r = err(r#"{"action":"join_room","room_pk":null}"#, Endpoint::User);
        assert_eq!(r.failure.errors, vec![json!({"room_pk": [NOT_NULL]})]);
        let r = err(r#"{"action":"create_message"}"#, Endpoint::User);
        assert_eq!(r.failure.errors, vec![json!({"msg_text": [REQUIRED]})]);
        let r = err(
            r#"{"action":"create_message","msg_text":5}"#,
            Endpoint::User,
        );
        assert_eq!(
            r.failure.errors,
            vec![json!({"msg_text": [wire::INVALID_STRING]})]
        );
        let r = err(
            r#"{"action":"create_message","msg_text":"  \n"}"#,
            Endpoint::User,
        );
        assert_eq!(r.failure.errors, vec![json!({"msg_text": [NOT_BLANK]})]);
        let r = err(r#"{"action":"edit_message","msg_id":"x"}"#, Endpoint::User);
        assert_eq!(
            r.failure.errors,
            vec![json!({"msg_id": [wire::INVALID_INTEGER], "edited_msg_text": [REQUIRED]})]
        );
        let r = err(
            r#"{"action":"delete_messages","msg_id_list":1}"#,
            Endpoint::User,
        );
        assert_eq!(
            r.failure.errors,
            vec![json!({"msg_id_list": ["Expected a list of items but got type \"int\"."]})]
        );
        let r = err(
            r#"{"action":"delete_messages","msg_id_list":[1,"a",null]}"#,
            Endpoint::User,
        );
        assert_eq!(
            r.failure.errors,
            vec![
                json!({"msg_id_list": {"1": [wire::INVALID_INTEGER], "2": [wire::INVALID_INTEGER]}})
            ]
        );
        let r = err(
            r#"{"action":"delete_messages","msg_id_list":[]}"#,
            Endpoint::Admin,
        );
        assert_eq!(
            r.failure.errors,
            vec![json!({"msg_id_list": [NOT_EMPTY_LIST]})]
        );
        assert_eq!(r.action, json!("delete_messages"));
    }

    #[test]
    fn integer_fields_take_digit_strings_as_drf_does() {
        assert_eq!(
            ok(r#"{"action":"join_room","room_pk":"1"}"#).command,
            Command::JoinRoom { room: RoomId(1) }
        );
        assert_eq!(
            ok(r#"{"action":"join_room","room_pk":" 42\n"}"#).command,
            Command::JoinRoom { room: RoomId(42) }
        );
        assert_eq!(
            ok(r#"{"action":"edit_message","msg_id":"7","edited_msg_text":"x"}"#).command,
            Command::EditMessage {
                message: MessageId(7),
                text: "x".into()
            }
        );
        assert_eq!(
            ok(r#"{"action":"delete_messages","msg_id_list":["1", 2, " 3 "]}"#).command,
            Command::DeleteMessages {
                messages: vec![MessageId(1), MessageId(2), MessageId(3)]
            }
        );
        let too_big = format!(r#"{{"action":"join_room","room_pk":"{}"}}"#, "9".repeat(30));
        let r = err(&too_big, Endpoint::User);
        assert_eq!(
            r.failure.errors,
            vec![json!({"room_pk": [wire::INVALID_INTEGER]})]
        );
    }

    #[test]
    fn text_is_kept_as_sent() {
        assert_eq!(
            ok(r#"{"action":"create_message","msg_text":"  hi  "}"#).command,
            Command::CreateMessage {
                text: "  hi  ".into()
            }
        );
    }
}
