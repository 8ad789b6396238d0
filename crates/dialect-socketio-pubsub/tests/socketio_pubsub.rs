//! socketio-pubsub driven by the real `socket.io-client` (Node) the original front-end
//! used — path `/ws`, namespace `/chat`, `auth: {token}`, default transports — against
//! a real gateway on SQLite and on PostgreSQL. Each test follows a section of
//! `protocol-specs/socketio-pubsub/README.md`. Without Node the tests say SKIPPED
//! loudly (and fail under `CI=true`).

use chat_core::{RoomKind, UserId};
use chat_testkit::{dual_backend_test, http_request, TestGateway, WsClient};
use serde_json::{json, Value};
use socketio_common::node::{assert_wire_error, client_options, NodeSio};

fn opts(token: Option<&str>, transports: Option<&[&str]>) -> Value {
    client_options("/ws", token, transports)
}

/// `send-message` of `text` to `user`; the ack.
async fn send(n: &mut NodeSio, id: &str, user: &str, text: &str) -> Value {
    n.call(id, "send-message", json!({"message": text, "user": user}))
        .await
}

/// The driver with ann on socket `a` and bob on socket `b` (default transports), and
/// ann's token; `None` without Node (announced).
async fn ann_and_bob(gw: &TestGateway) -> Option<(NodeSio, String)> {
    let mut n = NodeSio::start().await?;
    let ann = gw.user_token(1, "ann").await;
    let bob = gw.user_token(2, "bob").await;
    let url = gw.http_url("/chat");
    n.connect_ok("a", &url, opts(Some(&ann), None)).await;
    n.connect_ok("b", &url, opts(Some(&bob), None)).await;
    Some((n, ann))
}

async fn stored_messages(gw: &TestGateway, a: i64, b: i64) -> usize {
    let svc = gw.service();
    let Some(kind) = RoomKind::direct(UserId(a), UserId(b)) else {
        return 0;
    };
    let Some(room) = svc.store().room_by_kind(&kind).await.unwrap() else {
        return 0;
    };
    svc.store().history(room.id, None, 500).await.unwrap().len()
}

// ------------------------------------------------------------------------- tests

/// Every publish event with its ack, and the pushes they cause.
async fn publish_events_and_pushes(gw: TestGateway) {
    let Some(mut n) = NodeSio::start().await else {
        return;
    };
    let ann = gw.user_token(1, "ann").await;
    let bob = gw.user_token(2, "bob").await;
    gw.user_token(3, "carol").await;
    let url = gw.http_url("/chat");
    n.connect("a", &url, opts(Some(&ann), None)).await;
    assert_eq!(
        n.expect("a", |m| m["type"] == "open").await["transport"],
        "polling"
    );
    n.expect("a", |m| m["type"] == "connect").await;
    assert_eq!(
        n.expect("a", |m| m["type"] == "upgrade").await["transport"],
        "websocket"
    );
    n.connect_ok("b", &url, opts(Some(&bob), None)).await;

    let users = n.call("a", "fetch-users", json!({})).await;
    assert_eq!(
        users,
        json!({"users": [
            {"username": "ann", "isOnline": true},
            {"username": "bob", "isOnline": true},
            {"username": "carol", "isOnline": false}
        ]}),
        "every user, the caller included, as the old server listed them"
    );
    // No payload at all is fine for fetch-users.
    let again = n.call_args("a", "fetch-users", json!([])).await;
    assert_eq!(again[0], users);

    let sent = send(&mut n, "a", "bob", "hi bob").await;
    let chat = &sent["chat"];
    assert_eq!(chat["sender"], "ann");
    assert_eq!(chat["recipient"], "bob");
    assert_eq!(chat["message"], "hi bob");
    assert_eq!(chat["has_read"], false);
    assert_eq!(chat["media"], json!([]));
    let id = chat["id"].as_i64().expect("a numeric chat id");
    assert_eq!(
        n.event("b", "chat").await,
        sent,
        "the recipient is pushed the same chat"
    );
    assert_eq!(
        n.event("b", "unread-chats-count").await,
        json!({"unreadChatsCount": 1, "user": "ann"})
    );
    n.assert_no_event("a", "chat", 300).await;

    assert_eq!(
        n.call("b", "fetch-unread-chats-count", json!({"user": "ann"}))
            .await,
        json!({"unreadChatsCount": 1})
    );
    assert_eq!(
        n.call("b", "fetch-unread-chats-count", json!({})).await,
        json!({"unreadChatsCount": 1})
    );
    let conv = n
        .call("b", "fetch-conversation-with-user", json!({"user": "ann"}))
        .await;
    assert_eq!(conv["chats"].as_array().unwrap().len(), 1);
    assert_eq!(conv["chats"][0]["id"], id);
    let alias = n
        .call("b", "fetch-chats-with-user", json!({"user": "ann"}))
        .await;
    assert_eq!(alias, conv, "the old name works too");
    assert_eq!(
        n.call(
            "b",
            "fetch-conversation-with-user",
            json!({"user": "carol"})
        )
        .await,
        json!({"chats": []})
    );
    assert_eq!(stored_messages(&gw, 2, 3).await, 0);
    assert!(
        gw.service()
            .store()
            .room_by_kind(&RoomKind::direct(UserId(2), UserId(3)).unwrap())
            .await
            .unwrap()
            .is_none(),
        "looking at a conversation does not create it"
    );

    assert_eq!(
        n.call("b", "read-chat", json!({"id": id.to_string()}))
            .await,
        json!({})
    );
    assert_eq!(
        n.event("a", "read-chat").await,
        json!({"id": id, "user": "bob"})
    );
    assert_eq!(
        n.event("b", "unread-chats-count").await,
        json!({"unreadChatsCount": 0, "user": "ann"})
    );
    let conv = n
        .call("a", "fetch-conversation-with-user", json!({"user": "bob"}))
        .await;
    assert_eq!(conv["chats"][0]["has_read"], true);

    // Presence: ann and bob share a conversation now.
    n.close("b").await;
    assert_eq!(n.event("a", "user-offline").await, json!({"user": "bob"}));
    n.connect_ok("b2", &url, opts(Some(&bob), None)).await;
    assert_eq!(n.event("a", "user-online").await, json!({"user": "bob"}));
    n.exit().await;
}
dual_backend_test!(publish_events_and_pushes);

/// The `unread-chats-count` pushed after each message is a running count (the
/// connection adds the messages it is brought): it must stay equal to the database's
/// count through earlier backlogs, reads and deletions.
async fn unread_count_stays_exact(gw: TestGateway) {
    let Some(mut n) = NodeSio::start().await else {
        return;
    };
    let ann = gw.user_token(1, "ann").await;
    let bob = gw.user_token(2, "bob").await;
    let url = gw.http_url("/chat");
    n.connect_ok("a", &url, opts(Some(&ann), None)).await;
    // A backlog from before bob connects.
    send(&mut n, "a", "bob", "one").await;
    send(&mut n, "a", "bob", "two").await;
    n.connect_ok("b", &url, opts(Some(&bob), None)).await;
    let mut ids = Vec::new();
    for (text, expected) in [("three", 3), ("four", 4), ("five", 5)] {
        let sent = send(&mut n, "a", "bob", text).await;
        ids.push(sent["chat"]["id"].as_i64().expect("an id"));
        assert_eq!(
            n.event("b", "unread-chats-count").await,
            json!({"unreadChatsCount": expected, "user": "ann"}),
            "after `{text}`"
        );
    }
    // bob reads up to "four": one left.
    n.call("b", "read-chat", json!({"id": ids[1].to_string()}))
        .await;
    assert_eq!(
        n.event("b", "unread-chats-count").await,
        json!({"unreadChatsCount": 1, "user": "ann"})
    );
    // ann deletes the unread "five" (through the service: the dialect has no delete).
    let svc = gw.service();
    let ann_user = svc.user(UserId(1)).await.unwrap().expect("ann");
    let ann_p = chat_core::Principal {
        user: ann_user,
        is_admin: false,
        moderator: false,
        expires_at: None,
    };
    svc.delete_messages(&ann_p, &[chat_core::MessageId(ids[2])], None, None)
        .await
        .expect("ann deletes her message");
    send(&mut n, "a", "bob", "six").await;
    assert_eq!(
        n.event("b", "unread-chats-count").await,
        json!({"unreadChatsCount": 1, "user": "ann"}),
        "the deleted message is no longer counted"
    );
    assert_eq!(
        n.call("b", "fetch-unread-chats-count", json!({"user": "ann"}))
            .await,
        json!({"unreadChatsCount": 1}),
        "the database agrees"
    );
    n.exit().await;
}
dual_backend_test!(unread_count_stays_exact);

/// WebSocket only.
async fn websocket_only(gw: TestGateway) {
    let Some(mut n) = NodeSio::start().await else {
        return;
    };
    let ann = gw.user_token(1, "ann").await;
    let t = n
        .connect_ok(
            "a",
            &gw.http_url("/chat"),
            opts(Some(&ann), Some(&["websocket"])),
        )
        .await;
    assert_eq!(t, "websocket");
    assert_eq!(
        n.call("a", "fetch-users", json!({})).await,
        json!({"users": [{"username": "ann", "isOnline": true}]})
    );
    n.exit().await;
}
dual_backend_test!(websocket_only);

/// A missing, expired or forged token: `auth-failed`, then a server disconnect.
async fn auth_failed_then_disconnect(gw: TestGateway) {
    let Some(mut n) = NodeSio::start().await else {
        return;
    };
    let url = gw.http_url("/chat");
    for (id, token, why) in [
        ("none", None, "no token"),
        ("expired", Some(gw.expired_token(1)), "expired"),
        ("forged", Some(gw.forged_token(1)), "invalid"),
    ] {
        n.connect(id, &url, opts(token.as_deref(), None)).await;
        let failed = n.event(id, "auth-failed").await;
        assert!(
            failed["message"].as_str().unwrap().contains(why),
            "{id}: {failed}"
        );
        let d = n.expect(id, |m| m["type"] == "disconnect").await;
        assert_eq!(
            d["reason"], "io server disconnect",
            "{id}: the client does not retry"
        );
    }
    n.exit().await;
}
dual_backend_test!(auth_failed_then_disconnect);

/// wait-for-user / stop-waiting-for-user: user-join and user-leave.
async fn waiting_for_a_user(gw: TestGateway) {
    let Some((mut n, _)) = ann_and_bob(&gw).await else {
        return;
    };
    assert_eq!(
        n.call("a", "wait-for-user", json!({"user": "bob"})).await,
        json!({})
    );
    assert_eq!(n.event("b", "user-join").await, json!({"user": "ann"}));
    // Bob opens the conversation too: he learns at once that ann is there.
    n.call("b", "wait-for-user", json!({"user": "ann"})).await;
    assert_eq!(n.event("b", "user-join").await, json!({"user": "ann"}));
    assert_eq!(n.event("a", "user-join").await, json!({"user": "bob"}));
    n.emit("a", "stop-waiting-for-user", json!([{"user": "bob"}]))
        .await;
    assert_eq!(n.event("b", "user-leave").await, json!({"user": "ann"}));
    n.close("b").await;
    assert_eq!(
        n.event("a", "user-leave").await,
        json!({"user": "bob"}),
        "a closing socket stops waiting"
    );
    let v = n
        .call("a", "wait-for-user", json!({"user": "nobody"}))
        .await;
    assert_wire_error(&v, "not_found", "wait-for-user");
    n.exit().await;
}
dual_backend_test!(waiting_for_a_user);

/// `media`: this gateway's upload URLs become attachments; others are refused.
async fn media_urls(gw: TestGateway) {
    let Some((mut n, ann)) = ann_and_bob(&gw).await else {
        return;
    };
    let up = http_request(
        "POST",
        &gw.http_url("/api/files?name=photo.png"),
        &[
            ("authorization".into(), format!("Bearer {ann}")),
            ("content-type".into(), "image/png".into()),
        ],
        b"not really a png".to_vec(),
    )
    .await;
    assert_eq!(up.status, 201, "{:?}", up.body);
    let file = up.json()["url"].as_str().unwrap().to_string();

    let foreign = n.call("a", "send-message", json!({"message": "x", "user": "bob", "media": ["https://cdn.example.com/files/1/a.png"]})).await;
    assert_wire_error(&foreign, "invalid", "send-message");
    assert!(foreign["message"]
        .as_str()
        .unwrap()
        .contains("POST /api/files"));
    assert_eq!(stored_messages(&gw, 1, 2).await, 0);
    // The URL's token is the file's capability: without it, or with another, the
    // upload is not this server's file.
    let (head, tail) = file.rsplit_once('/').unwrap();
    let (prefix, token) = head.rsplit_once('/').unwrap();
    let wrong = if token.starts_with('0') { "1" } else { "0" };
    for bad in [
        format!("{prefix}/{tail}"),
        format!("{prefix}/{wrong}{}/{tail}", &token[1..]),
    ] {
        let refused = n
            .call(
                "a",
                "send-message",
                json!({"message": "x", "user": "bob", "media": [bad]}),
            )
            .await;
        assert_wire_error(&refused, "invalid", "send-message");
    }
    assert_eq!(stored_messages(&gw, 1, 2).await, 0);

    let sent = n
        .call(
            "a",
            "send-message",
            json!({"message": "", "user": "bob", "media": [file]}),
        )
        .await;
    assert_eq!(sent["chat"]["media"], json!([file]));
    assert_eq!(n.event("b", "chat").await["chat"]["media"], json!([file]));
    let got = http_request("GET", &file, &[], Vec::new()).await;
    assert_eq!(&got.body[..], b"not really a png");
    let twice = n
        .call(
            "a",
            "send-message",
            json!({"message": "again", "user": "bob", "media": [file]}),
        )
        .await;
    assert_wire_error(&twice, "invalid", "send-message");
    assert_eq!(stored_messages(&gw, 1, 2).await, 1);
    n.exit().await;
}
dual_backend_test!(media_urls);

/// Bad input: a clear error in the ack (or an `error` event), nothing stored.
async fn bad_input_changes_nothing(gw: TestGateway) {
    let Some(mut n) = NodeSio::start().await else {
        return;
    };
    let ann = gw.user_token(1, "ann").await;
    let bob = gw.user_token(2, "bob").await;
    let eve = gw.user_token(3, "eve").await;
    let url = gw.http_url("/chat");
    n.connect_ok("a", &url, opts(Some(&ann), None)).await;
    n.connect_ok("e", &url, opts(Some(&eve), None)).await;
    let _ = bob;
    let sent = send(&mut n, "a", "bob", "secret").await;
    let id = sent["chat"]["id"].clone();

    let cases: Vec<(&str, Value, &str)> = vec![
        ("send-message", json!("hi"), "invalid"),
        ("send-message", json!({"message": "hi"}), "invalid"),
        (
            "send-message",
            json!({"message": 5, "user": "bob"}),
            "invalid",
        ),
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
        (
            "send-message",
            json!({"message": "  ", "user": "bob"}),
            "invalid",
        ),
        (
            "send-message",
            json!({"message": "hi", "user": "bob", "media": "x"}),
            "invalid",
        ),
        (
            "send-message",
            json!({"message": "x".repeat(20_000), "user": "bob"}),
            "too_large",
        ),
        ("read-chat", json!({"id": "abc"}), "invalid"),
        ("read-chat", json!({"id": 987654}), "not_found"),
        ("fetch-conversation-with-user", json!({}), "invalid"),
        (
            "fetch-unread-chats-count",
            json!({"user": ["bob"]}),
            "invalid",
        ),
        ("delete-everything", json!({}), "unknown_event"),
    ];
    for (event, payload, code) in &cases {
        let v = n.call("a", event, payload.clone()).await;
        assert_wire_error(&v, code, event);
    }
    // Eve may not touch ann and bob's conversation.
    let v = n.call("e", "read-chat", json!({"id": id})).await;
    assert_wire_error(&v, "not_found", "read-chat");
    // Without an ack, the error is an `error` event.
    n.emit("a", "send-message", json!([{"user": 42}])).await;
    assert_wire_error(&n.event("a", "error").await, "invalid", "send-message");
    // A malformed packet drops that connection only; the client comes back.
    n.raw("e", "2/chat,[\"read-chat\",").await;
    n.expect("e", |m| m["type"] == "disconnect").await;
    n.expect("e", |m| m["type"] == "connect").await;
    assert_eq!(
        n.call("a", "fetch-unread-chats-count", json!({"user": "bob"}))
            .await,
        json!({"unreadChatsCount": 0})
    );
    assert_eq!(
        stored_messages(&gw, 1, 2).await,
        1,
        "only the one good message"
    );
    assert_eq!(stored_messages(&gw, 1, 3).await, 0);
    n.exit().await;
}
dual_backend_test!(bad_input_changes_nothing);

/// A socketio-pubsub user and a method-args user in one direct room, both ways.
async fn with_method_args(gw: TestGateway) {
    let Some(mut n) = NodeSio::start().await else {
        return;
    };
    let ann = gw.user_token(1, "ann").await;
    let bob = gw.user_token(2, "bob").await;
    n.connect_ok("a", &gw.http_url("/chat"), opts(Some(&ann), None))
        .await;
    let mut ma = WsClient::connect(&gw.ws_url("/ws/chat/")).await;
    ma.send_json(&json!({"method": "auth", "access_token": bob}))
        .await;
    ma.recv_where("type", "authenticated").await;

    let sent = send(&mut n, "a", "bob", "hello from socket.io").await;
    let got = ma.recv_where("type", "new_message").await;
    let m = &got["data"]["message"];
    assert_eq!(m["text"], "hello from socket.io");
    assert_eq!(m["id"], sent["chat"]["id"]);
    let chat = m["chat"].clone();

    ma.send_json(&json!({"method": "send_message", "args": {"chat": chat, "text": "hello from method-args"}})).await;
    ma.recv_where("type", "message_created").await;
    let pushed = n.event("a", "chat").await;
    assert_eq!(pushed["chat"]["message"], "hello from method-args");
    assert_eq!(pushed["chat"]["sender"], "bob");
    assert_eq!(pushed["chat"]["recipient"], "ann");
    assert_eq!(
        n.event("a", "unread-chats-count").await,
        json!({"unreadChatsCount": 1, "user": "bob"})
    );

    // Reads cross too: method-args reads the chat, ann is told.
    ma.send_json(&json!({"method": "read_messages", "args": {"chat": chat}}))
        .await;
    assert_eq!(n.event("a", "read-chat").await["user"], "bob");
    n.exit().await;
}
dual_backend_test!(with_method_args);

/// The server restarts; socket.io-client reconnects and carries on.
async fn reconnects_after_restart(mut gw: TestGateway) {
    let Some(mut n) = NodeSio::start().await else {
        return;
    };
    let ann = gw.user_token(1, "ann").await;
    gw.user_token(2, "bob").await;
    n.connect_ok("a", &gw.http_url("/chat"), opts(Some(&ann), None))
        .await;
    // Restart once the upgrade to WebSocket is done: in this in-process restart a
    // probe connection caught mid-upgrade outlives the old server (a real process
    // exit closes it) and the client would only notice at the heartbeat timeout.
    n.expect("a", |m| m["type"] == "upgrade").await;
    gw.restart().await;
    n.expect_reconnect("a").await;
    let sent = send(&mut n, "a", "bob", "after restart").await;
    assert_eq!(sent["chat"]["message"], "after restart");
    n.exit().await;
}
dual_backend_test!(reconnects_after_restart);
