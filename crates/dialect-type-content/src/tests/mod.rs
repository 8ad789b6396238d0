//! Session tests without sockets: the real [`ChatService`] over a real SQLite store in
//! a throw-away file, sessions driven through the [`Session`] trait the way the
//! gateway's loop drives them.

use crate::{TypeContent, NAME};
use chat_core::store::Store;
use chat_core::{
    ChatService, Claims, ConnCtx, FileStore, Handshake, Outgoing, Principal, RoomId, RoomKind,
    SendMessage, ServiceConfig, Session, Subject, TokenError, TokenVerifier, Upload, UserId,
    WsDialect,
};
use serde_json::{json, Value};
use std::sync::Arc;

struct NoTokens;

impl TokenVerifier for NoTokens {
    fn verify(&self, _token: &str) -> Result<Claims, TokenError> {
        Err(TokenError::Invalid("test".into()))
    }
}

struct World {
    svc: Arc<ChatService>,
    store: Arc<dyn Store>,
    _db: chat_store::testing::TestDb,
}

impl World {
    async fn new() -> World {
        let (db, store) = chat_store::testing::sqlite_store().await;
        let files =
            FileStore::new(std::env::temp_dir().join(format!("tc-files-{}", std::process::id())));
        let config = ServiceConfig {
            public_base_url: "http://chat.test".into(),
            max_text_chars: 100,
            ..ServiceConfig::default()
        };
        let svc = ChatService::new(store.clone(), Arc::new(NoTokens), files, config);
        World {
            svc,
            store,
            _db: db,
        }
    }

    async fn user(&self, id: i64) -> Principal {
        self.svc
            .principal_for(&Claims {
                subject: Some(Subject::Id(id)),
                username: Some(format!("u{id}")),
                ..Claims::default()
            })
            .await
            .unwrap()
    }

    async fn room(&self, kind: RoomKind, members: &[&Principal]) -> RoomId {
        let ids: Vec<i64> = members.iter().map(|p| p.id().0).collect();
        chat_testkit::steps::store_room(&*self.store, kind, &ids, false).await
    }

    async fn connect(&self, p: &Principal) -> Conn {
        let hs = Handshake {
            principal: Some(p.clone()),
            ..Handshake::default()
        };
        let session = TypeContent::new().accept(&hs).expect("accepted");
        let mut conn = Conn {
            session,
            cx: ConnCtx::new(self.svc.clone()),
        };
        conn.session.on_open(&mut conn.cx).await;
        assert!(
            conn.cx.take_outgoing().is_empty(),
            "nothing is said on open"
        );
        conn
    }

    async fn messages(&self) -> usize {
        let mut n = 0;
        for r in self.store.all_rooms().await.unwrap() {
            n += self.store.history(r.id, None, 1000).await.unwrap().len();
        }
        n
    }
}

struct Conn {
    session: Box<dyn Session>,
    cx: ConnCtx,
}

fn parse(out: Vec<Outgoing>) -> Vec<Value> {
    out.into_iter()
        .map(|o| match o {
            Outgoing::Text(s) => serde_json::from_str(&s).unwrap(),
            Outgoing::Shared(s) => serde_json::from_str(&s).unwrap(),
            Outgoing::Close { code, reason } => panic!("unexpected close {code} {reason}"),
        })
        .collect()
}

impl Conn {
    /// Send a frame; the frames written directly in answer (errors, echoes).
    async fn send(&mut self, v: Value) -> Vec<Value> {
        self.send_text(&v.to_string()).await
    }

    async fn send_text(&mut self, text: &str) -> Vec<Value> {
        self.session.on_text(&mut self.cx, text).await;
        // Pipelined answers too, as the connection loop writes them.
        self.cx.settle().await;
        parse(self.cx.take_outgoing())
    }

    /// Deliver every queued hub event; the frames rendered.
    async fn pump_raw(&mut self) -> Vec<Outgoing> {
        let mut events = Vec::new();
        if let Some(sub) = self.cx.subscription.as_mut() {
            while let Ok(ev) = sub.rx.try_recv() {
                events.push(ev);
            }
        }
        for ev in events {
            self.session.on_event(&mut self.cx, &ev).await;
        }
        self.cx.take_outgoing()
    }

    async fn pump(&mut self) -> Vec<Value> {
        parse(self.pump_raw().await)
    }

    async fn error(&mut self, v: Value) -> String {
        let out = self.send(v.clone()).await;
        assert_eq!(out.len(), 1, "{v} → {out:?}");
        assert_eq!(out[0].as_object().map(|o| o.len()), Some(1), "{out:?}");
        out[0]["error"]
            .as_str()
            .expect("an error frame")
            .to_string()
    }
}

fn new_message(chat_type: &str, chat_id: Value, text: &str, reply_to: Value) -> Value {
    json!({"type": "new_message", "content": {
        "chat_type": chat_type, "chat_id": chat_id, "message": text, "reply_to": reply_to}})
}

/// `from` says `text` in the direct chat "1_2"; the message's id, once `to` has had
/// the push too.
async fn say(from: &mut Conn, to: &mut Conn, text: &str) -> i64 {
    // The sender's own `new_message` answers the command (see the session docs).
    let answer = from
        .send(new_message("direct", json!("1_2"), text, Value::Null))
        .await;
    let id = answer[0]["content"]["message_id"]
        .as_i64()
        .expect("a message id");
    to.pump().await;
    id
}

/// The direct chat "1_2" still works: `from`'s message is accepted without an error
/// and reaches `to`.
async fn assert_still_delivers(from: &mut Conn, to: &mut Conn, text: &str) {
    let answer = from
        .send(new_message("direct", json!("1_2"), text, Value::Null))
        .await;
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0]["type"], "new_message", "{answer:?}");
    assert_eq!(to.pump().await.len(), 1);
}

async fn pair() -> (World, Principal, Principal, Conn, Conn) {
    let w = World::new().await;
    let a = w.user(1).await;
    let b = w.user(2).await;
    let ca = w.connect(&a).await;
    let cb = w.connect(&b).await;
    (w, a, b, ca, cb)
}

#[tokio::test]
async fn handshake_without_a_valid_token_is_refused_with_403() {
    let d = TypeContent::new();
    assert_eq!(d.name(), NAME);
    let refusal = d.accept(&Handshake::default()).err().expect("refused");
    assert_eq!(refusal.status, 403);
    assert!(
        refusal.reason.contains("Authorization: Bearer"),
        "{}",
        refusal.reason
    );
    let hs = Handshake {
        token_error: Some(TokenError::Expired),
        ..Handshake::default()
    };
    let refusal = d.accept(&hs).err().expect("refused");
    assert_eq!(refusal.status, 403);
    assert_eq!(refusal.reason, "the token has expired");
    assert_eq!(d.subprotocol(&["Bearer", "tok"]), Some("Bearer"));
    assert_eq!(d.subprotocol(&["chat"]), None);
}

#[tokio::test]
async fn open_signs_in_and_close_signs_out() {
    let w = World::new().await;
    let a = w.user(1).await;
    let mut ca = w.connect(&a).await;
    assert!(w.svc.is_online(a.id()));
    ca.session.on_close(&mut ca.cx).await;
    assert!(!w.svc.is_online(a.id()));
}

#[tokio::test]
async fn new_message_in_a_direct_chat_reaches_both_after_commit() {
    let (w, _a, _b, mut ca, mut cb) = pair().await;
    ca.pump().await;
    cb.pump().await;
    // The sender's answers its command; the other member's comes from the hub.
    let mine = ca
        .send(new_message("direct", json!("1_2"), "hello", Value::Null))
        .await;
    assert!(ca.pump().await.is_empty(), "the hub's echo is dropped");
    let theirs = cb.pump().await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine, theirs);
    let c = &mine[0]["content"];
    assert_eq!(mine[0]["type"], "new_message");
    assert_eq!(c["chat_type"], "direct");
    assert_eq!(c["chat_id"], "1_2");
    assert_eq!(c["author_id"], 1);
    assert_eq!(c["text"], "hello");
    assert_eq!(c["reply_to"], Value::Null);
    assert_eq!(c["files"], json!([]));
    assert!(c["message_id"].as_i64().is_some());
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(w.messages().await, 1);

    // A reply, from the other side.
    let id = c["message_id"].clone();
    let answer = cb
        .send(new_message("direct", json!("1_2"), "hi back", id.clone()))
        .await;
    assert_eq!(answer[0]["content"]["reply_to"], id, "{answer:?}");
    let got = ca.pump().await;
    assert_eq!(got[0]["content"]["reply_to"], id);
    assert_eq!(got[0]["content"]["author_id"], 2);
}

#[tokio::test]
async fn one_rendering_is_shared_by_every_recipient() {
    let (w, _a, b, mut ca, mut cb) = pair().await;
    // Two connections of the recipient (the sender's own answers from its result).
    let mut cb2 = w.connect(&b).await;
    ca.send(new_message("direct", json!("1_2"), "x", Value::Null))
        .await;
    let (Some(Outgoing::Shared(x)), Some(Outgoing::Shared(y))) =
        (cb.pump_raw().await.pop(), cb2.pump_raw().await.pop())
    else {
        panic!("expected shared frames");
    };
    assert!(Arc::ptr_eq(&x, &y));
}

#[tokio::test]
async fn refused_new_messages_store_nothing() {
    let (w, _a, _b, mut ca, mut cb) = pair().await;
    let c = w.user(3).await;
    let first = json!(say(&mut ca, &mut cb, "first").await);

    let e = ca
        .error(new_message("direct", json!("2_3"), "not mine", Value::Null))
        .await;
    assert!(e.starts_with("new_message: not allowed: "), "{e}");
    let e = ca
        .error(new_message("direct", json!("1_99"), "nobody", Value::Null))
        .await;
    assert_eq!(
        e,
        "new_message: user not found: the other user of this direct chat does not exist"
    );
    let e = ca
        .error(new_message("direct", json!("1_2"), "   ", Value::Null))
        .await;
    assert!(e.starts_with("new_message: `message`: "), "{e}");
    let e = ca
        .error(new_message(
            "direct",
            json!("1_2"),
            &"x".repeat(101),
            Value::Null,
        ))
        .await;
    assert_eq!(
        e,
        "new_message: `message` is too long (101 characters, at most 100 allowed)"
    );
    let e = ca
        .error(new_message("direct", json!("1_2"), "r", json!(999)))
        .await;
    assert!(
        e.starts_with("new_message: `reply_to`: message 999 is not a message of this chat"),
        "{e}"
    );
    // A reply to a message of another chat.
    let mut cc = w.connect(&c).await;
    let e = cc
        .error(new_message("direct", json!("1_3"), "r", first))
        .await;
    assert!(e.contains("`reply_to`"), "{e}");
    let e = ca
        .error(new_message("project", json!(5), "p", Value::Null))
        .await;
    assert_eq!(
        e,
        "new_message: project chat not found: no chat exists for this project id"
    );

    assert_eq!(w.messages().await, 1);
    assert!(ca.pump().await.is_empty());
    assert!(cb.pump().await.is_empty());
    // Still usable.
    assert_still_delivers(&mut ca, &mut cb, "again").await;
}

#[tokio::test]
async fn project_chats_by_integer_or_numeric_string() {
    let (w, a, b, mut ca, mut cb) = pair().await;
    let outsider = w.user(3).await;
    w.room(RoomKind::Project { project_id: 77 }, &[&a, &b])
        .await;
    ca.pump().await;
    cb.pump().await;
    ca.send(new_message("project", json!(77), "p1", Value::Null))
        .await;
    ca.send(new_message("project", json!("77"), "p2", Value::Null))
        .await;
    let got = cb.pump().await;
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(g["content"]["chat_type"], "project");
        assert_eq!(g["content"]["chat_id"], 77);
    }
    let mut co = w.connect(&outsider).await;
    let e = co
        .error(new_message("project", json!(77), "intruder", Value::Null))
        .await;
    assert_eq!(
        e,
        "new_message: chat not found, or you are not a member of it"
    );
    assert!(co.pump().await.is_empty());
}

#[tokio::test]
async fn group_rooms_are_chat_type_group_with_the_room_id() {
    let (w, a, b, mut ca, mut cb) = pair().await;
    let c = w.user(3).await;
    let g = w.room(RoomKind::Group, &[&a, &b, &c]).await;
    ca.pump().await;
    cb.pump().await;
    ca.send(new_message("group", json!(g.0), "to all", Value::Null))
        .await;
    let got = cb.pump().await;
    assert_eq!(got[0]["content"]["chat_type"], "group");
    assert_eq!(got[0]["content"]["chat_id"], g.0);
    // A direct room's id is not a group chat.
    let d = w
        .room(RoomKind::direct(a.id(), c.id()).unwrap(), &[&a, &c])
        .await;
    let e = ca
        .error(new_message("group", json!(d.0), "x", Value::Null))
        .await;
    assert_eq!(
        e,
        "new_message: group chat not found: no group chat with this id, or you are not a member of it"
    );
    let e = ca
        .error(new_message("group", json!(12345), "x", Value::Null))
        .await;
    assert!(e.starts_with("new_message: group chat not found"), "{e}");
}

#[tokio::test]
async fn typing_reaches_the_others_and_a_flood_is_refused() {
    let (w, _a, _b, mut ca, mut cb) = pair().await;
    ca.pump().await;
    cb.pump().await;
    let typing =
        json!({"type": "user_typing", "content": {"chat_type": "direct", "chat_id": "1_2"}});
    assert!(ca.send(typing.clone()).await.is_empty());
    assert!(ca.pump().await.is_empty(), "the typist is not told");
    let got = cb.pump().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "user_typing");
    assert_eq!(got[0]["content"]["user_id"], 1);
    assert_eq!(got[0]["content"]["chat_id"], "1_2");
    assert_eq!(got[0]["content"]["chat_type"], "direct");
    let end: chrono::DateTime<chrono::Utc> = got[0]["content"]["end_time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(end > chrono::Utc::now());
    let mut errors = Vec::new();
    for _ in 0..15 {
        errors.extend(ca.send(typing.clone()).await);
    }
    assert!(!errors.is_empty());
    assert!(errors[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("user_typing: too many user_typing events"));
    assert!(
        cb.pump().await.is_empty(),
        "refreshes within a second are not republished"
    );
    let _ = w;
}

#[tokio::test]
async fn message_read_is_pushed_to_the_chat_and_echoed_when_nothing_moves() {
    let (_w, _a, _b, mut ca, mut cb) = pair().await;
    let id = say(&mut ca, &mut cb, "m1").await;
    let read = json!({"type": "message_read", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": id}});
    assert!(cb.send(read.clone()).await.is_empty());
    let expect = json!({"type": "message_read", "content": {
        "chat_type": "direct", "chat_id": "1_2", "user_id": 2, "message_id": id}});
    assert_eq!(ca.pump().await, vec![expect.clone()]);
    assert_eq!(cb.pump().await, vec![expect.clone()]);
    // Again: nothing changes, only the sender's connection is answered.
    assert_eq!(cb.send(read).await, vec![expect]);
    assert!(ca.pump().await.is_empty());
    assert!(cb.pump().await.is_empty());
}

#[tokio::test]
async fn refused_reads() {
    let (w, _a, _b, mut ca, mut cb) = pair().await;
    let c = w.user(3).await;
    let id = say(&mut ca, &mut cb, "m1").await;
    let rooms_before = w.store.all_rooms().await.unwrap().len();
    let read = |chat: &str, m: i64| json!({"type": "message_read", "content": {"chat_type": "direct", "chat_id": chat, "message_id": m}});
    let e = cb.error(read("1_2", 999)).await;
    assert_eq!(e, "message_read: message not found in this chat");
    // A chat that was never used is not created by reading it.
    let mut cc = w.connect(&c).await;
    let e = cc.error(read("2_3", 1)).await;
    assert_eq!(
        e,
        "message_read: chat not found, or you are not a member of it"
    );
    // Somebody else's chat.
    let e = cc.error(read("1_2", id)).await;
    assert_eq!(
        e,
        "message_read: not allowed: you are not one of the two users of this direct chat"
    );
    assert_eq!(w.store.all_rooms().await.unwrap().len(), rooms_before);
    assert!(ca.pump().await.is_empty());
}

#[tokio::test]
async fn delete_message_by_the_author_reaches_the_chat() {
    let (w, _a, _b, mut ca, mut cb) = pair().await;
    let id = say(&mut ca, &mut cb, "oops").await;
    let del = json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": id}});
    let e = cb.error(del.clone()).await;
    assert_eq!(
        e,
        "delete_message: not allowed: only the author or an admin may delete a message"
    );
    assert!(ca.pump().await.is_empty());
    assert!(ca.send(del.clone()).await.is_empty());
    let expect = json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": id}});
    assert_eq!(ca.pump().await, vec![expect.clone()]);
    assert_eq!(cb.pump().await, vec![expect.clone()]);
    // Deleting a tombstone again changes nothing and answers only the sender.
    assert_eq!(ca.send(del).await, vec![expect]);
    assert!(cb.pump().await.is_empty());
    let stored = w
        .store
        .message(chat_core::MessageId(id))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.is_deleted());
}

#[tokio::test]
async fn refused_deletes() {
    let (w, a, b, mut ca, mut cb) = pair().await;
    w.room(RoomKind::Project { project_id: 5 }, &[&a, &b]).await;
    let answer = ca
        .send(new_message("project", json!(5), "in project", Value::Null))
        .await;
    let pid = answer[0]["content"]["message_id"].as_i64().unwrap();
    cb.pump().await;
    let del = |ty: &str, chat: Value, m: i64| json!({"type": "delete_message", "content": {"chat_type": ty, "chat_id": chat, "message_id": m}});
    let rooms_before = w.store.all_rooms().await.unwrap().len();
    // The message exists, but in another chat (the direct chat does not even exist yet).
    let e = ca.error(del("direct", json!("1_2"), pid)).await;
    assert_eq!(
        e,
        "delete_message: chat not found, or you are not a member of it"
    );
    assert_eq!(w.store.all_rooms().await.unwrap().len(), rooms_before);
    ca.send(new_message("direct", json!("1_2"), "direct", Value::Null))
        .await;
    ca.pump().await;
    cb.pump().await;
    let e = ca.error(del("direct", json!("1_2"), pid)).await;
    assert_eq!(e, "delete_message: message not found in this chat");
    let e = ca.error(del("project", json!(5), 4242)).await;
    assert_eq!(e, "delete_message: message not found in this chat");
    let e = ca.error(del("project", json!(6), pid)).await;
    assert_eq!(
        e,
        "delete_message: project chat not found: no chat exists for this project id"
    );
    assert!(!w
        .store
        .message(chat_core::MessageId(pid))
        .await
        .unwrap()
        .unwrap()
        .is_deleted());
    assert!(cb.pump().await.is_empty());
}

#[tokio::test]
async fn set_online_and_set_offline_reach_contacts() {
    let (w, a, b, mut ca, mut cb) = pair().await;
    w.room(RoomKind::direct(a.id(), b.id()).unwrap(), &[&a, &b])
        .await;
    ca.pump().await;
    cb.pump().await;
    assert!(ca.send(json!({"type": "set_offline"})).await.is_empty());
    assert_eq!(
        cb.pump().await,
        vec![json!({"type": "set_offline", "content": {"user_id": 1}})]
    );
    assert!(ca
        .send(json!({"type": "set_online", "content": {}}))
        .await
        .is_empty());
    assert_eq!(
        cb.pump().await,
        vec![json!({"type": "set_online", "content": {"user_id": 1}})]
    );
    assert!(ca.pump().await.is_empty(), "no echo to oneself");
}

#[tokio::test]
async fn connecting_and_leaving_is_presence_for_contacts() {
    let w = World::new().await;
    let a = w.user(1).await;
    let b = w.user(2).await;
    let stranger = w.user(3).await;
    w.room(RoomKind::direct(a.id(), b.id()).unwrap(), &[&a, &b])
        .await;
    let mut cb = w.connect(&b).await;
    let mut cs = w.connect(&stranger).await;
    let mut ca = w.connect(&a).await;
    assert_eq!(
        cb.pump().await,
        vec![json!({"type": "set_online", "content": {"user_id": 1}})]
    );
    ca.session.on_close(&mut ca.cx).await;
    assert_eq!(
        cb.pump().await,
        vec![json!({"type": "set_offline", "content": {"user_id": 1}})]
    );
    assert!(
        cs.pump().await.is_empty(),
        "only users who share a room hear of it"
    );
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_stays_usable() {
    let (w, _a, _b, mut ca, mut cb) = pair().await;
    for (frame, want) in [
        ("hello", "the frame is not valid JSON"),
        ("[]", "the frame must be a JSON object"),
        ("{\"content\": {}}", "the frame has no \"type\""),
        ("{\"type\": \"shout\"}", "unknown event type \"shout\""),
        ("{\"type\": \"new_message\"}", "new_message: missing \"content\""),
        ("{\"type\": \"new_message\", \"content\": {\"chat_type\": \"direct\", \"chat_id\": \"1_2\", \"message\": \"x\"}}", "new_message: missing field `reply_to`"),
        ("{\"type\": \"delete_message\", \"content\": {\"chat_type\": \"direct\", \"chat_id\": \"1_2\", \"message_id\": \"x\"}}", "delete_message: `message_id`: invalid value"),
        ("{\"type\": \"user_typing\", \"content\": {\"chat_type\": \"direct\", \"chat_id\": \"12\"}}", "user_typing: `chat_id`: a direct chat id is"),
    ] {
        let out = ca.send_text(frame).await;
        assert_eq!(out.len(), 1, "{frame}");
        let e = out[0]["error"].as_str().unwrap();
        assert!(e.starts_with(want), "{frame}: {e}");
    }
    ca.session.on_oversize(&mut ca.cx, 2_000_000).await;
    let out = parse(ca.cx.take_outgoing());
    assert!(out[0]["error"].as_str().unwrap().contains("2000000 bytes"));
    ca.session.on_binary(&mut ca.cx, b"\x00\x01").await;
    let out = parse(ca.cx.take_outgoing());
    assert!(out[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("binary frames are not supported"));
    assert_eq!(w.messages().await, 0);
    assert!(cb.pump().await.is_empty());
    assert_still_delivers(&mut ca, &mut cb, "fine").await;
}

#[tokio::test]
async fn events_from_other_dialects() {
    let (w, a, b, mut ca, mut cb) = pair().await;
    let room = w.svc.direct_room(&a, b.id()).await.unwrap();
    assert!(cb.pump().await.is_empty(), "room creation has no word here");
    // A message with an attachment, sent through another dialect.
    let cmd = SendMessage {
        uploads: vec![Upload {
            name: "cat.png".into(),
            content_type: None,
            bytes: vec![1, 2, 3],
        }],
        ..SendMessage::text(chat_core::RoomRef::Id(room.id()), "look")
    };
    let (_, mv) = w.svc.send_message(&a, cmd, None).await.unwrap();
    let got = cb.pump().await;
    let att = &mv.message.attachments[0];
    let url = w.svc.file_url(att);
    assert!(url.starts_with("http://chat.test/files/"), "{url}");
    assert_eq!(got[0]["content"]["text"], format!("look\n{url}"));
    assert_eq!(
        got[0]["content"]["files"],
        json!([{"id": att.id.0, "name": "cat.png", "url": url, "content_type": "image/png", "size": 3}])
    );
    // Edits are silent.
    w.svc
        .edit_message(&a, mv.message.id, "edited", None, None)
        .await
        .unwrap();
    assert!(cb.pump().await.is_empty());
    // A deletion of several messages becomes one frame per id.
    let (_, m2) = w
        .svc
        .send_message(
            &a,
            SendMessage::text(chat_core::RoomRef::Id(room.id()), "two"),
            None,
        )
        .await
        .unwrap();
    cb.pump().await;
    w.svc
        .delete_messages(&a, &[mv.message.id, m2.message.id], None, None)
        .await
        .unwrap();
    let got = cb.pump().await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["content"]["message_id"], mv.message.id.0);
    assert_eq!(got[1]["content"]["message_id"], m2.message.id.0);
    ca.pump().await;
    let _ = UserId(0);
}
