//! Encoding: domain records and outcomes into the dialect's frames.
//!
//! Every frame is the DRF envelope `{errors, data, action, response_status,
//! request_id}`. Success and failure, replies and pushes all use it, which is what
//! lets a djangochannelsrestframework client route every frame by `action` and
//! `request_id` alone.
//!
//! Errors follow DRF as djangochannelsrestframework sends them: `errors` is always a
//! list; a non-field error is a plain string (`["Not found."]`), field errors are one
//! object mapping field names to lists of messages
//! (`[{"msg_text": ["This field is required."]}]`). Core's [`ChatError`] is mapped
//! here, at the edge, with core's field names translated to the request's field names.

use crate::wire::{actions, DeletedOut, EditedOut, Envelope, MessageOut, RoomOut, UserOut};
use chat_core::{
    ChatError, Event, MessageId, MessageView, Published, RoomId, RoomView, TokenError, User,
};
use serde::Serialize;
use serde_json::{Map, Value};

/// DRF `PermissionDenied`.
pub const PERMISSION_DENIED: &str = "You do not have permission to perform this action.";
/// DRF `NotFound`.
pub const NOT_FOUND: &str = "Not found.";
/// DRF `APIException` (500).
pub const SERVER_ERROR: &str = "A server error occurred.";
/// A write action, or `current_room_info`, without a joined room (the legacy text).
pub const NOT_IN_ROOM: &str = "Action not allowed. You are not in the room!";
/// `leave_room` without a joined room (the legacy text).
pub const NOT_IN_ROOM_LEAVE: &str = "Action 'leave_room' not allowed. You are not in the room";

/// Sent if an envelope could not be serialized (never expected: every field is a
/// string, a number or a string-keyed map).
const FALLBACK: &str = r#"{"errors":["A server error occurred."],"data":null,"action":null,"response_status":500,"request_id":null}"#;

/// A failed request: the status and the `errors` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub errors: Vec<Value>,
    /// The core error code it stands for, for the command counters (not sent).
    pub code: &'static str,
}

impl Failure {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        let code = match status {
            403 => "forbidden",
            404 => "not_found",
            500 => "server_error",
            _ => "invalid",
        };
        Failure {
            status,
            errors: vec![Value::String(message.into())],
            code,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Failure::new(400, message)
    }

    /// 400 with DRF field errors, `[{"field": ["message"]}]`.
    pub fn fields(fields: Map<String, Value>) -> Self {
        Failure {
            status: 400,
            errors: vec![Value::Object(fields)],
            code: "invalid",
        }
    }

    /// 400 naming one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut m = Map::new();
        m.insert(field.into(), Value::from(vec![message.into()]));
        Failure::fields(m)
    }

    pub fn forbidden() -> Self {
        Failure::new(403, PERMISSION_DENIED)
    }

    pub fn not_found() -> Self {
        Failure::new(404, NOT_FOUND)
    }

    /// 405 `Method "<action>" not allowed.`, the action written as Python would
    /// (a missing action is `None`).
    pub fn method_not_allowed(action: &Value) -> Self {
        let name = match action {
            Value::Null => "None".to_string(),
            Value::Bool(true) => "True".to_string(),
            Value::Bool(false) => "False".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Failure::new(405, format!("Method \"{name}\" not allowed."))
    }

    /// Map a domain error for `action` (a name from [`actions`]).
    pub fn from_chat(err: &ChatError, action: &str) -> Self {
        let mut failure = Self::from_chat_error(err, action);
        failure.code = err.code();
        failure
    }

    fn from_chat_error(err: &ChatError, action: &str) -> Self {
        match err {
            ChatError::Unauthenticated(TokenError::Missing) => {
                Failure::new(403, "Authentication credentials were not provided.")
            }
            ChatError::Unauthenticated(_) => {
                Failure::new(403, "Incorrect authentication credentials.")
            }
            ChatError::Forbidden(_) => Failure::forbidden(),
            ChatError::NotFound { .. } => Failure::not_found(),
            ChatError::Invalid { field, reason } => {
                Failure::field(wire_field(action, field), reason.clone())
            }
            ChatError::TooLarge { what, size, limit } => match *what {
                "text" => Failure::field(
                    wire_field(action, what),
                    format!("Ensure this field has no more than {limit} characters."),
                ),
                _ => Failure::field(
                    wire_field(action, what),
                    format!("Too large ({size}); the limit is {limit}."),
                ),
            },
            ChatError::RateLimited { what } => {
                Failure::field(wire_field(action, what), "Request was throttled.")
            }
            ChatError::QuotaExceeded { .. } => {
                Failure::field(wire_field(action, "file"), err.to_string())
            }
            ChatError::DuplicateRoom { .. } | ChatError::Conflict(_) => {
                Failure::bad_request(err.to_string())
            }
            ChatError::Storage(_) => Failure::new(500, SERVER_ERROR),
        }
    }
}

/// The request field that a core field name stands for in `action`.
fn wire_field(action: &str, core: &str) -> String {
    let mapped = match (action, core) {
        (actions::CREATE_MESSAGE, "text") => "msg_text",
        (actions::EDIT_MESSAGE, "text") => "edited_msg_text",
        (actions::EDIT_MESSAGE, "message") => "msg_id",
        (actions::DELETE_MESSAGES, "messages" | "message") => "msg_id_list",
        (actions::JOIN_ROOM, "chat" | "room") => "room_pk",
        _ => core,
    };
    mapped.to_string()
}

// ---------------------------------------------------------------------- envelopes

fn envelope<T: Serialize>(
    data: T,
    errors: &[Value],
    action: &Value,
    status: u16,
    request_id: &Value,
) -> String {
    serde_json::to_string(&Envelope {
        errors,
        data,
        action,
        response_status: status,
        request_id,
    })
    .unwrap_or_else(|_| FALLBACK.to_string())
}

/// A successful reply or push.
pub fn success<T: Serialize>(data: T, action: &Value, status: u16, request_id: &Value) -> String {
    envelope(data, &[], action, status, request_id)
}

/// A failed reply: `data` is `null`.
pub fn failure(f: &Failure, action: &Value, request_id: &Value) -> String {
    envelope(Value::Null, &f.errors, action, f.status, request_id)
}

// ---------------------------------------------------------------------- records

pub fn user(u: &User) -> UserOut<'_> {
    UserOut {
        id: u.id.0,
        username: &u.username,
        email: &u.email,
        first_name: &u.first_name,
        last_name: &u.last_name,
    }
}

pub fn room(v: &RoomView) -> RoomOut<'_> {
    RoomOut {
        pk: v.room.id.0,
        participants: v.members.iter().map(user).collect(),
        has_business: v.room.has_business,
    }
}

pub fn message<'a>(room_view: &'a RoomView, m: &'a MessageView) -> MessageOut<'a> {
    MessageOut {
        id: m.message.id.0,
        text: &m.message.text,
        user: user(&m.author),
        created_at: dialect_kit::time::millis(&m.message.created_at),
        room: room(room_view),
    }
}

// ---------------------------------------------------------------------- room fan-out

/// The `create_message` frame, 201, for the sender and for every connection joined to
/// the room.
pub fn created(room_view: &RoomView, m: &MessageView, request_id: &Value) -> String {
    success(
        message(room_view, m),
        &Value::from(actions::CREATE_MESSAGE),
        201,
        request_id,
    )
}

/// The `edit_message` frame, 200.
pub fn edited(room_id: RoomId, m: &MessageView, request_id: &Value) -> String {
    success(
        EditedOut {
            room_id: room_id.0,
            message_id: m.message.id.0,
            message_text: &m.message.text,
        },
        &Value::from(actions::EDIT_MESSAGE),
        200,
        request_id,
    )
}

/// The `delete_messages` frame, 200.
pub fn deleted(room_id: RoomId, ids: &[MessageId], request_id: &Value) -> String {
    success(
        DeletedOut {
            room_id: room_id.0,
            messages_ids: ids.iter().map(|i| i.0).collect(),
        },
        &Value::from(actions::DELETE_MESSAGES),
        200,
        request_id,
    )
}

/// The room a connection must have joined to be shown `event`, for the events this
/// dialect has a word for; `None` for the rest (they stay silent).
pub fn shown_in_room(event: &Event) -> Option<RoomId> {
    match event {
        Event::MessageCreated { room, .. }
        | Event::MessageEdited { room, .. }
        | Event::MessagesDeleted { room, .. } => Some(room.id()),
        _ => None,
    }
}

/// The `request_id` a push carries: the sender's, when the sender spoke this dialect;
/// `null` otherwise.
pub fn origin_request_id(p: &Published) -> Value {
    p.tag_for(crate::DIALECT)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// Render an event as a push. The frame does not depend on the recipient (the
/// `request_id` is the sender's), so callers share it through
/// [`Published::rendered`].
pub fn event(p: &Published) -> Option<String> {
    let request_id = origin_request_id(p);
    match &p.event {
        Event::MessageCreated { room, message } => Some(created(room, message, &request_id)),
        Event::MessageEdited { room, message } => Some(edited(room.id(), message, &request_id)),
        Event::MessagesDeleted { room, ids, .. } => Some(deleted(room.id(), ids, &request_id)),
        _ => None,
    }
}

/// The correlation tag to carry a `request_id` in the domain event: its JSON text, or
/// none for `null`.
pub fn tag_of(request_id: &Value) -> Option<std::sync::Arc<str>> {
    match request_id {
        Value::Null => None,
        v => serde_json::to_string(v).ok().map(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::{Message, MessageKind, Origin, Room, RoomKind, UserId};
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use std::sync::Arc;

    fn ts() -> chat_core::Timestamp {
        Utc.with_ymd_and_hms(2024, 6, 17, 18, 0, 0)
            .single()
            .expect("valid time")
    }

    fn user(id: i64) -> User {
        User {
            email: format!("u{id}@example.com"),
            first_name: "First".into(),
            last_name: "Last".into(),
            created_at: ts(),
            updated_at: ts(),
            ..User::placeholder(UserId(id))
        }
    }

    fn room_view() -> Arc<RoomView> {
        Arc::new(RoomView {
            room: Room {
                id: RoomId(7),
                kind: RoomKind::Direct {
                    low: UserId(1),
                    high: UserId(2),
                },
                title: String::new(),
                has_business: true,
                created_by: None,
                created_at: ts(),
                updated_at: ts(),
            },
            members: vec![user(1), user(2)],
            watermarks: vec![(UserId(1), None), (UserId(2), None)],
        })
    }

    fn message_view(text: &str) -> Arc<MessageView> {
        Arc::new(MessageView {
            message: Message {
                id: MessageId(18),
                room_id: RoomId(7),
                author_id: UserId(1),
                kind: MessageKind::Text,
                text: text.into(),
                reply_to: None,
                created_at: ts(),
                updated_at: ts(),
                edited_at: None,
                deleted_at: None,
                attachments: Vec::new(),
            },
            author: user(1),
            is_read: false,
        })
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).expect("valid JSON")
    }

    fn user_json(id: i64) -> Value {
        json!({"id": id, "username": format!("user{id}"), "email": format!("u{id}@example.com"),
               "first_name": "First", "last_name": "Last"})
    }

    #[test]
    fn envelope_keys_and_order() {
        let s = success(json!({"a": 1}), &json!("list"), 200, &json!(1500000));
        assert_eq!(
            s,
            r#"{"errors":[],"data":{"a":1},"action":"list","response_status":200,"request_id":1500000}"#
        );
        let s = failure(&Failure::not_found(), &json!("join_room"), &Value::Null);
        assert_eq!(
            s,
            r#"{"errors":["Not found."],"data":null,"action":"join_room","response_status":404,"request_id":null}"#
        );
    }

    #[test]
    fn room_and_message_objects() {
        let v = room_view();
        assert_eq!(
            serde_json::to_value(room(&v)).expect("serializes"),
            json!({"pk": 7, "participants": [user_json(1), user_json(2)], "has_business": true})
        );
        let frame = parse(&created(&v, &message_view("hello"), &json!("r-1")));
        assert_eq!(
            frame,
            json!({
                "errors": [],
                "data": {
                    "id": 18,
                    "text": "hello",
                    "user": user_json(1),
                    "created_at": "2024-06-17T18:00:00.000Z",
                    "room": {"pk": 7, "participants": [user_json(1), user_json(2)], "has_business": true}
                },
                "action": "create_message",
                "response_status": 201,
                "request_id": "r-1"
            })
        );
    }

    #[test]
    fn edit_and_delete_frames() {
        assert_eq!(
            parse(&edited(RoomId(7), &message_view("edit"), &json!(1500000))),
            json!({"errors": [], "data": {"room_id": 7, "message_id": 18, "message_text": "edit"},
                   "action": "edit_message", "response_status": 200, "request_id": 1500000})
        );
        assert_eq!(
            parse(&deleted(RoomId(7), &[MessageId(18)], &Value::Null)),
            json!({"errors": [], "data": {"room_id": 7, "messages_ids": [18]},
                   "action": "delete_messages", "response_status": 200, "request_id": null})
        );
    }

    #[test]
    fn chat_errors_map_to_drf_statuses() {
        let f = Failure::from_chat(
            &ChatError::forbidden("admins may write only…"),
            "create_message",
        );
        assert_eq!((f.status, f.errors), (403, vec![json!(PERMISSION_DENIED)]));
        let f = Failure::from_chat(&ChatError::not_found("chat"), "join_room");
        assert_eq!((f.status, f.errors), (404, vec![json!("Not found.")]));
        let f = Failure::from_chat(
            &ChatError::invalid("text", "a message needs text or files"),
            "create_message",
        );
        assert_eq!(
            (f.status, f.errors),
            (
                400,
                vec![json!({"msg_text": ["a message needs text or files"]})]
            )
        );
        let f = Failure::from_chat(
            &ChatError::invalid("message", "the message has been deleted"),
            "edit_message",
        );
        assert_eq!(
            f.errors,
            vec![json!({"msg_id": ["the message has been deleted"]})]
        );
        let f = Failure::from_chat(&ChatError::invalid("text", "empty"), "edit_message");
        assert_eq!(f.errors, vec![json!({"edited_msg_text": ["empty"]})]);
        let f = Failure::from_chat(&ChatError::invalid("messages", "none"), "delete_messages");
        assert_eq!(f.errors, vec![json!({"msg_id_list": ["none"]})]);
        let f = Failure::from_chat(
            &ChatError::TooLarge {
                what: "text",
                size: 20,
                limit: 10,
            },
            "create_message",
        );
        assert_eq!(
            (f.status, f.errors),
            (
                400,
                vec![json!({"msg_text": ["Ensure this field has no more than 10 characters."]})]
            )
        );
        let f = Failure::from_chat(&ChatError::RateLimited { what: "typing" }, "create_message");
        assert_eq!(f.status, 400);
        let f = Failure::from_chat(&ChatError::Conflict("taken".into()), "list");
        assert_eq!((f.status, f.errors), (400, vec![json!("taken")]));
        let f = Failure::from_chat(
            &ChatError::DuplicateRoom {
                existing: RoomId(3),
            },
            "list",
        );
        assert_eq!(f.status, 400);
        let f = Failure::from_chat(&ChatError::Storage("disk on fire".into()), "list");
        assert_eq!((f.status, f.errors), (500, vec![json!(SERVER_ERROR)]));
        let f = Failure::from_chat(&ChatError::Unauthenticated(TokenError::Expired), "list");
        assert_eq!(f.status, 403);
    }

    #[test]
    fn method_not_allowed_names_the_action_like_python() {
        let msg = |v: Value| Failure::method_not_allowed(&v).errors[0].clone();
        assert_eq!(msg(Value::Null), json!("Method \"None\" not allowed."));
        assert_eq!(msg(json!(true)), json!("Method \"True\" not allowed."));
        assert_eq!(msg(json!("x")), json!("Method \"x\" not allowed."));
        assert_eq!(msg(json!(1.5)), json!("Method \"1.5\" not allowed."));
    }

    fn published(event: Event, dialect: &'static str, tag: Option<&str>) -> Published {
        Published::new(
            event,
            Some(Origin {
                conn: chat_core::ConnId(1),
                dialect,
                tag: tag.map(Into::into),
            }),
        )
    }

    #[test]
    fn events_carry_the_senders_request_id_only_from_this_dialect() {
        let v = room_view();
        let ev = || Event::MessageCreated {
            room: v.clone(),
            message: message_view("hi"),
        };
        let p = published(
            ev(),
            crate::DIALECT,
            tag_of(&json!({"k": [1, "x"]})).as_deref(),
        );
        let frame = parse(&event(&p).expect("rendered"));
        assert_eq!(frame["request_id"], json!({"k": [1, "x"]}));
        assert_eq!(frame["response_status"], json!(201));
        assert_eq!(frame["action"], json!("create_message"));
        // Another dialect's correlation tag is not a request_id.
        let p = published(ev(), "another-dialect", Some("\"key\""));
        assert_eq!(
            parse(&event(&p).expect("rendered"))["request_id"],
            Value::Null
        );
        // No origin at all.
        let p = Published::new(ev(), None);
        assert_eq!(
            parse(&event(&p).expect("rendered"))["request_id"],
            Value::Null
        );
        assert_eq!(tag_of(&Value::Null), None);
        assert_eq!(tag_of(&json!(5)).as_deref(), Some("5"));
    }

    #[test]
    fn only_message_events_have_a_word() {
        let v = room_view();
        assert_eq!(
            shown_in_room(&Event::MessagesDeleted {
                room: v.clone(),
                ids: vec![MessageId(1)],
                by: UserId(1)
            }),
            Some(RoomId(7))
        );
        let silent = [
            Event::Typing {
                room: v.clone(),
                user: user(1),
                until: ts(),
            },
            Event::Presence {
                user: user(1),
                online: true,
            },
            Event::MessagesRead {
                room: v.clone(),
                reader: UserId(2),
                up_to: MessageId(1),
                newly_read: vec![],
            },
            Event::RoomCreated {
                room: v.clone(),
                by: UserId(1),
            },
            Event::MembersAdded {
                room: v.clone(),
                users: vec![UserId(3)],
                by: UserId(1),
            },
        ];
        for e in silent {
            assert_eq!(shown_in_room(&e), None, "{}", e.name());
            assert_eq!(event(&Published::new(e, None)), None);
        }
    }

    #[test]
    fn a_request_id_reads_back_from_its_tag_exactly() {
        // Found by chat-fuzz: without exact float parsing, a long integer (taken as a
        // float) came back from its tag one unit in the last place away, so the
        // room's other connections saw a request_id the sender never sent.
        let text = format!(
            r#"{{"action":"list","request_id":{}}}"#,
            "95940891587421686943733884938184602291242428951022981850801504759412900531766560115535493089664699799621489706147370929477176043080800158425337294586819436456446094893606601963872985645677305532766581822352177202641535558109739092472"
        );
        let sent = crate::decode::decode(&text, crate::Endpoint::User)
            .expect("decodes")
            .request_id;
        for request_id in [
            sent,
            json!(0.1),
            json!(-1.7976931348623157e308),
            json!(5e-324),
        ] {
            let tag = tag_of(&request_id).expect("a tag");
            let back: Value = serde_json::from_str(&tag).expect("JSON");
            assert_eq!(back, request_id, "{tag}");
        }
    }
}
