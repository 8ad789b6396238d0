//! The session driven without a socket (`socketio_common::harness`): the connect
//! decision, replies through the ack, the pushes a message and a read cause, the
//! error shape, and bad input that leaves the socket usable — over a real
//! `ChatService` on a throw-away SQLite file.

use dialect_socketio_pubsub::PubsubDialect;
use serde_json::{json, Value};
use socketio_common::harness::{error_event, handshake, Opened, Said, SioConn, World};
use socketio_common::node::assert_wire_error;

type Conn = SioConn<dialect_socketio_pubsub::session::PubsubSession>;

/// The one thing said in answer: the ack.
fn acked(said: Vec<Said>) -> Value {
    match &said[..] {
        [Said::Ack(v)] => v.clone(),
        other => panic!("expected one ack, got {other:?}"),
    }
}

fn push(event: &str, v: Value) -> Said {
    Said::Emit(event.into(), v)
}

async fn send(conn: &mut Conn, user: &str, message: &str) -> Value {
    acked(
        conn.call("send-message", json!({"message": message, "user": user}))
            .await,
    )
}

/// A world with ann and bob signed in on one dialect (one registry of waiting).
async fn ann_and_bob() -> (World, Conn, Conn) {
    let w = World::new().await;
    let d = PubsubDialect::default();
    let ann = w.connect(&d, 1, "ann").await;
    let bob = w.connect(&d, 2, "bob").await;
    (w, ann, bob)
}

#[tokio::test]
async fn a_bad_token_is_told_auth_failed_and_a_good_one_signs_in() {
    let w = World::new().await;
    let d = PubsubDialect::default();
    for (hs, why) in [
        (handshake(None), "no token"),
        (handshake(Some("expired")), "expired"),
        (handshake(Some("garbage")), "invalid"),
    ] {
        match w.open(&d, &hs).await {
            Opened::Rejected(events) => {
                assert_eq!(events.len(), 1, "{events:?}");
                assert_eq!(events[0].0, "auth-failed");
                let m = events[0].1["message"].as_str().unwrap_or_default();
                assert!(m.contains(why), "{m}");
            }
            _ => panic!("not rejected ({why})"),
        }
    }
    let mut ann = w.connect(&d, 1, "ann").await;
    w.user(2, "bob").await;
    assert_eq!(
        acked(ann.call("fetch-users", Value::Null).await),
        json!({"users": [{"username": "ann", "isOnline": true}, {"username": "bob", "isOnline": false}]})
    );
}

#[tokio::test]
async fn a_message_is_acked_and_pushed_with_the_unread_count_then_read() {
    let (_w, mut ann, mut bob) = ann_and_bob().await;
    let sent = send(&mut ann, "bob", "hi bob").await;
    assert_eq!(sent["chat"]["sender"], "ann");
    assert_eq!(sent["chat"]["recipient"], "bob");
    assert_eq!(sent["chat"]["has_read"], false);
    assert_eq!(
        bob.pump().await,
        [
            push("chat", sent.clone()),
            push(
                "unread-chats-count",
                json!({"unreadChatsCount": 1, "user": "ann"})
            ),
        ]
    );
    assert_eq!(
        ann.pump().await,
        [],
        "the sender is not pushed its own chat"
    );

    let id = sent["chat"]["id"].clone();
    assert_eq!(
        acked(bob.call("read-chat", json!({"id": id})).await),
        json!({})
    );
    assert_eq!(
        ann.pump().await,
        [push("read-chat", json!({"id": id, "user": "bob"}))]
    );
    assert_eq!(
        bob.pump().await,
        [push(
            "unread-chats-count",
            json!({"unreadChatsCount": 0, "user": "ann"})
        )]
    );
}

#[tokio::test]
async fn errors_have_the_one_shape_in_the_ack_or_as_an_event() {
    let w = World::new().await;
    let d = PubsubDialect::default();
    let mut ann = w.connect(&d, 1, "ann").await;
    for (event, payload, code) in [
        (
            "send-message",
            json!({"message": "hi", "user": "nobody"}),
            "not_found",
        ),
        (
            "send-message",
            json!({"message": "hi", "user": "ann"}),
            "invalid",
        ),
        ("read-chat", json!({"id": 987654}), "not_found"),
        ("delete-everything", json!({}), "unknown_event"),
    ] {
        assert_wire_error(&acked(ann.call(event, payload).await), code, event);
    }
    // Without an ack, an `error` event.
    let said = ann.emit("send-message", json!({"user": 42})).await;
    assert_wire_error(error_event(&said), "invalid", "send-message");
    // A success without an ack says nothing.
    assert_eq!(ann.emit("fetch-users", json!({})).await, []);
}

#[tokio::test]
async fn bad_payloads_change_nothing_and_the_socket_goes_on() {
    let (_w, mut ann, mut bob) = ann_and_bob().await;
    for payload in [
        Value::Null,
        json!(["hi", "bob"]),
        json!({"message": "hi", "user": 7}),
        json!({"message": "hi", "user": "bob", "media": [5]}),
    ] {
        let e = acked(ann.call("send-message", payload).await);
        assert_wire_error(&e, "invalid", "send-message");
    }
    assert_eq!(bob.pump().await, [], "nothing was sent");
    let sent = send(&mut ann, "bob", "still here").await;
    assert_eq!(bob.pump().await.first(), Some(&push("chat", sent)));
}

#[tokio::test]
async fn waiting_for_a_user_tells_the_peer_and_closing_stops_it() {
    let (_w, mut ann, mut bob) = ann_and_bob().await;
    assert_eq!(
        acked(ann.call("wait-for-user", json!({"user": "bob"})).await),
        json!({})
    );
    assert_eq!(
        bob.pump().await,
        [push("user-join", json!({"user": "ann"}))]
    );
    // bob opens the conversation too and learns at once that ann is there.
    assert_eq!(
        bob.call("wait-for-user", json!({"user": "ann"})).await,
        [
            push("user-join", json!({"user": "ann"})),
            Said::Ack(json!({}))
        ]
    );
    assert_eq!(
        ann.pump().await,
        [push("user-join", json!({"user": "bob"}))]
    );
    ann.close().await;
    assert_eq!(
        bob.pump().await,
        [push("user-leave", json!({"user": "ann"}))]
    );
}
