//! Core [`Event`] → type-content frames.
//!
//! Nothing a type-content client is shown depends on who receives it (the legacy
//! backend pushed one and the same frame to the whole chat group, sender included), so
//! every rendering here is a pure function of the event: the session renders it once per
//! event for all type-content connections through the publish cache.
//!
//! Events this dialect has no word for (edits, room creation and renaming, membership
//! changes, "attention") render as nothing; see the spec's "What you do not see".

use crate::wire::{
    to_json, ChatIdWire, ChatType, DeletePush, ErrorFrame, FileLink, MessagePush, PresenceNames,
    PresencePush, ReadPush, ServerEvent, TypingPush,
};
use chat_core::model::{Attachment, MessageView, RoomKind, RoomView, Timestamp};
use chat_core::{Event, MessageId};

/// How this dialect names a room: `("direct", "<low>_<high>")`, `("project", <project id>)`,
/// or, for rooms of any size made through other dialects, `("group", <room id>)`.
pub fn chat_of(room: &RoomView) -> (ChatType, ChatIdWire) {
    match &room.room.kind {
        RoomKind::Direct { low, high } => {
            (ChatType::Direct, ChatIdWire::Text(format!("{low}_{high}")))
        }
        RoomKind::Project { project_id } => (ChatType::Project, ChatIdWire::Int(*project_id)),
        RoomKind::Group => (ChatType::Group, ChatIdWire::Int(room.room.id.0)),
    }
}

/// RFC 3339 in UTC with milliseconds and `Z`, as Django's JSON encoder wrote datetimes.
pub fn timestamp(t: &Timestamp) -> String {
    dialect_kit::time::millis(t)
}

/// The `new_message` push of a message. `file_url` builds an attachment's public URL.
///
/// `text` is what a legacy client shows, so an attachment sent through another dialect
/// is appended to it as its URL, one per line (unless the text already contains that
/// URL); `files` carries the same attachments structured, for clients that know it.
pub fn message_push(
    room: &RoomView,
    view: &MessageView,
    file_url: &dyn Fn(&Attachment) -> String,
) -> MessagePush {
    let m = &view.message;
    let (chat_type, chat_id) = chat_of(room);
    let files: Vec<FileLink> = m
        .attachments
        .iter()
        .map(|a| FileLink {
            id: a.id.0,
            name: a.name.clone(),
            url: file_url(a),
            content_type: a.content_type.clone(),
            size: a.size,
        })
        .collect();
    let mut text = m.text.clone();
    for f in &files {
        if text.contains(&f.url) {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&f.url);
    }
    MessagePush {
        message_id: m.id.0,
        chat_id,
        chat_type,
        author_id: m.author_id.0,
        text,
        created_at: timestamp(&m.created_at),
        reply_to: m.reply_to.map(|r| r.0),
        files,
    }
}

/// The `delete_message` frame for one deleted message.
pub fn delete_frame(room: &RoomView, id: MessageId) -> String {
    let (chat_type, chat_id) = chat_of(room);
    to_json(&ServerEvent::DeleteMessage(DeletePush {
        chat_type,
        chat_id,
        message_id: id.0,
    }))
}

/// The `message_read` frame: `user` has read the chat up to `up_to`.
pub fn read_frame(room: &RoomView, user: chat_core::UserId, up_to: MessageId) -> String {
    let (chat_type, chat_id) = chat_of(room);
    to_json(&ServerEvent::MessageRead(ReadPush {
        chat_type,
        chat_id,
        user_id: user.0,
        message_id: up_to.0,
    }))
}

/// The frames an event becomes for a type-content client, in order. Empty when the
/// dialect has no word for the event. More than one only for a deletion of several
/// messages at once (made through another dialect), which becomes one `delete_message`
/// per id, in the order given.
pub fn render(event: &Event, file_url: &dyn Fn(&Attachment) -> String) -> Vec<String> {
    match event {
        Event::MessageCreated { room, message } => {
            vec![to_json(&ServerEvent::NewMessage(message_push(
                room, message, file_url,
            )))]
        }
        Event::Typing { room, user, until } => {
            let (chat_type, chat_id) = chat_of(room);
            vec![to_json(&ServerEvent::UserTyping(TypingPush {
                chat_type,
                chat_id,
                user_id: user.id.0,
                end_time: timestamp(until),
            }))]
        }
        Event::MessagesRead {
            room,
            reader,
            up_to,
            ..
        } => vec![read_frame(room, *reader, *up_to)],
        Event::MessagesDeleted { room, ids, .. } => {
            ids.iter().map(|id| delete_frame(room, *id)).collect()
        }
        Event::Presence { user, online } => {
            vec![presence_frame(user.id, *online, PresenceNames::Set)]
        }
        // No word for these in the legacy protocol: silence (documented in the spec).
        Event::MessageEdited { .. }
        | Event::RoomCreated { .. }
        | Event::RoomUpdated { .. }
        | Event::MembersAdded { .. }
        | Event::MembersRemoved { .. }
        | Event::RoomDeleted { .. }
        | Event::Attention { .. } => Vec::new(),
    }
}

/// `set_online` / `set_offline` about `user`, in `names` (see [`PresenceNames`]).
pub fn presence_frame(user: chat_core::UserId, online: bool, names: PresenceNames) -> String {
    let push = PresencePush { user_id: user.0 };
    to_json(&match (names, online) {
        (PresenceNames::Set, true) => ServerEvent::SetOnline(push),
        (PresenceNames::Set, false) => ServerEvent::SetOffline(push),
        (PresenceNames::User, true) => ServerEvent::UserOnline(push),
        (PresenceNames::User, false) => ServerEvent::UserOffline(push),
    })
}

/// `{"error": message}`.
pub fn error_frame(message: impl Into<String>) -> String {
    to_json(&ErrorFrame {
        error: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::model::{Message, MessageKind, Room, User};
    use chat_core::{AttachmentId, RoomId, UserId};
    use chrono::TimeZone;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
            + chrono::Duration::milliseconds(123)
    }

    fn user(id: i64) -> User {
        User {
            created_at: t0(),
            updated_at: t0(),
            ..User::placeholder(UserId(id))
        }
    }

    fn room(id: i64, kind: RoomKind, members: &[i64]) -> Arc<RoomView> {
        Arc::new(RoomView {
            room: Room {
                id: RoomId(id),
                kind,
                title: String::new(),
                has_business: false,
                created_by: None,
                created_at: t0(),
                updated_at: t0(),
            },
            members: members.iter().map(|m| user(*m)).collect(),
            watermarks: members.iter().map(|m| (UserId(*m), None)).collect(),
        })
    }

    fn direct() -> Arc<RoomView> {
        room(
            40,
            RoomKind::Direct {
                low: UserId(12),
                high: UserId(23),
            },
            &[12, 23],
        )
    }

    fn message(id: i64, room: &RoomView, author: i64, text: &str) -> Arc<MessageView> {
        Arc::new(MessageView {
            message: Message {
                id: MessageId(id),
                room_id: room.room.id,
                author_id: UserId(author),
                kind: MessageKind::Text,
                text: text.into(),
                reply_to: None,
                created_at: t0(),
                updated_at: t0(),
                edited_at: None,
                deleted_at: None,
                attachments: Vec::new(),
            },
            author: user(author),
            is_read: false,
        })
    }

    fn url(a: &Attachment) -> String {
        format!("http://files.test/files/{}/{}/{}", a.id, a.token, a.name)
    }

    fn one(ev: &Event) -> Value {
        let frames = render(ev, &url);
        assert_eq!(frames.len(), 1, "{frames:?}");
        serde_json::from_str(&frames[0]).unwrap()
    }

    #[test]
    fn chat_names() {
        assert_eq!(
            chat_of(&direct()),
            (ChatType::Direct, ChatIdWire::Text("12_23".into()))
        );
        assert_eq!(
            chat_of(&room(3, RoomKind::Project { project_id: 77 }, &[1])),
            (ChatType::Project, ChatIdWire::Int(77))
        );
        assert_eq!(
            chat_of(&room(3, RoomKind::Group, &[1])),
            (ChatType::Group, ChatIdWire::Int(3))
        );
    }

    #[test]
    fn new_message() {
        let r = direct();
        let mut m = (*message(54, &r, 12, "hello world")).clone();
        m.message.reply_to = Some(MessageId(50));
        let v = one(&Event::MessageCreated {
            room: r,
            message: Arc::new(m),
        });
        assert_eq!(
            v,
            json!({"type": "new_message", "content": {
                "message_id": 54, "chat_id": "12_23", "chat_type": "direct", "author_id": 12,
                "text": "hello world", "created_at": "2024-05-01T12:00:00.123Z", "reply_to": 50, "files": []}})
        );
    }

    #[test]
    fn new_message_in_project_and_group_rooms() {
        let p = room(3, RoomKind::Project { project_id: 77 }, &[1, 2]);
        let v = one(&Event::MessageCreated {
            room: p.clone(),
            message: message(1, &p, 2, "x"),
        });
        assert_eq!(v["content"]["chat_type"], "project");
        assert_eq!(v["content"]["chat_id"], 77);
        assert_eq!(v["content"]["reply_to"], Value::Null);
        let g = room(9, RoomKind::Group, &[1, 2, 3]);
        let v = one(&Event::MessageCreated {
            room: g.clone(),
            message: message(2, &g, 3, "y"),
        });
        assert_eq!(v["content"]["chat_type"], "group");
        assert_eq!(v["content"]["chat_id"], 9);
    }

    #[test]
    fn attachments_become_urls_in_text_and_files() {
        let r = direct();
        let mut m = (*message(5, &r, 12, "look")).clone();
        m.message.attachments = vec![Attachment {
            id: AttachmentId(8),
            name: "cat.png".into(),
            content_type: "image/png".into(),
            size: 1234,
            blob_key: "ab".into(),
            uploader_id: UserId(12),
            message_id: Some(MessageId(5)),
            created_at: t0(),
            token: "tok".into(),
        }];
        // The message with `text`, as its push.
        let created = |text: &str| {
            let mut m = m.clone();
            m.message.text = text.into();
            one(&Event::MessageCreated {
                room: r.clone(),
                message: Arc::new(m),
            })
        };
        let url = "http://files.test/files/8/tok/cat.png";
        let v = created("look");
        assert_eq!(v["content"]["text"], format!("look\n{url}"));
        assert_eq!(
            v["content"]["files"],
            json!([{"id": 8, "name": "cat.png", "url": "http://files.test/files/8/tok/cat.png",
                    "content_type": "image/png", "size": 1234}])
        );
        // A file-only message shows just the URL; a URL already in the text is not repeated.
        assert_eq!(created("")["content"]["text"], url);
        assert_eq!(created(url)["content"]["text"], url);
    }

    #[test]
    fn typing() {
        let v = one(&Event::Typing {
            room: direct(),
            user: user(23),
            until: t0() + chrono::Duration::seconds(5),
        });
        assert_eq!(
            v,
            json!({"type": "user_typing", "content": {
                "chat_type": "direct", "chat_id": "12_23", "user_id": 23, "end_time": "2024-05-01T12:00:05.123Z"}})
        );
    }

    #[test]
    fn read() {
        let v = one(&Event::MessagesRead {
            room: direct(),
            reader: UserId(23),
            up_to: MessageId(54),
            newly_read: vec![MessageId(54)],
        });
        assert_eq!(
            v,
            json!({"type": "message_read", "content": {
                "chat_type": "direct", "chat_id": "12_23", "user_id": 23, "message_id": 54}})
        );
    }

    #[test]
    fn deletions_one_frame_per_id() {
        let frames = render(
            &Event::MessagesDeleted {
                room: direct(),
                ids: vec![MessageId(3), MessageId(4)],
                by: UserId(12),
            },
            &url,
        );
        let v: Vec<Value> = frames
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect();
        assert_eq!(
            v,
            vec![
                json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "12_23", "message_id": 3}}),
                json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "12_23", "message_id": 4}}),
            ]
        );
    }

    #[test]
    fn presence() {
        assert_eq!(
            one(&Event::Presence {
                user: user(7),
                online: true
            }),
            json!({"type": "set_online", "content": {"user_id": 7}})
        );
        assert_eq!(
            one(&Event::Presence {
                user: user(7),
                online: false
            }),
            json!({"type": "set_offline", "content": {"user_id": 7}})
        );
        let frame = |online| {
            serde_json::from_str::<serde_json::Value>(&presence_frame(
                UserId(7),
                online,
                PresenceNames::User,
            ))
            .expect("json")
        };
        assert_eq!(
            frame(true),
            json!({"type": "user_online", "content": {"user_id": 7}})
        );
        assert_eq!(
            frame(false),
            json!({"type": "user_offline", "content": {"user_id": 7}})
        );
    }

    #[test]
    fn silent_events() {
        let r = direct();
        let silent = [
            Event::MessageEdited {
                room: r.clone(),
                message: message(1, &r, 12, "edited"),
            },
            Event::RoomCreated {
                room: r.clone(),
                by: UserId(12),
            },
            Event::RoomUpdated {
                room: r.clone(),
                by: UserId(12),
            },
            Event::MembersAdded {
                room: r.clone(),
                users: vec![UserId(5)],
                by: UserId(12),
            },
            Event::MembersRemoved {
                room: r.clone(),
                users: vec![UserId(5)],
                by: UserId(12),
            },
            Event::Attention {
                user: user(12),
                waiting: true,
            },
        ];
        for ev in silent {
            assert!(render(&ev, &url).is_empty(), "{}", ev.name());
        }
    }

    #[test]
    fn pushes_round_trip_through_the_wire_enum() {
        let r = direct();
        let ev = Event::MessageCreated {
            room: r.clone(),
            message: message(54, &r, 12, "hi"),
        };
        let frame = &render(&ev, &url)[0];
        let parsed: ServerEvent = serde_json::from_str(frame).unwrap();
        assert!(matches!(
            parsed,
            ServerEvent::NewMessage(MessagePush { message_id: 54, .. })
        ));
    }

    #[test]
    fn error_frames() {
        let v: Value = serde_json::from_str(&error_frame("bad \"thing\"")).unwrap();
        assert_eq!(v, json!({"error": "bad \"thing\""}));
    }
}
