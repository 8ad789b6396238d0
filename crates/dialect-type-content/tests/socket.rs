//! The type-content dialect on real sockets: a gateway on 127.0.0.1:0 with a throw-away
//! database (SQLite and PostgreSQL), real WebSocket clients, real tokens.

use chat_core::{
    ChatService, MessageId, Principal, RoomId, RoomKind, RoomRef, SendMessage, Upload, UserId,
};
use chat_testkit::steps::sqlite_with;
use chat_testkit::{dual_backend_test, TestGateway, WsClient};
use serde_json::{json, Value};
use std::sync::Arc;

const PATH: &str = "/ws/chats/";

/// Connect as user `id` with `Authorization: Bearer`, and wait until the connection
/// is signed in (the session opens in the server's connection task, after the upgrade
/// response), so that presence and pushes are deterministic in tests.
async fn join(gw: &TestGateway, id: i64) -> WsClient {
    let token = gw.token(id, &format!("user{id}"));
    let before = gw.service().hub().connections_of(UserId(id));
    let c = WsClient::connect_with_headers(
        &gw.ws_url(PATH),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap_or_else(|status| panic!("user {id} refused with HTTP {status}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while gw.service().hub().connections_of(UserId(id)) <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "user {id} was never signed in"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    c
}

fn new_message(chat_type: &str, chat_id: Value, text: &str, reply_to: Value) -> Value {
    json!({"type": "new_message", "content": {
        "chat_type": chat_type, "chat_id": chat_id, "message": text, "reply_to": reply_to}})
}

fn typing(chat_type: &str, chat_id: Value) -> Value {
    json!({"type": "user_typing", "content": {"chat_type": chat_type, "chat_id": chat_id}})
}

fn read(chat_type: &str, chat_id: Value, message_id: Value) -> Value {
    json!({"type": "message_read", "content": {"chat_type": chat_type, "chat_id": chat_id, "message_id": message_id}})
}

fn delete(chat_type: &str, chat_id: Value, message_id: Value) -> Value {
    json!({"type": "delete_message", "content": {"chat_type": chat_type, "chat_id": chat_id, "message_id": message_id}})
}

fn is_presence(v: &Value) -> bool {
    matches!(
        v["type"].as_str(),
        Some("set_online" | "set_offline" | "user_online" | "user_offline")
    )
}

/// The next frame that is not presence. A user's `set_online` is computed from the
/// chats they share when their connection opens, so a chat created at that very moment
/// can make it reach a contact a little late; only the presence test looks at those.
async fn recv(c: &mut WsClient) -> Value {
    c.recv_until(|v| !is_presence(v)).await
}

/// Assert that nothing but presence arrives within `ms` milliseconds.
async fn quiet(c: &mut WsClient, ms: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.try_recv_text(left).await {
            None => return,
            Some(t) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                assert!(is_presence(&v), "expected silence, got {t}");
            }
        }
    }
}

/// Send a frame and return the error it is answered with.
async fn error(c: &mut WsClient, frame: &Value) -> String {
    c.send_json(frame).await;
    let v = recv(c).await;
    let obj = v.as_object().unwrap_or_else(|| panic!("{frame} → {v}"));
    assert_eq!(obj.len(), 1, "an error frame has only `error`: {v}");
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{frame}: expected an error, got {v}"))
        .to_string()
}

/// Send raw text and return the error it is answered with.
async fn error_text(c: &mut WsClient, text: &str) -> String {
    c.send_text(text).await;
    let v = recv(c).await;
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{text}: expected an error, got {v}"))
        .to_string()
}

/// Users 1 and 2 connected; user 1 says `text` in their direct chat. Both
/// connections and the message id, once both have had the push.
async fn first_words(gw: &TestGateway, text: &str) -> (WsClient, WsClient, i64) {
    let mut a = join(gw, 1).await;
    let mut b = join(gw, 2).await;
    a.send_json(&new_message("direct", json!("1_2"), text, Value::Null))
        .await;
    let id = recv(&mut a).await["content"]["message_id"]
        .as_i64()
        .expect("a message id");
    recv(&mut b).await;
    (a, b, id)
}

async fn principal(gw: &TestGateway, id: i64) -> Principal {
    gw.service()
        .authenticate(&gw.token(id, &format!("user{id}")))
        .await
        .expect("valid token")
}

/// Number of messages (tombstones included) stored in a room.
async fn stored(svc: &Arc<ChatService>, room: RoomId) -> usize {
    svc.store()
        .history(room, None, 1000)
        .await
        .expect("history")
        .len()
}

async fn direct_room(svc: &Arc<ChatService>, a: i64, b: i64) -> Option<RoomId> {
    let kind = RoomKind::direct(UserId(a), UserId(b)).expect("two users");
    svc.store()
        .room_by_kind(&kind)
        .await
        .expect("lookup")
        .map(|r| r.id)
}

// ---------------------------------------------------------------- handshake

async fn every_token_carrier_signs_in(gw: TestGateway) {
    gw.create_user(9, "peer").await;
    let url = gw.ws_url(PATH);
    let t = |id: i64| gw.token(id, &format!("user{id}"));
    // (user, URL, headers)
    type Carrier<'a> = (i64, String, Vec<(&'a str, String)>);
    let carriers: Vec<Carrier> = vec![
        (
            1,
            url.clone(),
            vec![("authorization", format!("Bearer {}", t(1)))],
        ),
        (2, url.clone(), vec![("authorization", t(2))]),
        (3, format!("{url}?token={}", t(3)), vec![]),
        (
            4,
            url.clone(),
            vec![("sec-websocket-protocol", format!("Bearer, {}", t(4)))],
        ),
        (
            5,
            url.clone(),
            vec![("authorization", format!("JWT {}", t(5)))],
        ),
        (6, format!("{url}?access_token={}", t(6)), vec![]),
        // Without the trailing slash.
        (
            7,
            format!("{}?token={}", url.trim_end_matches('/'), t(7)),
            vec![],
        ),
    ];
    for (id, url, headers) in carriers {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut c = WsClient::connect_with_headers(&url, &headers)
            .await
            .unwrap_or_else(|s| panic!("user {id} refused with HTTP {s}"));
        if id == 4 {
            assert_eq!(c.subprotocol.as_deref(), Some("Bearer"));
        } else {
            assert_eq!(c.subprotocol, None);
        }
        // Signed in as the token's user: the message is authored by `id`.
        c.send_json(&new_message(
            "direct",
            json!(format!("{id}_9")),
            "hi",
            Value::Null,
        ))
        .await;
        let got = recv(&mut c).await;
        assert_eq!(got["type"], "new_message", "{got}");
        assert_eq!(got["content"]["author_id"], id);
        c.close().await;
    }
}
dual_backend_test!(every_token_carrier_signs_in);

async fn a_handshake_without_a_valid_token_is_refused_with_403(gw: TestGateway) {
    let url = gw.ws_url(PATH);
    assert_eq!(
        WsClient::connect_with_headers(&url, &[]).await.err(),
        Some(403)
    );
    for token in [
        "garbage".to_string(),
        gw.expired_token(1),
        gw.forged_token(1),
        gw.alg_none_token(1),
    ] {
        // The same refused token on each carrier: header, query string, subprotocol.
        let bearer = format!("Bearer {token}");
        let proto = format!("Bearer, {token}");
        let query = format!("{url}?token={token}");
        let carriers = [
            (&url, vec![("authorization", bearer.as_str())]),
            (&query, vec![]),
            (&url, vec![("sec-websocket-protocol", proto.as_str())]),
        ];
        for (target, headers) in carriers {
            assert_eq!(
                WsClient::connect_with_headers(target, &headers).await.err(),
                Some(403),
                "{token} {headers:?}"
            );
        }
    }
}
dual_backend_test!(a_handshake_without_a_valid_token_is_refused_with_403);

// ---------------------------------------------------------------- messages

async fn new_message_in_a_direct_chat(gw: TestGateway) {
    let mut a = join(&gw, 1).await;
    let mut b = join(&gw, 2).await;
    a.send_json(&new_message(
        "direct",
        json!("1_2"),
        "hello world",
        Value::Null,
    ))
    .await;
    let mine = recv(&mut a).await;
    let theirs = recv(&mut b).await;
    assert_eq!(
        mine, theirs,
        "one frame for the whole chat, sender included"
    );
    assert_eq!(mine["type"], "new_message");
    let c = &mine["content"];
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "author_id",
            "chat_id",
            "chat_type",
            "created_at",
            "files",
            "message_id",
            "reply_to",
            "text"
        ]
    );
    let fixed = json!({"chat_id": "1_2", "chat_type": "direct", "author_id": 1,
        "text": "hello world", "reply_to": null, "files": []});
    for (k, want) in fixed.as_object().into_iter().flatten() {
        assert_eq!(&c[k], want, "{k}");
    }
    let created: chrono::DateTime<chrono::Utc> = c["created_at"].as_str().unwrap().parse().unwrap();
    assert!((chrono::Utc::now() - created).num_seconds().abs() < 60);
    let first = c["message_id"].as_i64().unwrap();

    // Committed before it was pushed.
    let room = direct_room(&gw.service(), 1, 2)
        .await
        .expect("created on first use");
    assert_eq!(stored(&gw.service(), room).await, 1);

    // A reply, the other way, with the reply id as a numeric string.
    b.send_json(&new_message(
        "direct",
        json!("1_2"),
        "hi back",
        json!(first.to_string()),
    ))
    .await;
    let got = recv(&mut a).await;
    assert_eq!(recv(&mut b).await, got);
    assert_eq!(got["content"]["reply_to"], first);
    assert_eq!(got["content"]["author_id"], 2);
    assert!(got["content"]["message_id"].as_i64().unwrap() > first);
    quiet(&mut a, 200).await;
    quiet(&mut b, 0).await;
}
dual_backend_test!(new_message_in_a_direct_chat);

async fn new_message_in_a_project_chat(gw: TestGateway) {
    for (id, name) in [(1, "ann"), (2, "bob"), (3, "eve")] {
        gw.create_user(id, name).await;
    }
    gw.create_room(RoomKind::Project { project_id: 77 }, &[1, 2], false)
        .await;
    let mut a = join(&gw, 1).await;
    let mut b = join(&gw, 2).await;
    let mut e = join(&gw, 3).await;
    a.send_json(&new_message("project", json!(77), "p1", Value::Null))
        .await;
    a.send_json(&new_message("project", json!("77"), "p2", Value::Null))
        .await;
    for text in ["p1", "p2"] {
        let got = recv(&mut b).await;
        assert_eq!(recv(&mut a).await, got);
        assert_eq!(got["content"]["chat_type"], "project");
        assert_eq!(got["content"]["chat_id"], 77);
        assert_eq!(got["content"]["text"], text);
    }
    // Not a member, or no such project: refused, and the members hear nothing.
    let refusals = [
        (
            &mut e,
            77,
            "intruder",
            "new_message: chat not found, or you are not a member of it",
        ),
        (
            &mut a,
            78,
            "nowhere",
            "new_message: project chat not found: no chat exists for this project id",
        ),
    ];
    for (c, project, text, want) in refusals {
        let frame = new_message("project", json!(project), text, Value::Null);
        assert_eq!(error(c, &frame).await, want);
    }
    quiet(&mut a, 200).await;
    quiet(&mut b, 0).await;
}
dual_backend_test!(new_message_in_a_project_chat);

async fn group_chats_are_named_group_with_the_room_id(gw: TestGateway) {
    for id in 1..=3 {
        gw.create_user(id, &format!("user{id}")).await;
    }
    let g = gw.create_room(RoomKind::Group, &[1, 2, 3], false).await;
    let mut a = join(&gw, 1).await;
    let mut b = join(&gw, 2).await;
    a.send_json(&new_message("group", json!(g.0), "to all", Value::Null))
        .await;
    let got = recv(&mut b).await;
    assert_eq!(got["content"]["chat_type"], "group");
    assert_eq!(got["content"]["chat_id"], g.0);
    assert_eq!(recv(&mut a).await, got);
    b.send_json(&typing("group", json!(g.0))).await;
    let t = recv(&mut a).await;
    assert_eq!(t["type"], "user_typing");
    assert_eq!(t["content"]["chat_id"], g.0);
    // A direct chat's room id is not a group chat.
    let d = gw
        .create_room(
            RoomKind::direct(UserId(1), UserId(3)).unwrap(),
            &[1, 3],
            false,
        )
        .await;
    let m = error(&mut a, &new_message("group", json!(d.0), "x", Value::Null)).await;
    assert!(m.starts_with("new_message: group chat not found"), "{m}");
}
dual_backend_test!(group_chats_are_named_group_with_the_room_id);

// ---------------------------------------------------------------- typing, read, delete

async fn typing_reaches_the_others_and_a_flood_is_refused(gw: TestGateway) {
    let mut a = join(&gw, 1).await;
    let mut b = join(&gw, 2).await;
    a.send_json(&typing("direct", json!("1_2"))).await;
    let got = recv(&mut b).await;
    assert_eq!(got["type"], "user_typing");
    let c = &got["content"];
    assert_eq!(c["chat_type"], "direct");
    assert_eq!(c["chat_id"], "1_2");
    assert_eq!(c["user_id"], 1);
    let end: chrono::DateTime<chrono::Utc> = c["end_time"].as_str().unwrap().parse().unwrap();
    assert!(end > chrono::Utc::now());
    quiet(&mut a, 200).await;
    // A burst: refreshes within a second are not forwarded; past the flood limit,
    // each one is refused.
    for _ in 0..15 {
        a.send_json(&typing("direct", json!("1_2"))).await;
    }
    let err = recv(&mut a).await;
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("user_typing: too many user_typing events")),
        "{err}"
    );
    quiet(&mut b, 300).await;
    // Still usable.
    a.send_json(&new_message(
        "direct",
        json!("1_2"),
        "after typing",
        Value::Null,
    ))
    .await;
    assert_eq!(
        b.recv_where("type", "new_message").await["content"]["text"],
        "after typing"
    );
}
dual_backend_test!(typing_reaches_the_others_and_a_flood_is_refused);

async fn message_read_reaches_the_chat(gw: TestGateway) {
    let (mut a, mut b, id) = first_words(&gw, "m1").await;
    b.send_json(&read("direct", json!("1_2"), json!(id))).await;
    let expect = json!({"type": "message_read", "content": {
        "chat_type": "direct", "chat_id": "1_2", "user_id": 2, "message_id": id}});
    assert_eq!(recv(&mut a).await, expect);
    assert_eq!(recv(&mut b).await, expect);
    // Read again: nothing moves; only the sending connection is answered.
    b.send_json(&read("direct", json!("1_2"), json!(id))).await;
    assert_eq!(recv(&mut b).await, expect);
    quiet(&mut a, 200).await;
    // Refusals.
    let m = error(&mut b, &read("direct", json!("1_2"), json!(id + 1000))).await;
    assert_eq!(m, "message_read: message not found in this chat");
    let mut c = join(&gw, 3).await;
    let m = error(&mut c, &read("direct", json!("1_2"), json!(id))).await;
    assert_eq!(
        m,
        "message_read: not allowed: you are not one of the two users of this direct chat"
    );
    // Reading a chat that was never used does not create it.
    let m = error(&mut c, &read("direct", json!("2_3"), json!(id))).await;
    assert_eq!(
        m,
        "message_read: chat not found, or you are not a member of it"
    );
    assert_eq!(direct_room(&gw.service(), 2, 3).await, None);
    quiet(&mut a, 100).await;
}
dual_backend_test!(message_read_reaches_the_chat);

async fn delete_message_by_its_author_reaches_the_chat(gw: TestGateway) {
    let (mut a, mut b, id) = first_words(&gw, "oops").await;
    let frame = delete("direct", json!("1_2"), json!(id));
    let m = error(&mut b, &frame).await;
    assert_eq!(
        m,
        "delete_message: not allowed: only the author or an admin may delete a message"
    );
    quiet(&mut a, 200).await;
    a.send_json(&frame).await;
    let expect = json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": id}});
    assert_eq!(recv(&mut a).await, expect);
    assert_eq!(recv(&mut b).await, expect);
    let svc = gw.service();
    let msg = svc.store().message(MessageId(id)).await.unwrap().unwrap();
    assert!(msg.is_deleted());
    // Again: nothing changes, only the sender is answered.
    a.send_json(&frame).await;
    assert_eq!(recv(&mut a).await, expect);
    quiet(&mut b, 200).await;
    // A message of another chat, and one that does not exist.
    let m = error(&mut a, &delete("direct", json!("1_2"), json!(id + 1000))).await;
    assert_eq!(m, "delete_message: message not found in this chat");
    let m = error(&mut a, &delete("direct", json!("1_3"), json!(id))).await;
    assert_eq!(
        m,
        "delete_message: chat not found, or you are not a member of it"
    );
    assert_eq!(
        direct_room(&svc, 1, 3).await,
        None,
        "deleting does not create a chat"
    );
}
dual_backend_test!(delete_message_by_its_author_reaches_the_chat);

// ---------------------------------------------------------------- presence

async fn presence_reaches_users_who_share_a_chat(gw: TestGateway) {
    for id in 1..=3 {
        gw.create_user(id, &format!("user{id}")).await;
    }
    gw.create_room(
        RoomKind::direct(UserId(1), UserId(2)).unwrap(),
        &[1, 2],
        false,
    )
    .await;
    let mut b = join(&gw, 2).await;
    let mut stranger = join(&gw, 3).await;
    // Let their own arrivals be announced (to nobody online) before user 1 comes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut a = join(&gw, 1).await;
    assert_eq!(
        b.recv_json().await,
        json!({"type": "set_online", "content": {"user_id": 1}})
    );
    a.send_json(&json!({"type": "set_offline"})).await;
    assert_eq!(
        b.recv_json().await,
        json!({"type": "set_offline", "content": {"user_id": 1}})
    );
    a.send_json(&json!({"type": "set_online", "content": {}}))
        .await;
    assert_eq!(
        b.recv_json().await,
        json!({"type": "set_online", "content": {"user_id": 1}})
    );
    a.assert_silent(200).await;
    a.close().await;
    assert_eq!(
        b.recv_json().await,
        json!({"type": "set_offline", "content": {"user_id": 1}})
    );
    stranger.assert_silent(100).await;
}
dual_backend_test!(presence_reaches_users_who_share_a_chat);

/// The seed's prose calls presence `user_online` / `user_offline`: those names are
/// taken as `set_online` / `set_offline`, and a connection that used them hears
/// presence under them, while one that did not keeps the EventType names.
async fn presence_under_the_prose_names(gw: TestGateway) {
    for id in 1..=3 {
        gw.create_user(id, &format!("user{id}")).await;
    }
    for other in [2, 3] {
        gw.create_room(
            RoomKind::direct(UserId(1), UserId(other)).unwrap(),
            &[1, other],
            false,
        )
        .await;
    }
    let mut prose = join(&gw, 2).await;
    let mut plain = join(&gw, 3).await;
    // The prose client announces itself in its names (it is online already: nothing
    // changes, nobody is told).
    prose.send_json(&json!({"type": "user_online"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut a = join(&gw, 1).await;
    assert_eq!(
        prose.recv_json().await,
        json!({"type": "user_online", "content": {"user_id": 1}})
    );
    assert_eq!(
        plain.recv_json().await,
        json!({"type": "set_online", "content": {"user_id": 1}})
    );
    a.send_json(&json!({"type": "user_offline", "content": {}}))
        .await;
    assert_eq!(
        prose.recv_json().await,
        json!({"type": "user_offline", "content": {"user_id": 1}})
    );
    assert_eq!(
        plain.recv_json().await,
        json!({"type": "set_offline", "content": {"user_id": 1}})
    );
    a.send_json(&json!({"type": "user_online"})).await;
    assert_eq!(
        prose.recv_json().await,
        json!({"type": "user_online", "content": {"user_id": 1}})
    );
    assert_eq!(
        plain.recv_json().await,
        json!({"type": "set_online", "content": {"user_id": 1}})
    );
    a.assert_silent(200).await;
}
dual_backend_test!(presence_under_the_prose_names);

// ---------------------------------------------------------------- bad input

async fn bad_frames_are_answered_with_errors_and_change_nothing(gw: TestGateway) {
    let (mut a, mut b, first) = first_words(&gw, "first").await;
    let mut c = join(&gw, 3).await;
    c.send_json(&new_message(
        "direct",
        json!("1_3"),
        "other chat",
        Value::Null,
    ))
    .await;
    let other = recv(&mut c).await["content"]["message_id"]
        .as_i64()
        .unwrap();
    recv(&mut a).await;

    let texts: &[(&str, &str)] = &[
        ("hello", "the frame is not valid JSON"),
        ("", "the frame is not valid JSON"),
        ("[1, 2]", "the frame must be a JSON object"),
        ("null", "the frame must be a JSON object"),
        ("{}", "the frame has no \"type\""),
        ("{\"type\": 5}", "\"type\" must be a string"),
        (
            "{\"type\": \"send_message\", \"content\": {}}",
            "unknown event type \"send_message\"",
        ),
        (
            "{\"type\": \"new_message\"}",
            "new_message: missing \"content\"",
        ),
        (
            "{\"type\": \"new_message\", \"content\": []}",
            "new_message: \"content\" must be a JSON object",
        ),
    ];
    for (text, want) in texts {
        let m = error_text(&mut a, text).await;
        assert!(m.starts_with(want), "{text}: {m}");
    }
    let frames: Vec<(Value, &str)> = vec![
        (
            json!({"type": "new_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message": "x"}}),
            "new_message: missing field `reply_to`",
        ),
        (
            json!({"type": "new_message", "content": {"chat_type": "direct", "message": "x", "reply_to": null}}),
            "new_message: missing field `chat_id`",
        ),
        (
            json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2"}}),
            "delete_message: missing field `message_id`",
        ),
        (
            new_message("direct", json!("1_2"), "x", json!(true)),
            "new_message: `reply_to`: invalid type: boolean `true`",
        ),
        (
            json!({"type": "new_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message": 7, "reply_to": null}}),
            "new_message: `message`: invalid type: integer `7`",
        ),
        (
            read("direct", json!("1_2"), json!("abc")),
            "message_read: `message_id`: invalid value: string \"abc\"",
        ),
        (
            typing("dm", json!("1_2")),
            "user_typing: `chat_type`: invalid value: string \"dm\"",
        ),
        (
            typing("direct", json!("1-2")),
            "user_typing: `chat_id`: a direct chat id is \"<low>_<high>\"",
        ),
        (
            typing("direct", json!("2_1")),
            "user_typing: `chat_id`: in a direct chat id the smaller user id comes first",
        ),
        (
            typing("direct", json!("1_1")),
            "user_typing: `chat_id`: a direct chat is between two different users",
        ),
        (
            typing("direct", json!(12)),
            "user_typing: `chat_id`: a direct chat id is a string",
        ),
        (
            typing("project", json!("x")),
            "user_typing: `chat_id`: a project chat id is the integer id",
        ),
        (
            new_message("direct", json!("2_3"), "not mine", Value::Null),
            "new_message: not allowed: you are not one of the two users",
        ),
        (
            new_message("direct", json!("1_99"), "nobody", Value::Null),
            "new_message: user not found",
        ),
        (
            new_message("direct", json!("1_2"), "  ", Value::Null),
            "new_message: `message`: ",
        ),
        (
            new_message("direct", json!("1_2"), &"x".repeat(16_385), Value::Null),
            "new_message: `message` is too long (16385 characters, at most 16384 allowed)",
        ),
        (
            new_message("direct", json!("1_2"), "x", json!(other)),
            "new_message: `reply_to`: message",
        ),
        (
            new_message("direct", json!("1_2"), "x", json!(first + 1000)),
            "new_message: `reply_to`: message",
        ),
        (
            new_message("project", json!(5), "x", Value::Null),
            "new_message: project chat not found",
        ),
        (
            delete("direct", json!("1_2"), json!(other)),
            "delete_message: message not found in this chat",
        ),
        (
            read("project", json!(5), json!(first)),
            "message_read: project chat not found",
        ),
    ];
    for (frame, want) in &frames {
        let m = error(&mut a, frame).await;
        assert!(m.starts_with(want), "{frame}: {m}");
    }
    // Binary frames.
    a.send_binary(&[0, 1, 2]).await;
    let m = recv(&mut a).await;
    assert!(
        m["error"]
            .as_str()
            .unwrap()
            .starts_with("binary frames are not supported"),
        "{m}"
    );

    // Nothing was stored or sent to anyone, and the connection still works.
    let svc = gw.service();
    assert_eq!(
        stored(&svc, direct_room(&svc, 1, 2).await.unwrap()).await,
        1
    );
    assert_eq!(direct_room(&svc, 2, 3).await, None);
    assert_eq!(direct_room(&svc, 1, 99).await, None);
    quiet(&mut b, 200).await;
    quiet(&mut c, 0).await;
    a.send_json(&new_message(
        "direct",
        json!("1_2"),
        "still here",
        Value::Null,
    ))
    .await;
    assert_eq!(recv(&mut b).await["content"]["text"], "still here");
    assert_eq!(recv(&mut a).await["content"]["text"], "still here");
}
dual_backend_test!(bad_frames_are_answered_with_errors_and_change_nothing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_is_refused_and_the_connection_stays() {
    let gw = sqlite_with(|c| c.limits.max_frame_bytes = 4096).await;
    let mut a = join(&gw, 1).await;
    let mut b = join(&gw, 2).await;
    let big = new_message("direct", json!("1_2"), &"x".repeat(5000), Value::Null);
    let m = error(&mut a, &big).await;
    assert!(m.starts_with("the frame is too large ("), "{m}");
    assert!(m.contains("bytes) and was dropped"), "{m}");
    quiet(&mut b, 200).await;
    a.send_json(&new_message("direct", json!("1_2"), "small", Value::Null))
        .await;
    assert_eq!(recv(&mut b).await["content"]["text"], "small");
}

// ---------------------------------------------------------------- other dialects

async fn what_other_dialects_do_shows_in_this_protocol(gw: TestGateway) {
    let svc = gw.service();
    let a = principal(&gw, 1).await;
    principal(&gw, 2).await;
    let mut b = join(&gw, 2).await;
    let room = svc.direct_room(&a, UserId(2)).await.expect("room");
    // A message with an attachment (as method-args or socketio-pubsub would send).
    let cmd = SendMessage {
        uploads: vec![Upload {
            name: "cat.png".into(),
            content_type: None,
            bytes: vec![1, 2, 3, 4],
        }],
        ..SendMessage::text(RoomRef::Id(room.id()), "look")
    };
    let (_, mv) = svc.send_message(&a, cmd, None).await.expect("sent");
    let got = recv(&mut b).await;
    let att = &mv.message.attachments[0];
    let url = svc.file_url(att);
    assert_eq!(got["content"]["text"], format!("look\n{url}"));
    assert_eq!(
        got["content"]["files"],
        json!([{"id": att.id.0, "name": "cat.png", "url": url, "content_type": "image/png", "size": 4}])
    );
    // An edit has no word here.
    svc.edit_message(&a, mv.message.id, "edited", None, None)
        .await
        .expect("edited");
    quiet(&mut b, 200).await;
    // Several deletions at once: one frame per message.
    let (_, m2) = svc
        .send_message(&a, SendMessage::text(RoomRef::Id(room.id()), "two"), None)
        .await
        .expect("sent");
    recv(&mut b).await;
    svc.delete_messages(&a, &[mv.message.id, m2.message.id], None, None)
        .await
        .expect("deleted");
    for id in [mv.message.id, m2.message.id] {
        assert_eq!(
            recv(&mut b).await,
            json!({"type": "delete_message", "content": {"chat_type": "direct", "chat_id": "1_2", "message_id": id.0}})
        );
    }
    // Reading a whole chat (method-args) is a read up to its newest message.
    let (_, m3) = svc
        .send_message(&a, SendMessage::text(RoomRef::Id(room.id()), "three"), None)
        .await
        .expect("sent");
    recv(&mut b).await;
    svc.mark_read(&a, &RoomRef::Id(room.id()), None, None)
        .await
        .expect("read");
    assert_eq!(
        recv(&mut b).await,
        json!({"type": "message_read", "content": {"chat_type": "direct", "chat_id": "1_2", "user_id": 1, "message_id": m3.message.id.0}})
    );
    quiet(&mut b, 100).await;
}
dual_backend_test!(what_other_dialects_do_shows_in_this_protocol);
