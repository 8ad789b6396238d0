//! The dialect driven without sockets: handshake decisions, every action on both
//! endpoints, joined-room fan-out, admin rules and bad input, over a real
//! `ChatService` and a real SQLite store.

mod common;
mod replies;

use chat_core::{
    Event, Handshake, MessageId, Origin, Outgoing, Published, RoomRef, SendMessage, TokenError,
    WsDialect,
};
use common::{Conn, Harness};
use dialect_action_request::render::{NOT_IN_ROOM, NOT_IN_ROOM_LEAVE, PERMISSION_DENIED};
use dialect_action_request::ActionRequest;
use replies::{err, ok};
use serde_json::{json, Value};
use std::sync::Arc;

fn pk_list(data: &Value) -> Vec<i64> {
    data.as_array()
        .expect("a list")
        .iter()
        .map(|r| r["pk"].as_i64().expect("pk"))
        .collect()
}

struct World {
    h: Harness,
    user: ActionRequest,
    admin: ActionRequest,
}

impl World {
    async fn new() -> World {
        World {
            h: Harness::new().await,
            user: ActionRequest::user(),
            admin: ActionRequest::admin(),
        }
    }

    async fn user_conn(&self, id: i64, name: &str) -> Conn {
        let p = self.h.principal(id, name, false).await;
        self.h.connect(&self.user, &p).await
    }

    async fn admin_conn(&self, id: i64, name: &str) -> Conn {
        let p = self.h.principal(id, name, true).await;
        self.h.connect(&self.admin, &p).await
    }

    /// A connection of user `id`, joined to `room`.
    async fn joined(&self, id: i64, name: &str, room: chat_core::RoomId) -> Conn {
        let mut c = self.user_conn(id, name).await;
        self.join(&mut c, room).await;
        c
    }

    /// A world with users alice (1), bob (2) and carol (3); a room of alice and bob,
    /// and a room of `other`.
    async fn with_rooms(other: &[i64]) -> (World, chat_core::RoomId, chat_core::RoomId) {
        let w = World::new().await;
        for (id, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
            w.h.principal(id, name, false).await;
        }
        let room = w.h.room(&[1, 2], false).await;
        let other = w.h.room(other, false).await;
        (w, room, other)
    }

    async fn join(&self, c: &mut Conn, room: chat_core::RoomId) {
        let r = c
            .req(json!({"action": "join_room", "room_pk": room.0, "request_id": 0}))
            .await;
        ok(&r, "join_room", 200, json!(0));
    }
}

#[test]
fn names_paths_and_subprotocols() {
    let (u, a) = (ActionRequest::user(), ActionRequest::admin());
    assert_eq!(u.name(), "action-request");
    assert_eq!(a.name(), "action-request-admin");
    assert_eq!(u.default_path(), "/ws/dcrf/chat/");
    assert_eq!(a.default_path(), "/ws/admin-chat/");
    assert_eq!(u.subprotocol(&["Bearer", "tok"]), Some("Bearer"));
    assert_eq!(u.subprotocol(&["chat"]), Some("chat"));
    assert_eq!(a.subprotocol(&["admin-chat"]), Some("admin-chat"));
    assert_eq!(a.subprotocol(&["chat"]), None);
    assert_eq!(u.subprotocol(&[]), None);
}

#[tokio::test]
async fn handshake_refusals_are_403() {
    let h = Harness::new().await;
    let user = h.principal(1, "alice", false).await;
    let admin = h.principal(2, "root", true).await;
    let (u, a) = (ActionRequest::user(), ActionRequest::admin());

    let refused = |d: &ActionRequest, hs: &Handshake| match d.accept(hs) {
        Ok(_) => None,
        Err(r) => Some(r.status),
    };
    // No token.
    assert_eq!(refused(&u, &Harness::handshake(None)), Some(403));
    // A refused token.
    let mut hs = Harness::handshake(None);
    hs.token_error = Some(TokenError::Expired);
    assert_eq!(refused(&u, &hs), Some(403));
    // A refused Origin, present or absent.
    let mut hs = Harness::handshake(Some(user.clone()));
    hs.origin_allowed = false;
    assert_eq!(refused(&u, &hs), Some(403));
    hs.origin_present = false;
    assert_eq!(refused(&u, &hs), Some(403));
    // A non-admin on the admin endpoint.
    assert_eq!(
        refused(&a, &Harness::handshake(Some(user.clone()))),
        Some(403)
    );
    // Accepted.
    assert_eq!(refused(&u, &Harness::handshake(Some(user))), None);
    assert_eq!(refused(&a, &Harness::handshake(Some(admin.clone()))), None);
    assert_eq!(refused(&u, &Harness::handshake(Some(admin))), None);
}

#[tokio::test]
async fn list_join_current_leave_on_the_user_endpoint() {
    let w = World::new().await;
    let mut alice = w.user_conn(1, "alice").await;
    w.h.principal(2, "bob", false).await;
    w.h.principal(3, "carol", false).await;
    let r1 = w.h.room(&[1, 2], true).await;
    let r2 = w.h.room(&[1, 3], false).await;
    let r3 = w.h.room(&[2, 3], false).await;

    let list = alice
        .req(json!({"action": "list", "request_id": 1500000}))
        .await;
    let data = ok(&list, "list", 200, json!(1500000));
    assert_eq!(pk_list(&data), vec![r1.0, r2.0]);
    assert_eq!(data[0]["has_business"], json!(true));
    assert_eq!(data[1]["has_business"], json!(false));
    assert_eq!(
        data[0]["participants"][0],
        json!({"id": 1, "username": "alice", "email": "alice@example.com", "first_name": "ALICE", "last_name": "Test"})
    );
    assert_eq!(data[0]["participants"][1]["id"], json!(2));

    // Not joined yet.
    let r = alice
        .req(json!({"action": "current_room_info", "request_id": 2}))
        .await;
    assert_eq!(err(&r, 400), json!([NOT_IN_ROOM]));
    assert_eq!(r["action"], json!("current_room_info"));
    assert_eq!(r["request_id"], json!(2));
    let r = alice
        .req(json!({"action": "leave_room", "request_id": 3}))
        .await;
    assert_eq!(err(&r, 400), json!([NOT_IN_ROOM_LEAVE]));

    // Join a room of mine.
    let r = alice
        .req(json!({"action": "join_room", "room_pk": r1.0, "request_id": "j"}))
        .await;
    let data = ok(&r, "join_room", 200, json!("j"));
    assert_eq!(data["pk"], json!(r1.0));
    assert_eq!(data["has_business"], json!(true));
    assert_eq!(data["participants"].as_array().map(Vec::len), Some(2));
    let r = alice
        .req(json!({"action": "current_room_info", "request_id": 4}))
        .await;
    assert_eq!(ok(&r, "current_room_info", 200, json!(4)), data);

    // A room I am not in, and one that does not exist: 404, and I stay in r1.
    let r = alice
        .req(json!({"action": "join_room", "room_pk": r3.0, "request_id": 5}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    let r = alice
        .req(json!({"action": "join_room", "room_pk": 9999, "request_id": 6}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    let r = alice.req(json!({"action": "current_room_info"})).await;
    assert_eq!(
        ok(&r, "current_room_info", 200, Value::Null)["pk"],
        json!(r1.0)
    );

    // Joining another replaces the joined room.
    let r = alice
        .req(json!({"action": "join_room", "room_pk": r2.0}))
        .await;
    ok(&r, "join_room", 200, Value::Null);
    let r = alice
        .req(json!({"action": "leave_room", "request_id": 7}))
        .await;
    assert_eq!(
        ok(&r, "leave_room", 200, json!(7)),
        json!({"response": format!("leaved room {} successfully!", r2.0)})
    );
    let r = alice.req(json!({"action": "leave_room"})).await;
    assert_eq!(err(&r, 400), json!([NOT_IN_ROOM_LEAVE]));
}

#[tokio::test]
async fn create_message_fans_out_to_connections_joined_to_the_room() {
    let (w, room, other) = World::with_rooms(&[2, 3]).await;
    let mut alice = w.joined(1, "alice", room).await;
    let mut alice_tab = w.joined(1, "alice", room).await;
    let mut bob = w.joined(2, "bob", room).await;
    let mut bob_elsewhere = w.joined(2, "bob", other).await;

    // Without a joined room: 400, nothing stored.
    let mut lonely = w.user_conn(1, "alice").await;
    let r = lonely
        .req(json!({"action": "create_message", "msg_text": "x", "request_id": 1}))
        .await;
    assert_eq!(err(&r, 400), json!([NOT_IN_ROOM]));
    assert!(w.h.all_messages().await.is_empty());

    let rid = json!({"client": "web", "seq": 17});
    let r = alice
        .req(json!({"action": "create_message", "msg_text": "hello", "request_id": rid}))
        .await;
    let data = ok(&r, "create_message", 201, rid.clone());
    assert_eq!(data["text"], json!("hello"));
    assert_eq!(data["user"]["id"], json!(1));
    assert_eq!(data["user"]["username"], json!("alice"));
    assert_eq!(data["room"]["pk"], json!(room.0));
    assert_eq!(data["room"]["has_business"], json!(false));
    let id = data["id"].as_i64().expect("id");
    let created_at = data["created_at"].as_str().expect("created_at");
    assert!(
        created_at.ends_with('Z') && created_at.len() == "2024-06-17T18:00:00.000Z".len(),
        "{created_at}"
    );

    // The sender answered from the result; its hub copy is dropped.
    assert!(alice.pump().await.is_empty());
    // Everyone else joined to the room gets the same frame, with the sender's request_id.
    let bob_raw = bob.pump_raw().await;
    let tab_raw = alice_tab.pump_raw().await;
    match (&bob_raw[..], &tab_raw[..]) {
        ([Outgoing::Shared(a)], [Outgoing::Shared(b)]) => {
            assert!(Arc::ptr_eq(a, b), "rendered once for every recipient");
        }
        other => panic!("one shared frame each: {other:?}"),
    }
    assert_eq!(common::frames(bob_raw)[0], r);
    // A connection of a member joined to another room, and one not joined at all: silent.
    assert!(bob_elsewhere.pump().await.is_empty());
    assert!(lonely.pump().await.is_empty());

    assert_eq!(w.h.all_messages().await.len(), 1);
    assert_eq!(w.h.all_messages().await[0].id, MessageId(id));
}

#[tokio::test]
async fn edit_and_delete_in_the_joined_room() {
    let (w, room, other) = World::with_rooms(&[1, 3]).await;
    let mut alice = w.joined(1, "alice", room).await;
    let mut bob = w.joined(2, "bob", room).await;
    let a1 = send(&mut alice, "one").await;
    let a2 = send(&mut alice, "two").await;
    let b1 = send(&mut bob, "bob's").await;
    alice.pump().await;
    bob.pump().await;

    // Edit my own: 200 to me and to bob, with my request_id.
    let r = alice
        .req(json!({"action": "edit_message", "msg_id": a1, "edited_msg_text": "edit", "request_id": 1500000}))
        .await;
    let data = ok(&r, "edit_message", 200, json!(1500000));
    assert_eq!(
        data,
        json!({"room_id": room.0, "message_id": a1, "message_text": "edit"})
    );
    assert_eq!(bob.pump().await, vec![r.clone()]);
    assert!(alice.pump().await.is_empty());

    // Bob's message: 403, unchanged.
    let r = alice
        .req(json!({"action": "edit_message", "msg_id": b1, "edited_msg_text": "hijack", "request_id": 2}))
        .await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));
    // A message that does not exist, and one of another room: 404.
    let r = alice
        .req(json!({"action": "edit_message", "msg_id": 777, "edited_msg_text": "x"}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    w.join(&mut alice, other).await;
    let in_other = send(&mut alice, "elsewhere").await;
    w.join(&mut alice, room).await;
    let r = alice
        .req(json!({"action": "edit_message", "msg_id": in_other, "edited_msg_text": "x"}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    let r = alice
        .req(json!({"action": "delete_messages", "msg_id_list": [in_other]}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    assert!(
        bob.pump().await.is_empty(),
        "refusals and other rooms are silent"
    );

    // Deleting bob's along with mine: 403 and nothing deleted.
    let r = alice
        .req(json!({"action": "delete_messages", "msg_id_list": [a2, b1], "request_id": 3}))
        .await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));
    assert!(w
        .h
        .all_messages()
        .await
        .iter()
        .all(|m| m.deleted_at.is_none()));

    // Deleting mine: 200 to both.
    let r = alice
        .req(json!({"action": "delete_messages", "msg_id_list": [a1, a2], "request_id": "d"}))
        .await;
    assert_eq!(
        ok(&r, "delete_messages", 200, json!("d")),
        json!({"room_id": room.0, "messages_ids": [a1, a2]})
    );
    assert_eq!(bob.pump().await, vec![r]);
    // Again: they are gone.
    let r = alice
        .req(json!({"action": "delete_messages", "msg_id_list": [a1]}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    // Editing a deleted message: 400 on msg_id.
    let r = alice
        .req(json!({"action": "edit_message", "msg_id": a1, "edited_msg_text": "zombie"}))
        .await;
    assert!(err(&r, 400)[0].get("msg_id").is_some(), "{r}");
    // Too long for the service (limit 100 in this harness).
    let r = alice
        .req(json!({"action": "edit_message", "msg_id": a2, "edited_msg_text": "x".repeat(101)}))
        .await;
    assert_eq!(
        err(&r, 400),
        json!([{"edited_msg_text": ["Ensure this field has no more than 100 characters."]}])
    );
    let r = alice
        .req(json!({"action": "create_message", "msg_text": "x".repeat(101)}))
        .await;
    assert_eq!(
        err(&r, 400),
        json!([{"msg_text": ["Ensure this field has no more than 100 characters."]}])
    );
    assert!(bob.pump().await.is_empty());
}

#[tokio::test]
async fn admin_views_any_room_and_writes_only_in_business_rooms() {
    let w = World::new().await;
    let mut root = w.admin_conn(9, "root").await;
    let mut alice = w.user_conn(1, "alice").await;
    let mut bob = w.user_conn(2, "bob").await;
    let business = w.h.room(&[1, 2], true).await;
    let plain = w.h.room(&[1, 2], false).await;
    let mine_plain = w.h.room(&[9, 1], false).await;

    // list: every room.
    let r = root.req(json!({"action": "list", "request_id": 1})).await;
    assert_eq!(
        pk_list(&ok(&r, "list", 200, json!(1))),
        vec![business.0, plain.0, mine_plain.0]
    );
    // No current_room_info on the admin endpoint.
    let r = root
        .req(json!({"action": "current_room_info", "request_id": 2}))
        .await;
    assert_eq!(
        err(&r, 405),
        json!(["Method \"current_room_info\" not allowed."])
    );
    assert_eq!(r["action"], json!("current_room_info"));
    let r = root
        .req(json!({"action": "join_room", "room_pk": 4242}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));

    // A plain room: view yes, write no — even one the admin belongs to.
    w.join(&mut root, plain).await;
    let r = root
        .req(json!({"action": "create_message", "msg_text": "hi", "request_id": 3}))
        .await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));
    w.join(&mut root, mine_plain).await;
    let r = root
        .req(json!({"action": "create_message", "msg_text": "hi"}))
        .await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));
    w.join(&mut alice, plain).await;
    let a_plain = alice
        .req(json!({"action": "create_message", "msg_text": "p"}))
        .await["data"]["id"]
        .clone();
    w.join(&mut root, plain).await;
    let r = root
        .req(json!({"action": "delete_messages", "msg_id_list": [a_plain]}))
        .await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));

    // A business room: write, edit own only, delete any.
    w.join(&mut alice, business).await;
    w.join(&mut bob, business).await;
    w.join(&mut root, business).await;
    let r = root
        .req(json!({"action": "create_message", "msg_text": "support here", "request_id": "adm-1"}))
        .await;
    let data = ok(&r, "create_message", 201, json!("adm-1"));
    assert_eq!(data["user"]["id"], json!(9));
    let admin_msg = data["id"].clone();
    assert_eq!(alice.pump().await, vec![r.clone()]);
    assert_eq!(bob.pump().await, vec![r]);

    let r = alice
        .req(json!({"action": "create_message", "msg_text": "thanks", "request_id": 5}))
        .await;
    let alice_msg = ok(&r, "create_message", 201, json!(5))["id"].clone();
    assert_eq!(bob.pump().await, vec![r.clone()]);
    // The admin is not a member but watches the joined room: the push reaches it too.
    assert_eq!(root.pump().await, vec![r]);

    let r = root
        .req(json!({"action": "edit_message", "msg_id": alice_msg, "edited_msg_text": "censored"}))
        .await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));
    let r = root
        .req(json!({"action": "edit_message", "msg_id": admin_msg, "edited_msg_text": "support, edited", "request_id": 6}))
        .await;
    ok(&r, "edit_message", 200, json!(6));
    assert_eq!(alice.pump().await, vec![r.clone()]);
    assert_eq!(bob.pump().await, vec![r]);
    let r = root
        .req(json!({"action": "delete_messages", "msg_id_list": [alice_msg, admin_msg], "request_id": 7}))
        .await;
    assert_eq!(
        ok(&r, "delete_messages", 200, json!(7)),
        json!({"room_id": business.0, "messages_ids": [alice_msg, admin_msg]})
    );
    assert_eq!(alice.pump().await, vec![r.clone()]);
    assert_eq!(bob.pump().await, vec![r]);
}

#[tokio::test]
async fn a_user_deletes_only_own_messages() {
    let w = World::new().await;
    let mut alice = w.user_conn(1, "alice").await;
    let mut bob = w.user_conn(2, "bob").await;
    let room = w.h.room(&[1, 2], true).await;
    w.join(&mut alice, room).await;
    w.join(&mut bob, room).await;
    let b = bob
        .req(json!({"action": "create_message", "msg_text": "mine"}))
        .await["data"]["id"]
        .clone();
    alice.pump().await;
    let r = alice
        .req(json!({"action": "delete_messages", "msg_id_list": [b]}))
        .await;
    assert_eq!(err(&r, 403), json!([PERMISSION_DENIED]));
    assert!(bob.pump().await.is_empty());
}

#[tokio::test]
async fn pushes_from_other_dialects() {
    let w = World::new().await;
    let mut alice = w.user_conn(1, "alice").await;
    let bob = w.h.principal(2, "bob", false).await;
    let room = w.h.room(&[1, 2], false).await;
    w.join(&mut alice, room).await;

    // A message sent through another dialect, whose correlation tag is not ours.
    let origin = Origin {
        conn: chat_core::ConnId(-1),
        dialect: "method-args",
        tag: Some("\"k1\"".into()),
    };
    let (_, mv) =
        w.h.svc
            .send_message(
                &bob,
                SendMessage::text(RoomRef::Id(room), "from elsewhere"),
                Some(origin),
            )
            .await
            .expect("sent");
    let out = alice.pump().await;
    assert_eq!(out.len(), 1);
    let data = ok(&out[0], "create_message", 201, Value::Null);
    assert_eq!(data["text"], json!("from elsewhere"));
    assert_eq!(data["user"]["username"], json!("bob"));

    // Edits and deletions by others, with no origin at all.
    w.h.svc
        .edit_message(&bob, mv.message.id, "changed", None, None)
        .await
        .expect("edited");
    w.h.svc
        .delete_messages(&bob, &[mv.message.id], None, None)
        .await
        .expect("deleted");
    let out = alice.pump().await;
    assert_eq!(out.len(), 2);
    assert_eq!(
        ok(&out[0], "edit_message", 200, Value::Null),
        json!({"room_id": room.0, "message_id": mv.message.id.0, "message_text": "changed"})
    );
    assert_eq!(
        ok(&out[1], "delete_messages", 200, Value::Null),
        json!({"room_id": room.0, "messages_ids": [mv.message.id.0]})
    );

    // Typing, read marks, presence, room changes: silent.
    w.h.svc
        .typing(&bob, &RoomRef::Id(room))
        .await
        .expect("typing");
    let again =
        w.h.svc
            .send_message(&bob, SendMessage::text(RoomRef::Id(room), "x"), None)
            .await;
    assert!(again.is_ok());
    alice.pump().await;
    w.h.svc
        .mark_read(&bob, &RoomRef::Id(room), None, None)
        .await
        .expect("read");
    w.h.svc.set_presence(&bob, true).await.expect("presence");
    w.h.svc
        .rename_room(&bob, room, "renamed", None)
        .await
        .expect("renamed");
    let hub_event = Published::new(
        Event::Presence {
            user: bob.user.clone(),
            online: false,
        },
        None,
    );
    alice
        .session
        .on_event(&mut alice.cx, &Arc::new(hub_event))
        .await;
    assert!(alice.pump().await.is_empty());
}

#[tokio::test]
async fn bad_input_is_answered_and_the_connection_stays_usable() {
    let w = World::new().await;
    let mut alice = w.user_conn(1, "alice").await;
    w.h.principal(2, "bob", false).await;
    let room = w.h.room(&[1, 2], false).await;
    w.join(&mut alice, room).await;

    let one = |mut v: Vec<Value>| {
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    };
    let r = one(alice.text("{not json").await);
    assert!(err(&r, 400)[0]
        .as_str()
        .is_some_and(|s| s.starts_with("JSON parse error")));
    assert_eq!(
        (r["action"].clone(), r["request_id"].clone()),
        (Value::Null, Value::Null)
    );
    let r = one(alice.text("[1]").await);
    assert_eq!(
        err(&r, 400),
        json!(["Invalid data. Expected a dictionary, but got list."])
    );
    let r = one(alice.text("").await);
    err(&r, 400);
    let r = alice.req(json!({"request_id": 1})).await;
    assert_eq!(err(&r, 405), json!(["Method \"None\" not allowed."]));
    let r = alice
        .req(json!({"action": "drop_tables", "request_id": 2}))
        .await;
    assert_eq!(err(&r, 405), json!(["Method \"drop_tables\" not allowed."]));
    assert_eq!(r["request_id"], json!(2));
    // Field errors: (request, the errors answered with 400).
    let field_errors = [
        (
            json!({"action": "create_message", "request_id": 3}),
            json!([{"msg_text": ["This field is required."]}]),
        ),
        (
            json!({"action": "create_message", "msg_text": ["x"]}),
            json!([{"msg_text": ["Not a valid string."]}]),
        ),
        (
            json!({"action": "create_message", "msg_text": "   "}),
            json!([{"msg_text": ["This field may not be blank."]}]),
        ),
        (
            json!({"action": "join_room", "room_pk": "1x"}),
            json!([{"room_pk": ["A valid integer is required."]}]),
        ),
        (
            json!({"action": "delete_messages", "msg_id_list": "1"}),
            json!([{"msg_id_list": ["Expected a list of items but got type \"str\"."]}]),
        ),
        (
            json!({"action": "delete_messages", "msg_id_list": []}),
            json!([{"msg_id_list": ["This list may not be empty."]}]),
        ),
    ];
    for (request, errors) in field_errors {
        let r = alice.req(request.clone()).await;
        assert_eq!(err(&r, 400), errors, "{request}");
    }

    alice.session.on_binary(&mut alice.cx, b"\x00\x01").await;
    let r = one(common::frames(alice.cx.take_outgoing()));
    err(&r, 400);
    alice.session.on_oversize(&mut alice.cx, 1 << 20).await;
    let r = one(common::frames(alice.cx.take_outgoing()));
    err(&r, 400);

    // Nothing was stored, the joined room is intact, and the connection still works.
    assert!(w.h.all_messages().await.is_empty());
    let r = alice
        .req(json!({"action": "current_room_info", "request_id": 9}))
        .await;
    assert_eq!(
        ok(&r, "current_room_info", 200, json!(9))["pk"],
        json!(room.0)
    );
    let r = alice
        .req(json!({"action": "create_message", "msg_text": "still here"}))
        .await;
    ok(&r, "create_message", 201, Value::Null);
}

/// Create a message in the joined room; its id.
async fn send(c: &mut Conn, text: &str) -> i64 {
    let r = c
        .req(json!({"action": "create_message", "msg_text": text}))
        .await;
    r["data"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("created: {r}"))
}

#[tokio::test]
async fn a_removed_member_no_longer_sees_the_room() {
    let w = World::new().await;
    let mut alice = w.user_conn(1, "alice").await;
    let bob = w.h.principal(2, "bob", false).await;
    w.h.principal(3, "carol", false).await;
    let room = w.h.room(&[1, 2, 3], false).await;
    w.join(&mut alice, room).await;
    w.h.svc
        .remove_members(&bob, room, &[chat_core::UserId(1)], None)
        .await
        .expect_err("bob did not create the room");
    let root = w.h.principal(9, "root", true).await;
    w.h.svc
        .remove_members(&root, room, &[chat_core::UserId(1)], None)
        .await
        .expect("removed");
    assert!(
        alice.pump().await.is_empty(),
        "membership changes are silent"
    );
    let r = alice
        .req(json!({"action": "current_room_info", "request_id": 1}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    let r = alice
        .req(json!({"action": "create_message", "msg_text": "still here?"}))
        .await;
    assert_eq!(err(&r, 404), json!(["Not found."]));
    w.h.svc
        .send_message(&bob, SendMessage::text(RoomRef::Id(room), "bye"), None)
        .await
        .expect("sent");
    assert!(alice.pump().await.is_empty());
    let r = alice.req(json!({"action": "leave_room"})).await;
    ok(&r, "leave_room", 200, Value::Null);
}
