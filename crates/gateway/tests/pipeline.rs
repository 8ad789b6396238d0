//! Pipelining: a connection that sends many messages without waiting has them admitted
//! while earlier ones commit, yet every answer leaves in the order the commands came,
//! every acknowledged message is stored, ids follow the order of sending, a refused
//! command in the middle is answered in its place, and a command that is not pipelined
//! is answered after (and sees) everything sent before it.

use chat_core::{MessageId, RoomKind};
use chat_testkit::{dual_backend_test, TestGateway, WsClient};
use serde_json::{json, Value};

/// Messages sent back to back (under the default per-user burst).
const N: usize = 150;
/// The one that names a chat that does not exist.
const BAD: usize = 77;

async fn method_args(gw: &TestGateway, user: i64, name: &str) -> WsClient {
    let mut c = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    c.send_json(&json!({"method": "auth", "access_token": gw.token(user, name)}))
        .await;
    assert_eq!(c.recv_json().await["type"], "authenticated");
    gw.wait_connections(user, 1).await;
    c
}

/// Whether the message of an acknowledgement is stored.
async fn stored(gw: &TestGateway, id: i64) -> bool {
    let found = gw.service().store().message(MessageId(id)).await;
    found.expect("store lookup").is_some()
}

async fn answers_in_command_order(gw: TestGateway) {
    chat_testkit::steps::create_users(&gw, &[(1, "sender"), (2, "reader")]).await;
    let room = gw.create_room(RoomKind::Group, &[1, 2], false).await.0;
    let mut sender = method_args(&gw, 1, "sender").await;
    let mut reader = method_args(&gw, 2, "reader").await;

    for i in 0..N {
        let chat = if i == BAD { 999_999 } else { room };
        sender
            .send_json(&json!({"method": "send_message", "args": {
                "chat": chat, "text": format!("p{i}"), "event_response_key": i}}))
            .await;
    }
    // Not pipelined: answered after every message before it.
    sender
        .send_json(&json!({"method": "read_messages", "args": {"chat": room}}))
        .await;

    let mut last_id = 0;
    for i in 0..N {
        let frame = sender.recv_json().await;
        assert_eq!(
            frame["data"]["event_response_key"], i,
            "answer {i}: {frame}"
        );
        if i == BAD {
            assert_eq!(frame["type"], "error", "{frame}");
            continue;
        }
        assert_eq!(frame["type"], "message_created", "{frame}");
        let message = &frame["data"]["message"];
        assert_eq!(message["text"], format!("p{i}"));
        let id = message["id"].as_i64().expect("message id");
        assert!(
            id > last_id,
            "ids follow the order of sending: {id} after {last_id}"
        );
        // An acknowledgement still means the message is stored.
        assert!(
            stored(&gw, id).await,
            "message {id} acknowledged but not stored"
        );
        last_id = id;
    }
    let read = sender.recv_json().await;
    assert_eq!(read["type"], "messages_read", "{read}");

    // Every other member hears them in the same order.
    let mut heard = Vec::new();
    while heard.len() < N - 1 {
        let frame = reader.recv_json().await;
        if frame["type"] == "new_message" {
            heard.push(frame["data"]["message"]["text"].as_str().map(str::to_owned));
        }
    }
    let sent: Vec<_> = (0..N)
        .filter(|&i| i != BAD)
        .map(|i| Some(format!("p{i}")))
        .collect();
    assert_eq!(heard, sent);

    // And the history holds them in that order, nothing lost.
    let page = gw
        .service()
        .store()
        .history(chat_core::RoomId(room), None, 500)
        .await
        .expect("history");
    let texts: Vec<_> = page.iter().rev().map(|m| Some(m.text.clone())).collect();
    assert_eq!(texts, sent);
}
dual_backend_test!(answers_in_command_order);

/// A connection that closes with commands in flight still has them committed and
/// published to the room.
async fn closing_publishes_what_it_admitted(gw: TestGateway) {
    chat_testkit::steps::create_users(&gw, &[(1, "sender"), (2, "reader")]).await;
    let room = gw.create_room(RoomKind::Group, &[1, 2], false).await.0;
    let mut sender = method_args(&gw, 1, "sender").await;
    let mut reader = method_args(&gw, 2, "reader").await;
    for i in 0..40 {
        sender
            .send_json(&json!({"method": "send_message", "args": {
                "chat": room, "text": format!("c{i}")}}))
            .await;
    }
    // The close frame comes after the 40 commands, so all are admitted; most are
    // still in flight when it is read.
    sender.close_handshake().await;
    let mut heard = 0;
    while heard < 40 {
        let frame: Value = reader.recv_json().await;
        if frame["type"] == "new_message" {
            assert_eq!(frame["data"]["message"]["text"], format!("c{heard}"));
            heard += 1;
        }
    }
}
dual_backend_test!(closing_publishes_what_it_admitted);

/// type-content: the sender hears its own messages from the hub, in order, and a
/// refusal in the middle comes in its place.
async fn type_content_in_order(gw: TestGateway) {
    chat_testkit::steps::create_users(&gw, &[(1, "tc"), (2, "other")]).await;
    let project = RoomKind::Project { project_id: 4242 };
    gw.create_room(project, &[1, 2], false).await;
    let bearer = format!("Bearer {}", gw.token(1, "tc"));
    let mut tc =
        WsClient::connect_with_headers(&gw.ws_url("/ws/chats/"), &[("authorization", &bearer)])
            .await
            .expect("type-content upgrade");
    gw.wait_connections(1, 1).await;
    for i in 0..60 {
        let chat = if i == 30 {
            json!({"chat_type": "group", "chat_id": 987_654})
        } else {
            json!({"chat_type": "project", "chat_id": 4242})
        };
        let mut content = chat;
        content["message"] = json!(format!("t{i}"));
        content["reply_to"] = Value::Null;
        tc.send_json(&json!({"type": "new_message", "content": content}))
            .await;
    }
    let mut i = 0;
    while i < 60 {
        let frame = tc.recv_json().await;
        match frame["type"].as_str() {
            Some("new_message") => {
                assert_ne!(i, 30, "{frame}");
                assert_eq!(frame["content"]["text"], format!("t{i}"), "{frame}");
                i += 1;
            }
            _ if frame.get("error").is_some() => {
                assert_eq!(i, 30, "the refusal comes in its place: {frame}");
                i += 1;
            }
            _ => {} // presence and the like
        }
    }
}
dual_backend_test!(type_content_in_order);
