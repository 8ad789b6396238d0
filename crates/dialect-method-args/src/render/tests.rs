//! The renderings, frame by frame.

use super::*;
use crate::wire::{time, User};
use chat_core::{
    AttachmentId, Message as CoreMessage, MessageId, MessageKind, MessageView, Room, RoomId,
    RoomKind, RoomView, SharedRoom, TokenError, User as CoreUser,
};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

fn t0() -> chat_core::Timestamp {
    Utc.with_ymd_and_hms(2024, 6, 17, 18, 0, 0).unwrap() + chrono::Duration::microseconds(123_456)
}

fn user(id: i64) -> CoreUser {
    CoreUser {
        email: format!("u{id}@example.com"),
        first_name: format!("First{id}"),
        last_name: format!("Last{id}"),
        created_at: t0(),
        updated_at: t0(),
        ..CoreUser::placeholder(UserId(id))
    }
}

fn room(members: &[i64]) -> SharedRoom {
    Arc::new(RoomView {
        room: Room {
            id: RoomId(7),
            kind: RoomKind::Group,
            title: "Team".into(),
            has_business: false,
            created_by: Some(UserId(members[0])),
            created_at: t0(),
            updated_at: t0(),
        },
        members: members.iter().map(|id| user(*id)).collect(),
        watermarks: members.iter().map(|id| (UserId(*id), None)).collect(),
    })
}

fn message(author: i64) -> Arc<MessageView> {
    Arc::new(MessageView {
        message: CoreMessage {
            id: MessageId(40),
            room_id: RoomId(7),
            author_id: UserId(author),
            kind: MessageKind::Text,
            text: "hello".into(),
            reply_to: None,
            created_at: t0(),
            updated_at: t0(),
            edited_at: None,
            deleted_at: None,
            attachments: vec![Attachment {
                id: AttachmentId(3),
                name: "a b.txt".into(),
                content_type: "text/plain".into(),
                size: 2,
                blob_key: "ab".into(),
                uploader_id: UserId(author),
                message_id: Some(MessageId(40)),
                created_at: t0(),
                token: "tok".into(),
            }],
        },
        author: user(author),
        is_read: false,
    })
}

fn url(a: &Attachment) -> String {
    format!("http://files.test/files/{}/{}/x", a.id, a.token)
}

fn published(event: Event) -> Published {
    Published::new(event, None)
}

/// The frames as JSON values, and whether each came from the shared cache.
fn frames(ev: &Published, me: i64) -> Vec<(Value, bool)> {
    push(ev, UserId(me), &url)
        .into_iter()
        .map(|o| match o {
            Outgoing::Text(t) => (serde_json::from_str(&t).unwrap(), false),
            Outgoing::Shared(t) => (serde_json::from_str(&t).unwrap(), true),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn types(ev: &Published, me: i64) -> Vec<String> {
    frames(ev, me)
        .into_iter()
        .map(|(v, _)| v["type"].as_str().unwrap().to_string())
        .collect()
}

fn user_json(id: i64) -> Value {
    let palette = [
        "#e57373", "#64b5f6", "#81c784", "#ffb74d", "#ba68c8", "#4db6ac", "#f06292", "#a1887f",
    ];
    json!({
        "pk": id,
        "email": format!("u{id}@example.com"),
        "first_name": format!("First{id}"),
        "last_name": format!("Last{id}"),
        "photo": null,
        "color": palette[id as usize % 8],
        "role": "Member",
    })
}

fn chat_json(members: &[i64]) -> Value {
    json!({
        "id": 7,
        "users": members.iter().map(|id| user_json(*id)).collect::<Vec<_>>(),
        "title": "Team",
        "created_at": "2024-06-17T18:00:00.123456Z",
        "updated_at": "2024-06-17T18:00:00.123456Z",
    })
}

fn message_json(author: i64) -> Value {
    json!({
        "id": 40,
        "chat": 7,
        "user": user_json(author),
        "attached_files": [{
            "id": 3,
            "name": "a b.txt",
            "file": "http://files.test/files/3/tok/x",
            "created_at": "2024-06-17T18:00:00.123456Z",
        }],
        "text": "hello",
        "created_at": "2024-06-17T18:00:00.123456Z",
        "updated_at": "2024-06-17T18:00:00.123456Z",
        "is_read": false,
    })
}

#[test]
fn times_are_drf_style_utc_with_microseconds() {
    assert_eq!(time(&t0()), "2024-06-17T18:00:00.123456Z");
    let whole = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
    assert_eq!(time(&whole), "2024-01-02T03:04:05.000000Z");
}

#[test]
fn user_shape_and_defaults() {
    assert_eq!(
        serde_json::to_value(User::from(&user(2))).unwrap(),
        user_json(2)
    );
    let mut u = user(3);
    u.photo = "https://img.test/3.png".into();
    u.color = "#123456".into();
    u.role = "Owner".into();
    assert_eq!(
        serde_json::to_value(User::from(&u)).unwrap(),
        json!({"pk": 3, "email": "u3@example.com", "first_name": "First3", "last_name": "Last3",
               "photo": "https://img.test/3.png", "color": "#123456", "role": "Owner"})
    );
}

#[test]
fn chat_and_message_shapes() {
    assert_eq!(
        serde_json::to_value(Chat::from(&*room(&[1, 2]))).unwrap(),
        chat_json(&[1, 2])
    );
    assert_eq!(
        serde_json::to_value(Message::from_view(&message(1), &url)).unwrap(),
        message_json(1)
    );
}

#[test]
fn every_outbound_shape() {
    let chat = Chat::from(&*room(&[1, 2]));
    let msg = Message::from_view(&message(1), &url);
    let k = json!({"req": 1});
    let cases = vec![
        (
            error(ErrorType::FieldError, "bad", k.clone()),
            json!({"type": "error", "data": {"type": "field_error", "detail": "bad", "event_response_key": {"req": 1}}}),
        ),
        (
            Outbound::Authenticated {
                event_response_key: Value::Null,
            },
            json!({"type": "authenticated", "data": {"event_response_key": null}}),
        ),
        (
            Outbound::NewChat { chat: chat.clone() },
            json!({"type": "new_chat", "data": {"chat": chat_json(&[1, 2])}}),
        ),
        (
            Outbound::NewMessage {
                message: msg.clone(),
            },
            json!({"type": "new_message", "data": {"message": message_json(1)}}),
        ),
        (
            Outbound::MessageCreated {
                message: msg.clone(),
                event_response_key: k.clone(),
            },
            json!({"type": "message_created", "data": {"message": message_json(1), "event_response_key": {"req": 1}}}),
        ),
        (
            Outbound::MessagesRead { chat: 7 },
            json!({"type": "messages_read", "data": {"chat": 7}}),
        ),
        (
            Outbound::ChatCreated {
                chat: chat.clone(),
                event_response_key: json!("x"),
            },
            json!({"type": "chat_created", "data": {"chat": chat_json(&[1, 2]), "event_response_key": "x"}}),
        ),
        (
            read_updates(&[MessageId(4), MessageId(5)]),
            json!({"type": "messages_updated", "data": {"updates": [
                {"id": 4, "fields": {"is_read": true}}, {"id": 5, "fields": {"is_read": true}}]}}),
        ),
        (
            Outbound::UserRemovedSuccessful {
                event_response_key: json!(1),
                user_ids: vec![3],
                chat: chat.clone(),
            },
            json!({"type": "user_removed_successful", "data": {"event_response_key": 1, "user_ids": [3], "chat": chat_json(&[1, 2])}}),
        ),
        (
            Outbound::UserRemoved {
                user_ids: vec![3],
                chat: chat.clone(),
            },
            json!({"type": "user_removed", "data": {"user_ids": [3], "chat": chat_json(&[1, 2])}}),
        ),
        (
            Outbound::UserAddedSuccessful {
                event_response_key: Value::Null,
                user_ids: vec![3],
                chat: chat.clone(),
            },
            json!({"type": "user_added_successful", "data": {"event_response_key": null, "user_ids": [3], "chat": chat_json(&[1, 2])}}),
        ),
        (
            Outbound::UserAdded {
                user_ids: vec![3],
                chat: chat.clone(),
            },
            json!({"type": "user_added", "data": {"user_ids": [3], "chat": chat_json(&[1, 2])}}),
        ),
        (
            Outbound::ChatUpdated { chat: chat.clone() },
            json!({"type": "chat_updated", "data": {"chat": chat_json(&[1, 2])}}),
        ),
        (
            Outbound::ChatRemoved { chat },
            json!({"type": "chat_removed", "data": {"chat": chat_json(&[1, 2])}}),
        ),
    ];
    assert_eq!(cases.len(), 14, "one case per event type of the spec");
    for (out, want) in cases {
        let got: Value = serde_json::from_str(&out.to_json()).unwrap();
        assert_eq!(got, want, "{}", out.type_name());
        assert_eq!(got["type"], out.type_name());
    }
}

#[test]
fn error_mapping() {
    let k = json!("k");
    let cases: Vec<(ChatError, &str)> = vec![
        (
            ChatError::Unauthenticated(TokenError::Expired),
            "authorization_error",
        ),
        (ChatError::forbidden("nope"), "access_error"),
        (ChatError::not_found("chat"), "access_error"),
        (ChatError::not_found("user"), "access_error"),
        (ChatError::invalid("users", "bad"), "field_error"),
        (
            ChatError::TooLarge {
                what: "file",
                size: 9,
                limit: 1,
            },
            "field_error",
        ),
        (ChatError::RateLimited { what: "typing" }, "field_error"),
        (ChatError::Conflict("taken".into()), "field_error"),
        (
            ChatError::DuplicateRoom {
                existing: RoomId(12),
            },
            "chat_duplication_error",
        ),
        (ChatError::Storage("disk on fire".into()), "system_error"),
    ];
    for (e, kind) in cases {
        let v: Value = serde_json::from_str(&chat_error(&e, k.clone()).to_json()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["data"]["type"], kind, "{e:?}");
        assert_eq!(v["data"]["event_response_key"], "k");
        assert!(v["data"]["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let has_chat_id = v["data"].get("chat_id").is_some();
        assert_eq!(has_chat_id, kind == "chat_duplication_error", "{e:?}");
    }
    let v: Value = serde_json::from_str(
        &chat_error(
            &ChatError::DuplicateRoom {
                existing: RoomId(12),
            },
            Value::Null,
        )
        .to_json(),
    )
    .unwrap();
    assert_eq!(v["data"]["chat_id"], 12);
    let v: Value = serde_json::from_str(
        &chat_error(&ChatError::Storage("secret sql".into()), Value::Null).to_json(),
    )
    .unwrap();
    assert!(
        !v["data"]["detail"].as_str().unwrap().contains("secret"),
        "storage internals stay in the log"
    );
    let v: Value = serde_json::from_str(
        &chat_error(
            &ChatError::Unauthenticated(TokenError::Expired),
            Value::Null,
        )
        .to_json(),
    )
    .unwrap();
    assert!(v["data"]["detail"].as_str().unwrap().contains("expired"));
}

#[test]
fn room_created_creator_vs_others() {
    let ev = published(Event::RoomCreated {
        room: room(&[1, 2, 3]),
        by: UserId(1),
    });
    assert_eq!(
        frames(&ev, 1),
        vec![(
            json!({"type": "chat_created", "data": {"chat": chat_json(&[1, 2, 3]), "event_response_key": null}}),
            false
        )]
    );
    let want = (
        json!({"type": "new_chat", "data": {"chat": chat_json(&[1, 2, 3])}}),
        true,
    );
    assert_eq!(frames(&ev, 2), vec![want.clone()]);
    assert_eq!(frames(&ev, 3), vec![want]);
    assert_eq!(
        types(&ev, 1),
        ["chat_created"],
        "the creator is never served the cached copy"
    );
}

#[test]
fn the_shared_rendering_is_serialized_once() {
    let ev = published(Event::MessageCreated {
        room: room(&[1, 2, 3]),
        message: message(1),
    });
    let (a, b) = (push(&ev, UserId(2), &url), push(&ev, UserId(3), &url));
    match (&a[0], &b[0]) {
        (Outgoing::Shared(x), Outgoing::Shared(y)) => assert!(Arc::ptr_eq(x, y)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn room_updated_goes_to_everyone_alike() {
    let ev = published(Event::RoomUpdated {
        room: room(&[1, 2]),
        by: UserId(1),
    });
    for me in [1, 2] {
        assert_eq!(
            frames(&ev, me),
            vec![(
                json!({"type": "chat_updated", "data": {"chat": chat_json(&[1, 2])}}),
                true
            )]
        );
    }
}

#[test]
fn members_added_roles() {
    let ev = published(Event::MembersAdded {
        room: room(&[1, 2, 3, 4]),
        users: vec![UserId(3), UserId(4)],
        by: UserId(1),
    });
    // The cache is hit first by an added user, to prove role renderings never land there.
    assert_eq!(types(&ev, 3), ["new_chat"]);
    assert_eq!(
        frames(&ev, 1),
        vec![(
            json!({"type": "user_added_successful", "data": {"event_response_key": null, "user_ids": [3, 4], "chat": chat_json(&[1, 2, 3, 4])}}),
            false
        )]
    );
    assert_eq!(
        frames(&ev, 2),
        vec![(
            json!({"type": "user_added", "data": {"user_ids": [3, 4], "chat": chat_json(&[1, 2, 3, 4])}}),
            true
        )]
    );
    assert_eq!(
        frames(&ev, 4),
        vec![(
            json!({"type": "new_chat", "data": {"chat": chat_json(&[1, 2, 3, 4])}}),
            false
        )]
    );
    let selfadd = published(Event::MembersAdded {
        room: room(&[1, 2, 9]),
        users: vec![UserId(9)],
        by: UserId(9),
    });
    assert_eq!(types(&selfadd, 9), ["user_added_successful", "new_chat"]);
    assert_eq!(types(&selfadd, 1), ["user_added"]);
}

/// User 3 removed from the group of users 1 and 2 by user `by` (3 itself: a leave).
fn user_3_removed_by(by: i64) -> Published {
    published(Event::MembersRemoved {
        room: room(&[1, 2]),
        users: vec![UserId(3)],
        by: UserId(by),
    })
}

#[test]
fn members_removed_roles() {
    let ev = user_3_removed_by(1);
    assert_eq!(
        frames(&ev, 3),
        vec![(
            json!({"type": "chat_removed", "data": {"chat": chat_json(&[1, 2])}}),
            false
        )]
    );
    assert_eq!(
        frames(&ev, 1),
        vec![(
            json!({"type": "user_removed_successful", "data": {"event_response_key": null, "user_ids": [3], "chat": chat_json(&[1, 2])}}),
            false
        )]
    );
    assert_eq!(
        frames(&ev, 2),
        vec![(
            json!({"type": "user_removed", "data": {"user_ids": [3], "chat": chat_json(&[1, 2])}}),
            true
        )]
    );
    let leave = user_3_removed_by(3);
    assert_eq!(
        types(&leave, 3),
        ["user_removed_successful", "chat_removed"]
    );
    assert_eq!(types(&leave, 1), ["user_removed"]);
}

#[test]
fn message_created_author_vs_others() {
    let ev = published(Event::MessageCreated {
        room: room(&[1, 2]),
        message: message(1),
    });
    assert_eq!(
        frames(&ev, 2),
        vec![(
            json!({"type": "new_message", "data": {"message": message_json(1)}}),
            true
        )]
    );
    assert_eq!(
        frames(&ev, 1),
        vec![(
            json!({"type": "message_created", "data": {"message": message_json(1), "event_response_key": null}}),
            false
        )]
    );
}

#[test]
fn edits_and_deletes_from_other_dialects_are_updates() {
    let mut edited = (*message(1)).clone();
    edited.message.text = "fixed".into();
    edited.message.updated_at = Utc.with_ymd_and_hms(2024, 6, 18, 0, 0, 0).unwrap();
    let ev = published(Event::MessageEdited {
        room: room(&[1, 2]),
        message: Arc::new(edited),
    });
    let want = json!({"type": "messages_updated", "data": {"updates": [
        {"id": 40, "fields": {"text": "fixed", "updated_at": "2024-06-18T00:00:00.000000Z"}}]}});
    assert_eq!(frames(&ev, 1), vec![(want.clone(), true)]);
    assert_eq!(frames(&ev, 2), vec![(want, true)]);

    let ev = published(Event::MessagesDeleted {
        room: room(&[1, 2]),
        ids: vec![MessageId(40), MessageId(41)],
        by: UserId(1),
    });
    let want = json!({"type": "messages_updated", "data": {"updates": [
        {"id": 40, "fields": {"text": "", "is_deleted": true}},
        {"id": 41, "fields": {"text": "", "is_deleted": true}}]}});
    assert_eq!(frames(&ev, 2), vec![(want, true)]);
}

#[test]
fn reads_reader_vs_others() {
    let ev = published(Event::MessagesRead {
        room: room(&[1, 2, 3]),
        reader: UserId(2),
        up_to: MessageId(41),
        newly_read: vec![MessageId(40), MessageId(41)],
    });
    assert_eq!(types(&ev, 1), ["messages_updated"]);
    assert_eq!(
        frames(&ev, 2),
        vec![(json!({"type": "messages_read", "data": {"chat": 7}}), false)]
    );
    assert_eq!(
        frames(&ev, 3),
        vec![(
            json!({"type": "messages_updated", "data": {"updates": [
            {"id": 40, "fields": {"is_read": true}}, {"id": 41, "fields": {"is_read": true}}]}}),
            true
        )]
    );
    let nothing_new = published(Event::MessagesRead {
        room: room(&[1, 2]),
        reader: UserId(2),
        up_to: MessageId(41),
        newly_read: vec![],
    });
    assert!(frames(&nothing_new, 1).is_empty());
    assert_eq!(types(&nothing_new, 2), ["messages_read"]);
}

#[test]
fn typing_presence_attention_are_silent() {
    let evs = [
        Event::Typing {
            room: room(&[1, 2]),
            user: user(1),
            until: t0(),
        },
        Event::Presence {
            user: user(1),
            online: true,
        },
        Event::Attention {
            user: user(1),
            waiting: true,
        },
    ];
    for e in evs {
        assert!(frames(&published(e), 2).is_empty());
    }
}
