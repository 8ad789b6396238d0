//! The session driven without a socket (`socketio_common::harness`): the connect
//! decision, replies as an event and an ack, the push to another member, the error
//! shape, and bad input that leaves the socket usable — over a real `ChatService` on
//! a throw-away SQLite file.

use dialect_socketio_rooms::RoomsDialect;
use serde_json::{json, Value};
use socketio_common::harness::{error_event, handshake, token, Opened, Said, SioConn, World};
use socketio_common::node::assert_wire_error;

type Conn = SioConn<dialect_socketio_rooms::session::RoomsSession>;

const DIALECT: RoomsDialect = RoomsDialect { trusted: false };

/// A reply is the event of the same name, then the same payload in the ack.
fn reply(said: Vec<Said>, event: &str) -> Value {
    match &said[..] {
        [Said::Emit(name, v), Said::Ack(a)] if name == event && a == v => v.clone(),
        other => panic!("expected `{event}` and its ack, got {other:?}"),
    }
}

/// An error is an `error` event, then the same error in the ack.
fn error(said: Vec<Said>, code: &str, event: &str) {
    let e = reply(said, "error");
    assert_wire_error(&e, code, event);
}

/// A world with ann and bob signed in.
async fn ann_and_bob() -> (World, Conn, Conn) {
    let w = World::new().await;
    let ann = w.connect(&DIALECT, 1, "ann").await;
    let bob = w.connect(&DIALECT, 2, "bob").await;
    (w, ann, bob)
}

async fn chat_of(conn: &mut Conn, name: &str, users: &[&str]) -> String {
    let c = reply(
        conn.call(
            "create-chat",
            json!({"chat": {"name": name}, "users": users}),
        )
        .await,
        "create-chat",
    );
    c["chat"]["id"].as_str().expect("a chat id").to_string()
}

fn text(chat: &str, user: &str, value: &str) -> Value {
    json!({"chat": {"id": chat}, "user": {"id": user}, "message": {"value": value, "type": "text"}})
}

#[tokio::test]
async fn a_token_is_required_and_signs_the_socket_in() {
    let w = World::new().await;
    for (hs, why) in [
        (handshake(None), "no token"),
        (handshake(Some("expired")), "expired"),
        (handshake(Some("garbage")), "invalid"),
    ] {
        match w.open(&DIALECT, &hs).await {
            Opened::Refused(m) => assert!(m.contains(why), "{m}"),
            _ => panic!("accepted without a good token ({why})"),
        }
    }
    let mut ann = w.connect(&DIALECT, 1, "ann").await;
    assert_eq!(ann.cx.principal().map(|p| p.id().0), Some(1));
    let l = reply(
        ann.call("list-chats", json!({"user": {"id": "1"}})).await,
        "list-chats",
    );
    assert_eq!(l, json!({"chats": []}));
    // A token in the query string works too.
    let mut hs = handshake(None);
    hs.query = Some(format!("token={}", token(2, "bob")));
    w.open(&DIALECT, &hs).await.conn();
}

#[tokio::test]
async fn a_message_is_answered_and_pushed_to_the_other_member_only() {
    let (_w, mut ann, mut bob) = ann_and_bob().await;
    let chat = chat_of(&mut ann, "team", &["2"]).await;
    let m = reply(
        ann.call("new-message", text(&chat, "1", "hello")).await,
        "new-message",
    );
    assert_eq!(m["msg"], "hello");
    assert_eq!(m["user_id"], "1");
    assert_eq!(m["chat_id"], chat);
    assert_eq!(
        bob.pump().await,
        [Said::Emit("new-message".into(), m)],
        "the member gets the sender's answer"
    );
    assert_eq!(ann.pump().await, [], "the sender sees its message once");
    let l = reply(
        bob.call("list-messages", json!({"chat": {"id": chat}}))
            .await,
        "list-messages",
    );
    assert_eq!(l["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn errors_have_the_one_shape_as_an_event_and_an_ack() {
    let w = World::new().await;
    let mut ann = w.connect(&DIALECT, 1, "ann").await;
    w.user(2, "bob").await;
    let chat = chat_of(&mut ann, "t", &["2"]).await;
    error(
        ann.call("new-message", text(&chat, "2", "as bob")).await,
        "forbidden",
        "new-message",
    );
    error(
        ann.call("new-message", text("999999", "1", "x")).await,
        "not_found",
        "new-message",
    );
    error(
        ann.call("frobnicate", json!({})).await,
        "unknown_event",
        "frobnicate",
    );
    // Without an ack, only the `error` event.
    let said = ann.emit("list-chats", json!(["nope"])).await;
    assert_wire_error(error_event(&said), "invalid", "list-chats");
}

#[tokio::test]
async fn bad_payloads_change_nothing_and_the_socket_goes_on() {
    let (_w, mut ann, mut bob) = ann_and_bob().await;
    let chat = chat_of(&mut ann, "t", &["2"]).await;
    for payload in [
        json!("just a string"),
        json!({"chat": {"id": chat}, "user": {"id": "1"}}),
        json!({"chat": {"id": chat}, "user": {"id": "1"}, "message": {"value": "x", "type": "video"}}),
        json!({"chat": {"id": chat}, "user": {"id": "1"}, "message": {"value": 5}}),
    ] {
        error(
            ann.call("new-message", payload).await,
            "invalid",
            "new-message",
        );
    }
    assert_eq!(bob.pump().await, [], "nothing was sent");
    let m = reply(
        ann.call("new-message", text(&chat, "1", "still here"))
            .await,
        "new-message",
    );
    assert_eq!(bob.pump().await, [Said::Emit("new-message".into(), m)]);
    bob.close().await;
}

#[tokio::test]
async fn the_trusted_mode_acts_as_the_user_a_body_names() {
    let w = World::new().await;
    let trusted = RoomsDialect { trusted: true };
    let mut a = w.open(&trusted, &handshake(None)).await.conn();
    assert!(a.cx.principal().is_none());
    let u = reply(
        a.call(
            "create-user",
            json!({"user": {"external_id": "ext-a", "name": "A", "photo": ""}}),
        )
        .await,
        "create-user",
    );
    let id = u["user"]["id"].as_str().expect("an id").to_string();
    assert_eq!(
        a.cx.principal().map(|p| p.id().0.to_string()),
        Some(id),
        "bound to the first user it names"
    );
}
