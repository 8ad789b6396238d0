//! Clients of the three plain-WebSocket dialects in one room see each other: a
//! method-args, a type-content and an action-request client share a project room, and
//! every ordered pair is checked for messages, and wherever both sides can express
//! them, edits, deletes and read marks.

use chat_core::RoomKind;
use chat_testkit::{dual_backend_test, TestGateway, WsClient};
use serde_json::{json, Value};

const PROJECT: i64 = 500;

struct Trio {
    ma: WsClient,
    tc: WsClient,
    ar: WsClient,
    room: i64,
}

async fn trio(gw: &TestGateway) -> Trio {
    gw.create_user(1, "ma").await;
    gw.create_user(2, "tc").await;
    gw.create_user(3, "ar").await;
    let room = gw
        .create_room(
            RoomKind::Project {
                project_id: PROJECT,
            },
            &[1, 2, 3],
            false,
        )
        .await
        .0;
    let mut ma = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    ma.send_json(&json!({"method": "auth", "access_token": gw.token(1, "ma")}))
        .await;
    assert_eq!(ma.recv_json().await["type"], "authenticated");
    let tc = WsClient::connect_with_headers(
        &gw.ws_url("/ws/chats/"),
        &[("authorization", &format!("Bearer {}", gw.token(2, "tc")))],
    )
    .await
    .expect("type-content upgrade");
    gw.wait_connections(2, 1).await;
    let mut ar = WsClient::connect_with_headers(
        &gw.ws_url("/ws/dcrf/chat/"),
        &[("authorization", &format!("Bearer {}", gw.token(3, "ar")))],
    )
    .await
    .expect("action-request upgrade");
    ar.send_json(&json!({"action": "join_room", "room_pk": room, "request_id": 1}))
        .await;
    let joined = ar.recv_where("action", "join_room").await;
    assert_eq!(joined["response_status"], 200);
    Trio { ma, tc, ar, room }
}

/// The next frame that is not presence chatter.
async fn next(c: &mut WsClient) -> Value {
    c.recv_until(|v| {
        !matches!(
            v.get("type").and_then(Value::as_str),
            Some("set_online" | "set_offline")
        )
    })
    .await
}

async fn ma_send(t: &mut Trio, text: &str) -> i64 {
    let room = t.room;
    t.ma.send_json(&json!({"method": "send_message", "args": {"chat": room, "text": text}}))
        .await;
    let v = t.ma.recv_where("type", "message_created").await;
    v["data"]["message"]["id"].as_i64().unwrap()
}

async fn tc_send(t: &mut Trio, text: &str) -> i64 {
    t.tc.send_json(&json!({"type": "new_message", "content": {"chat_type": "project", "chat_id": PROJECT, "message": text, "reply_to": null}}))
        .await;
    let v = next(&mut t.tc).await;
    assert_eq!(v["type"], "new_message", "{v}");
    v["content"]["message_id"].as_i64().unwrap()
}

async fn ar_send(t: &mut Trio, text: &str) -> i64 {
    t.ar.send_json(&json!({"action": "create_message", "msg_text": text, "request_id": 9}))
        .await;
    let v = t.ar.recv_where("action", "create_message").await;
    assert_eq!(v["response_status"], 201, "{v}");
    v["data"]["id"].as_i64().unwrap()
}

/// method-args's push of someone else's message `id`, checked; the frame.
async fn ma_hears(t: &mut Trio, id: i64, text: &str, author: i64) -> Value {
    let v = t.ma.recv_where("type", "new_message").await;
    assert_eq!(v["data"]["message"]["id"], id, "{v}");
    assert_eq!(v["data"]["message"]["text"], text, "{v}");
    assert_eq!(v["data"]["message"]["user"]["pk"], author, "{v}");
    v
}

/// type-content's next frame: the push of message `id`, checked; the frame.
async fn tc_hears(t: &mut Trio, id: i64, text: &str, author: i64) -> Value {
    let v = next(&mut t.tc).await;
    assert_eq!(v["type"], "new_message", "{v}");
    assert_eq!(v["content"]["message_id"], id, "{v}");
    assert_eq!(v["content"]["text"], text, "{v}");
    assert_eq!(v["content"]["author_id"], author, "{v}");
    v
}

/// action-request's push of someone else's message `id`, checked; the frame.
async fn ar_hears(t: &mut Trio, id: i64, text: &str, author: i64) -> Value {
    let v = t.ar.recv_where("action", "create_message").await;
    assert_eq!(v["data"]["id"], id, "{v}");
    assert_eq!(v["data"]["text"], text, "{v}");
    assert_eq!(v["data"]["user"]["id"], author, "{v}");
    v
}

/// Send an action-request request and check that its reply succeeds (200).
async fn ar_ok(t: &mut Trio, request: Value) {
    t.ar.send_json(&request).await;
    let action = request["action"].as_str().expect("an action");
    let v = t.ar.recv_where("action", action).await;
    assert_eq!(v["response_status"], 200, "{v}");
}

/// method-args's next `messages_updated`, whose first update is for message `id`:
/// that update's fields.
async fn ma_updated(t: &mut Trio, id: i64) -> Value {
    let v = t.ma.recv_where("type", "messages_updated").await;
    assert_eq!(v["data"]["updates"][0]["id"], id, "{v}");
    v["data"]["updates"][0]["fields"].clone()
}

async fn messages_cross_every_pair(gw: TestGateway) {
    let mut t = trio(&gw).await;

    // method-args → type-content, action-request
    let m1 = ma_send(&mut t, "from ma").await;
    let v = tc_hears(&mut t, m1, "from ma", 1).await;
    assert_eq!(v["content"]["chat_type"], "project");
    assert_eq!(v["content"]["chat_id"], PROJECT);
    let v = ar_hears(&mut t, m1, "from ma", 1).await;
    assert_eq!(v["response_status"], 201);
    assert_eq!(v["request_id"], Value::Null);

    // type-content → method-args, action-request
    let m2 = tc_send(&mut t, "from tc").await;
    let v = ma_hears(&mut t, m2, "from tc", 2).await;
    assert_eq!(v["data"]["message"]["chat"], t.room);
    ar_hears(&mut t, m2, "from tc", 2).await;

    // action-request → method-args, type-content
    let m3 = ar_send(&mut t, "from ar").await;
    ma_hears(&mut t, m3, "from ar", 3).await;
    tc_hears(&mut t, m3, "from ar", 3).await;

    // Edit (only action-request can): method-args sees the new text; type-content has
    // no word for edits and stays silent (checked below: its next frame is the read).
    ar_ok(&mut t, json!({"action": "edit_message", "msg_id": m3, "edited_msg_text": "edited", "request_id": 10})).await;
    assert_eq!(ma_updated(&mut t, m3).await["text"], "edited");

    // Read marks. type-content reads up to m3: method-args learns its m1 is read.
    t.tc.send_json(&json!({"type": "message_read", "content": {"chat_type": "project", "chat_id": PROJECT, "message_id": m3}}))
        .await;
    let v = next(&mut t.tc).await;
    assert_eq!(
        v["type"], "message_read",
        "type-content stays silent about edits: {v}"
    );
    assert_eq!(v["content"]["user_id"], 2);
    let v = t.ma.recv_where("type", "messages_updated").await;
    let updates = v["data"]["updates"].as_array().unwrap();
    assert!(
        updates
            .iter()
            .any(|u| u["id"] == m1 && u["fields"]["is_read"] == true),
        "{v}"
    );
    // method-args reads the whole chat: type-content sees a read mark by user 1.
    let room = t.room;
    t.ma.send_json(&json!({"method": "read_messages", "args": {"chat": room}}))
        .await;
    assert_eq!(
        t.ma.recv_where("type", "messages_read").await["data"]["chat"],
        room
    );
    let v = next(&mut t.tc).await;
    assert_eq!(v["type"], "message_read");
    assert_eq!(v["content"]["user_id"], 1);
    assert_eq!(v["content"]["message_id"], m3);

    // Deletes. type-content deletes its m2: method-args and action-request see it.
    t.tc.send_json(&json!({"type": "delete_message", "content": {"chat_type": "project", "chat_id": PROJECT, "message_id": m2}}))
        .await;
    let v = next(&mut t.tc).await;
    assert_eq!(v["type"], "delete_message");
    assert_eq!(ma_updated(&mut t, m2).await["is_deleted"], true);
    let v = t.ar.recv_where("action", "delete_messages").await;
    assert_eq!(v["data"]["messages_ids"], json!([m2]));
    assert_eq!(v["request_id"], Value::Null);
    // action-request deletes its m3: method-args and type-content see it.
    ar_ok(
        &mut t,
        json!({"action": "delete_messages", "msg_id_list": [m3], "request_id": 11}),
    )
    .await;
    assert_eq!(ma_updated(&mut t, m3).await["is_deleted"], true);
    let v = next(&mut t.tc).await;
    assert_eq!(v["type"], "delete_message");
    assert_eq!(v["content"]["message_id"], m3);

    // Typing from type-content: the other two have no word for it and stay silent.
    t.tc.send_json(
        &json!({"type": "user_typing", "content": {"chat_type": "project", "chat_id": PROJECT}}),
    )
    .await;
    t.ma.assert_silent(300).await;
    t.ar.assert_silent(100).await;

    // History agrees: m1 live, m2 and m3 tombstones, m3 edited before its deletion.
    let r = gw
        .http(
            "GET",
            &format!("/api/rooms/{}/messages", t.room),
            Some(&gw.token(1, "ma")),
            None,
        )
        .await;
    let msgs = r.json()["messages"].as_array().unwrap().clone();
    let by_id = |id: i64| msgs.iter().find(|m| m["id"] == id).unwrap().clone();
    assert_eq!(by_id(m1)["deleted"], false);
    assert_eq!(by_id(m2)["deleted"], true);
    assert_eq!(by_id(m3)["deleted"], true);
}
dual_backend_test!(messages_cross_every_pair);

/// A user who closes and immediately reopens a connection is online in the end, as
/// their contacts see it, however the close and the reopen interleave.
async fn presence_ends_true_after_quick_reconnects(gw: TestGateway) {
    let mut t = trio(&gw).await;
    for _ in 0..15 {
        let old = std::mem::replace(&mut t.ma, WsClient::connect(&gw.ws_url("/ws/chat/")).await);
        t.ma.send_json(&json!({"method": "auth", "access_token": gw.token(1, "ma")}))
            .await;
        old.close().await;
        assert_eq!(t.ma.recv_json().await["type"], "authenticated");
    }
    // Settle, then the last word type-content heard about user 1 must be "online".
    let mut last = None;
    while let Some(text) =
        t.tc.try_recv_text(std::time::Duration::from_millis(500))
            .await
    {
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["content"]["user_id"] == 1 {
            if let Some(kind @ ("set_online" | "set_offline")) = v["type"].as_str() {
                last = Some(kind.to_string());
            }
        }
    }
    assert!(gw.service().is_online(chat_core::UserId(1)));
    assert_ne!(
        last.as_deref(),
        Some("set_offline"),
        "contacts were left with a stale offline"
    );
}
dual_backend_test!(presence_ends_true_after_quick_reconnects);
