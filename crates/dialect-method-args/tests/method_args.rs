//! The method-args dialect on real sockets, against a real gateway, on SQLite and on
//! PostgreSQL. Each test follows a section of `protocol-specs/method-args/README.md`:
//! who receives what ("Answer" / "Receive"), which error type each bad input gets,
//! that the connection stays usable afterwards, and that nothing was stored.

use chat_core::{MessageId, RoomId, RoomRef, UserId};
use chat_testkit::{dual_backend_test, http_request, Backend, Options, TestGateway, WsClient};
use serde_json::{json, Value};

const PATH: &str = "/ws/chat/";
/// How long "nothing else arrives" is watched for.
const QUIET_MS: u64 = 300;

// ------------------------------------------------------------------------- helpers

fn name(id: i64) -> String {
    format!("user{id}")
}

/// Provision a user and return a token for them.
async fn user(gw: &TestGateway, id: i64) -> String {
    gw.create_user(id, &name(id)).await;
    gw.token(id, &name(id))
}

/// A connection authorized with `auth`.
async fn open(gw: &TestGateway, token: &str) -> WsClient {
    let mut c = WsClient::connect(&gw.ws_url(PATH)).await;
    c.send_json(&json!({"method": "auth", "access_token": token}))
        .await;
    assert_eq!(
        c.recv_json().await,
        json!({"type": "authenticated", "data": {"event_response_key": null}})
    );
    c
}

/// Send a method and return the next frame.
async fn call(c: &mut WsClient, method: &str, args: Value) -> Value {
    c.send_json(&json!({"method": method, "args": args})).await;
    c.recv_json().await
}

fn assert_error(v: &Value, kind: &str, key: &Value) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["data"]["type"], kind, "{v}");
    assert_eq!(&v["data"]["event_response_key"], key, "{v}");
    assert!(
        v["data"]["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail is a non-empty string: {v}"
    );
}

fn assert_type<'a>(v: &'a Value, ty: &str) -> &'a Value {
    assert_eq!(v["type"], ty, "{v}");
    &v["data"]
}

fn member_ids(chat: &Value) -> Vec<i64> {
    chat["users"]
        .as_array()
        .unwrap_or_else(|| panic!("chat without users: {chat}"))
        .iter()
        .map(|u| u["pk"].as_i64().unwrap_or(-1))
        .collect()
}

/// The connection still answers: an `auth` without a token on an authorized channel.
async fn assert_usable(c: &mut WsClient) {
    assert_eq!(
        call(c, "auth", json!({"event_response_key": "still-there"})).await,
        json!({"type": "authenticated", "data": {"event_response_key": "still-there"}})
    );
}

/// Messages stored in a chat, through the REST history.
async fn stored(gw: &TestGateway, token: &str, chat: i64) -> Vec<Value> {
    let r = gw
        .http(
            "GET",
            &format!("/api/rooms/{chat}/messages"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["messages"].as_array().cloned().unwrap_or_default()
}

/// `creator` makes a group chat with `others`; everyone's `new_chat` is consumed.
async fn group(creator: &mut WsClient, others: &mut [&mut WsClient], users: &[i64]) -> i64 {
    let v = call(
        creator,
        "create_chat",
        json!({"users": users, "title": "Team"}),
    )
    .await;
    let chat = assert_type(&v, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{v}"));
    for c in others.iter_mut() {
        assert_type(&c.recv_json().await, "new_chat");
    }
    chat
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ------------------------------------------------------------------------- authorization

async fn unauthorized_channel_refuses_everything(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let mut c = WsClient::connect(&gw.ws_url(PATH)).await;
    for (method, args) in [
        ("auth", json!({"event_response_key": "k0"})),
        (
            "send_message",
            json!({"chat": 1, "text": "x", "event_response_key": "k1"}),
        ),
        (
            "create_chat",
            json!({"users": [2], "event_response_key": "k2"}),
        ),
        ("no_such_method", json!({"event_response_key": "k3"})),
        (
            "read_messages",
            json!({"chat": "not-an-id", "event_response_key": "k4"}),
        ),
    ] {
        let v = call(&mut c, method, args.clone()).await;
        assert_error(&v, "authorization_error", &args["event_response_key"]);
    }
    // The first valid token authorizes the channel, whatever the method.
    c.send_json(&json!({"method": "read_messages", "access_token": t1, "args": {"chat": 999, "event_response_key": 5}}))
        .await;
    assert_error(&c.recv_json().await, "access_error", &json!(5));
    assert_usable(&mut c).await;
    c.send_json(&json!({"method": "auth", "access_token": t1, "args": {"event_response_key": [1, {"a": null}]}}))
        .await;
    assert_eq!(
        c.recv_json().await,
        json!({"type": "authenticated", "data": {"event_response_key": [1, {"a": null}]}})
    );
    c.assert_silent(QUIET_MS).await;
}
dual_backend_test!(unauthorized_channel_refuses_everything);

async fn bad_tokens_are_refused_and_do_not_deauthorize(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let bad = [
        gw.expired_token(1),
        gw.forged_token(1),
        gw.alg_none_token(1),
        "garbage".to_string(),
    ];

    // On a fresh channel: refused, and the channel stays unauthorized.
    let mut c = WsClient::connect(&gw.ws_url(PATH)).await;
    for (i, token) in bad.iter().enumerate() {
        c.send_json(
            &json!({"method": "auth", "access_token": token, "args": {"event_response_key": i}}),
        )
        .await;
        assert_error(&c.recv_json().await, "authorization_error", &json!(i));
        let v = call(&mut c, "auth", json!({})).await;
        assert_error(&v, "authorization_error", &Value::Null);
    }

    // On an authorized channel: refused, not executed, and the channel stays authorized.
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let v = call(&mut a, "create_chat", json!({"users": [2]})).await;
    let chat = assert_type(&v, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or(0);
    assert_type(&b.recv_json().await, "new_chat");
    for token in &bad {
        a.send_json(&json!({"method": "send_message", "access_token": token, "args": {"chat": chat, "text": "no", "event_response_key": "bad"}}))
            .await;
        assert_error(&a.recv_json().await, "authorization_error", &json!("bad"));
    }
    // A valid token of another user: refused, the channel keeps its user.
    a.send_json(&json!({"method": "send_message", "access_token": t2, "args": {"chat": chat, "text": "as 2?", "event_response_key": "other"}}))
        .await;
    let v = a.recv_json().await;
    assert_error(&v, "authorization_error", &json!("other"));
    b.assert_silent(QUIET_MS).await;
    assert!(
        stored(&gw, &t1, chat).await.is_empty(),
        "nothing was stored"
    );

    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "text": "still me"}),
    )
    .await;
    assert_eq!(
        assert_type(&v, "message_created")["message"]["user"]["pk"],
        1
    );
    assert_type(&b.recv_json().await, "new_message");
    // Repeating the channel's own token in every message is fine.
    a.send_json(&json!({"method": "send_message", "access_token": t1, "args": {"chat": chat, "text": "again"}}))
        .await;
    assert_type(&a.recv_json().await, "message_created");
    assert_eq!(stored(&gw, &t1, chat).await.len(), 2);
}
dual_backend_test!(bad_tokens_are_refused_and_do_not_deauthorize);

async fn handshake_tokens(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    // Authorization: Bearer
    let mut h = WsClient::connect_with_headers(
        &gw.ws_url(PATH),
        &[("authorization", &format!("Bearer {t2}"))],
    )
    .await
    .unwrap_or_else(|s| panic!("refused with {s}"));
    // ?token=
    let mut q = WsClient::connect(&gw.ws_url(&format!("{PATH}?token={t1}"))).await;
    let v = call(
        &mut q,
        "create_chat",
        json!({"users": [2], "event_response_key": "q"}),
    )
    .await;
    assert_eq!(assert_type(&v, "chat_created")["event_response_key"], "q");
    assert_type(&h.recv_json().await, "new_chat");
    assert_usable(&mut h).await;
    // Sec-WebSocket-Protocol: Bearer, <token>
    let mut s = WsClient::connect_with_headers(
        &gw.ws_url(PATH),
        &[("sec-websocket-protocol", &format!("Bearer, {t1}"))],
    )
    .await
    .unwrap_or_else(|s| panic!("refused with {s}"));
    assert_eq!(s.subprotocol.as_deref(), Some("Bearer"));
    assert_usable(&mut s).await;
    // A refused handshake token: the socket opens, one authorization_error, unauthorized.
    let expired = gw.expired_token(1);
    let mut e = WsClient::connect(&gw.ws_url(&format!("{PATH}?token={expired}"))).await;
    assert_error(&e.recv_json().await, "authorization_error", &Value::Null);
    assert_error(
        &call(&mut e, "auth", json!({})).await,
        "authorization_error",
        &Value::Null,
    );
    e.send_json(&json!({"method": "auth", "access_token": t1}))
        .await;
    assert_type(&e.recv_json().await, "authenticated");
}
dual_backend_test!(handshake_tokens);

// ------------------------------------------------------------------------- chats

async fn create_direct_chat_and_duplicate(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let mut a1 = open(&gw, &t1).await;
    let mut a2 = open(&gw, &t1).await;
    let mut b1 = open(&gw, &t2).await;
    let mut b2 = open(&gw, &t2).await;

    let v = call(
        &mut a1,
        "create_chat",
        json!({"users": [1, 2], "event_response_key": {"id": 9}}),
    )
    .await;
    let data = assert_type(&v, "chat_created");
    assert_eq!(data["event_response_key"], json!({"id": 9}));
    let chat = &data["chat"];
    let id = chat["id"].as_i64().unwrap_or(0);
    assert_eq!(member_ids(chat), vec![1, 2]);
    assert_eq!(chat["title"], "", "no title is an empty string");
    let keys: Vec<&str> = chat
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 5, "{chat}");
    for k in ["id", "users", "title", "created_at", "updated_at"] {
        assert!(chat.get(k).is_some(), "{k} in {chat}");
    }
    let u = &chat["users"][0];
    for k in [
        "pk",
        "email",
        "first_name",
        "last_name",
        "photo",
        "color",
        "role",
    ] {
        assert!(u.get(k).is_some(), "{k} in {u}");
    }
    let created = chat["created_at"].as_str().unwrap_or("");
    assert!(
        created.ends_with('Z') && created.len() == 27,
        "DRF-style time: {created}"
    );

    assert_eq!(
        a2.recv_json().await,
        json!({"type": "chat_created", "data": {"chat": chat, "event_response_key": null}})
    );
    for b in [&mut b1, &mut b2] {
        assert_eq!(
            b.recv_json().await,
            json!({"type": "new_chat", "data": {"chat": chat}})
        );
    }
    a1.assert_silent(QUIET_MS).await;

    // A second direct chat for the pair, from either side.
    let v = call(
        &mut a1,
        "create_chat",
        json!({"users": [2], "event_response_key": "dup"}),
    )
    .await;
    assert_error(&v, "chat_duplication_error", &json!("dup"));
    assert_eq!(v["data"]["chat_id"], id);
    let v = call(&mut b1, "create_chat", json!({"users": [1]})).await;
    assert_error(&v, "chat_duplication_error", &Value::Null);
    assert_eq!(v["data"]["chat_id"], id);
    a2.assert_silent(QUIET_MS).await;
    b2.assert_silent(0).await;

    // A chat with nobody else, or with someone who does not exist.
    assert_error(
        &call(&mut a1, "create_chat", json!({"users": []})).await,
        "field_error",
        &Value::Null,
    );
    assert_error(
        &call(&mut a1, "create_chat", json!({"users": [1]})).await,
        "field_error",
        &Value::Null,
    );
    assert_error(
        &call(&mut a1, "create_chat", json!({"users": [424242]})).await,
        "field_error",
        &Value::Null,
    );
    let rooms = gw.http("GET", "/api/rooms", Some(&t1), None).await.json();
    assert_eq!(
        rooms["rooms"].as_array().map(Vec::len),
        Some(1),
        "nothing else was created"
    );
}
dual_backend_test!(create_direct_chat_and_duplicate);

async fn create_group_chat(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let mut c = open(&gw, &t3).await;
    let v = call(
        &mut a,
        "create_chat",
        json!({"users": ["2", 3], "title": "Weekend", "event_response_key": 1}),
    )
    .await;
    let data = assert_type(&v, "chat_created");
    assert_eq!(data["event_response_key"], 1);
    assert_eq!(data["chat"]["title"], "Weekend");
    assert_eq!(member_ids(&data["chat"]), vec![1, 2, 3]);
    for x in [&mut b, &mut c] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "new_chat", "data": {"chat": data["chat"]}})
        );
    }
    // Groups are not deduplicated; a null title is "".
    let v = call(
        &mut a,
        "create_chat",
        json!({"users": [2, 3], "title": null}),
    )
    .await;
    assert_eq!(assert_type(&v, "chat_created")["chat"]["title"], "");
    assert_type(&b.recv_json().await, "new_chat");
    assert_type(&c.recv_json().await, "new_chat");
}
dual_backend_test!(create_group_chat);

async fn update_chat(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let t4 = user(&gw, 4).await;
    let mut a1 = open(&gw, &t1).await;
    let mut a2 = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let mut c = open(&gw, &t3).await;
    let mut outsider = open(&gw, &t4).await;
    let chat = group(&mut a1, &mut [&mut b, &mut c], &[2, 3]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    // Any member renames; everyone gets chat_updated, the caller once.
    let v = call(
        &mut b,
        "update_chat",
        json!({"chat": chat, "title": "Renamed", "event_response_key": "r"}),
    )
    .await;
    let data = assert_type(&v, "chat_updated");
    assert_eq!(data["chat"]["title"], "Renamed");
    assert!(
        data.get("event_response_key").is_none(),
        "chat_updated has no key: {v}"
    );
    for x in [&mut a1, &mut a2, &mut c] {
        assert_eq!(x.recv_json().await, v);
    }
    b.assert_silent(QUIET_MS).await;
    // null clears the title.
    let v = call(&mut a1, "update_chat", json!({"chat": chat, "title": null})).await;
    assert_eq!(assert_type(&v, "chat_updated")["chat"]["title"], "");
    for x in [&mut a2, &mut b, &mut c] {
        assert_eq!(x.recv_json().await, v);
    }
    // Not a member, unknown chat, too long.
    let v = call(
        &mut outsider,
        "update_chat",
        json!({"chat": chat, "title": "mine", "event_response_key": 1}),
    )
    .await;
    assert_error(&v, "access_error", &json!(1));
    assert_error(
        &call(
            &mut a1,
            "update_chat",
            json!({"chat": 987654, "title": "x"}),
        )
        .await,
        "access_error",
        &Value::Null,
    );
    let long = "x".repeat(300);
    assert_error(
        &call(&mut a1, "update_chat", json!({"chat": chat, "title": long})).await,
        "field_error",
        &Value::Null,
    );
    b.assert_silent(QUIET_MS).await;
}
dual_backend_test!(update_chat);

// ------------------------------------------------------------------------- messages

async fn send_message_reaches_every_connection(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let mut a1 = open(&gw, &t1).await;
    let mut a2 = open(&gw, &t1).await;
    let mut b1 = open(&gw, &t2).await;
    let mut b2 = open(&gw, &t2).await;
    let mut c = open(&gw, &t3).await;
    let chat = group(&mut a1, &mut [&mut b1, &mut b2, &mut c], &[2, 3]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    let v = call(
        &mut a1,
        "send_message",
        json!({"chat": chat, "text": "hello", "event_response_key": "m1"}),
    )
    .await;
    let data = assert_type(&v, "message_created");
    assert_eq!(data["event_response_key"], "m1");
    let m = &data["message"];
    assert_eq!(m["chat"], chat);
    assert_eq!(m["text"], "hello");
    assert_eq!(m["user"]["pk"], 1);
    assert_eq!(m["attached_files"], json!([]));
    assert_eq!(m["is_read"], false);
    for k in [
        "id",
        "chat",
        "user",
        "attached_files",
        "text",
        "created_at",
        "updated_at",
        "is_read",
    ] {
        assert!(m.get(k).is_some(), "{k} in {m}");
    }
    assert_eq!(
        a2.recv_json().await,
        json!({"type": "message_created", "data": {"message": m, "event_response_key": null}})
    );
    for x in [&mut b1, &mut b2, &mut c] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "new_message", "data": {"message": m}})
        );
    }
    a1.assert_silent(QUIET_MS).await;
    let history = stored(&gw, &t2, chat).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], m["id"]);
}
dual_backend_test!(send_message_reaches_every_connection);

async fn files_are_stored_and_served(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let chat = group(&mut a, &mut [&mut b], &[2]).await;

    let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let text = b"hello, file\n".to_vec();
    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "files": [
            {"name": "blob.bin", "data": b64(&binary)},
            {"name": "note.txt", "data": format!("data:text/plain;base64,{}", b64(&text))},
        ], "event_response_key": "f"}),
    )
    .await;
    let m = &assert_type(&v, "message_created")["message"];
    assert_eq!(m["text"], "", "a files-only message has empty text");
    let files = m["attached_files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 2, "{m}");
    assert_eq!(files[0]["name"], "blob.bin");
    assert_eq!(files[1]["name"], "note.txt");
    for f in &files {
        for k in ["id", "name", "file", "created_at"] {
            assert!(f.get(k).is_some(), "{k} in {f}");
        }
    }
    let pushed = b.recv_json().await;
    assert_eq!(
        assert_type(&pushed, "new_message")["message"]["attached_files"],
        json!(files)
    );

    for (f, want, ty) in [
        (&files[0], &binary, None),
        (&files[1], &text, Some("text/plain")),
    ] {
        let url = f["file"].as_str().unwrap_or("");
        assert!(url.starts_with("http://"), "absolute URL: {url}");
        let r = http_request("GET", url, &[], Vec::new()).await;
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(&r.body[..], &want[..], "{url}");
        if let Some(ty) = ty {
            let got = r
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(got.starts_with(ty), "{got}");
        }
    }
}
dual_backend_test!(files_are_stored_and_served);

async fn read_messages(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let mut a = open(&gw, &t1).await;
    let mut b1 = open(&gw, &t2).await;
    let mut b2 = open(&gw, &t2).await;
    let mut c = open(&gw, &t3).await;
    let chat = group(&mut a, &mut [&mut b1, &mut b2, &mut c], &[2, 3]).await;

    // Reading an empty chat: answered, but nothing changed, so nobody else is told.
    let v = call(&mut b1, "read_messages", json!({"chat": chat})).await;
    assert_eq!(v, json!({"type": "messages_read", "data": {"chat": chat}}));
    b2.assert_silent(QUIET_MS).await;
    a.assert_silent(0).await;

    let mut ids = Vec::new();
    for text in ["one", "two"] {
        let v = call(&mut a, "send_message", json!({"chat": chat, "text": text})).await;
        ids.push(assert_type(&v, "message_created")["message"]["id"].clone());
        for x in [&mut b1, &mut b2, &mut c] {
            assert_type(&x.recv_json().await, "new_message");
        }
    }
    let v = call(
        &mut b1,
        "read_messages",
        json!({"chat": chat, "event_response_key": "r"}),
    )
    .await;
    assert_eq!(v, json!({"type": "messages_read", "data": {"chat": chat}}));
    assert_eq!(b2.recv_json().await, v, "the reader's other connection");
    let updates = json!({"type": "messages_updated", "data": {"updates": [
        {"id": ids[0], "fields": {"is_read": true}},
        {"id": ids[1], "fields": {"is_read": true}},
    ]}});
    assert_eq!(a.recv_json().await, updates);
    assert_eq!(c.recv_json().await, updates);
    b1.assert_silent(QUIET_MS).await;

    // Already read by B: C reading tells the others nothing new.
    let v = call(&mut c, "read_messages", json!({"chat": chat})).await;
    assert_type(&v, "messages_read");
    a.assert_silent(QUIET_MS).await;
    b1.assert_silent(0).await;
    // B reading again moves nothing: answered, and B's other connection is not told.
    let v = call(&mut b1, "read_messages", json!({"chat": chat})).await;
    assert_type(&v, "messages_read");
    b2.assert_silent(QUIET_MS).await;
    let history = stored(&gw, &t1, chat).await;
    assert!(history.iter().all(|m| m["is_read"] == true), "{history:?}");

    assert_error(
        &call(&mut a, "read_messages", json!({"chat": 55555})).await,
        "access_error",
        &Value::Null,
    );
}
dual_backend_test!(read_messages);

// ------------------------------------------------------------------------- membership

async fn add_to_chat(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let t4 = user(&gw, 4).await;
    let mut a1 = open(&gw, &t1).await;
    let mut a2 = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let mut c = open(&gw, &t3).await;
    let mut d = open(&gw, &t4).await;
    let chat = group(&mut a1, &mut [&mut b, &mut c], &[2, 3]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    let v = call(
        &mut a1,
        "add_to_chat",
        json!({"users": [4], "chat": chat, "event_response_key": "add"}),
    )
    .await;
    let data = assert_type(&v, "user_added_successful");
    assert_eq!(data["event_response_key"], "add");
    assert_eq!(data["user_ids"], json!([4]));
    assert_eq!(member_ids(&data["chat"]), vec![1, 2, 3, 4]);
    let chat_obj = data["chat"].clone();
    assert_eq!(
        a2.recv_json().await,
        json!({"type": "user_added_successful", "data": {"event_response_key": null, "user_ids": [4], "chat": chat_obj}})
    );
    for x in [&mut b, &mut c] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "user_added", "data": {"user_ids": [4], "chat": chat_obj}})
        );
    }
    assert_eq!(
        d.recv_json().await,
        json!({"type": "new_chat", "data": {"chat": chat_obj}})
    );
    a1.assert_silent(QUIET_MS).await;

    // The new member takes part at once.
    let v = call(
        &mut d,
        "send_message",
        json!({"chat": chat, "text": "hi all"}),
    )
    .await;
    assert_type(&v, "message_created");
    for x in [&mut a1, &mut a2, &mut b, &mut c] {
        assert_type(&x.recv_json().await, "new_message");
    }

    // Adding a member again changes nothing and tells nobody.
    let v = call(&mut b, "add_to_chat", json!({"users": [4], "chat": chat})).await;
    assert_eq!(
        assert_type(&v, "user_added_successful")["user_ids"],
        json!([])
    );
    d.assert_silent(QUIET_MS).await;
    a1.assert_silent(0).await;

    // Errors: unknown user, empty list, a direct chat, not a member.
    assert_error(
        &call(
            &mut a1,
            "add_to_chat",
            json!({"users": [777], "chat": chat}),
        )
        .await,
        "field_error",
        &Value::Null,
    );
    assert_error(
        &call(&mut a1, "add_to_chat", json!({"users": [], "chat": chat})).await,
        "field_error",
        &Value::Null,
    );
    let direct = call(&mut a1, "create_chat", json!({"users": [2]})).await;
    let direct = assert_type(&direct, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or(0);
    assert_type(&a2.recv_json().await, "chat_created");
    assert_type(&b.recv_json().await, "new_chat");
    assert_error(
        &call(
            &mut a1,
            "add_to_chat",
            json!({"users": [3], "chat": direct}),
        )
        .await,
        "access_error",
        &Value::Null,
    );
    let other = call(&mut b, "create_chat", json!({"users": [3, 4]})).await;
    let other = assert_type(&other, "chat_created")["chat"]["id"]
        .as_i64()
        .unwrap_or(0);
    assert_error(
        &call(&mut a1, "add_to_chat", json!({"users": [1], "chat": other})).await,
        "access_error",
        &Value::Null,
    );
}
dual_backend_test!(add_to_chat);

async fn remove_from_chat(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let t4 = user(&gw, 4).await;
    let mut a1 = open(&gw, &t1).await;
    let mut a2 = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let mut c1 = open(&gw, &t3).await;
    let mut c2 = open(&gw, &t3).await;
    let mut d = open(&gw, &t4).await;
    let chat = group(&mut a1, &mut [&mut b, &mut c1, &mut c2, &mut d], &[2, 3, 4]).await;
    assert_type(&a2.recv_json().await, "chat_created");

    // Only the creator (or an admin) removes others.
    let v = call(
        &mut b,
        "remove_from_chat",
        json!({"users": [3], "chat": chat, "event_response_key": "no"}),
    )
    .await;
    assert_error(&v, "access_error", &json!("no"));

    let v = call(
        &mut a1,
        "remove_from_chat",
        json!({"users": [3], "chat": chat, "event_response_key": "rm"}),
    )
    .await;
    let data = assert_type(&v, "user_removed_successful");
    assert_eq!(data["event_response_key"], "rm");
    assert_eq!(data["user_ids"], json!([3]));
    assert_eq!(member_ids(&data["chat"]), vec![1, 2, 4]);
    let chat_obj = data["chat"].clone();
    assert_eq!(
        a2.recv_json().await,
        json!({"type": "user_removed_successful", "data": {"event_response_key": null, "user_ids": [3], "chat": chat_obj}})
    );
    for x in [&mut b, &mut d] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "user_removed", "data": {"user_ids": [3], "chat": chat_obj}})
        );
    }
    for x in [&mut c1, &mut c2] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "chat_removed", "data": {"chat": chat_obj}})
        );
    }
    a1.assert_silent(QUIET_MS).await;

    // The removed user is out: no posting, no more pushes.
    assert_error(
        &call(
            &mut c1,
            "send_message",
            json!({"chat": chat, "text": "hey"}),
        )
        .await,
        "access_error",
        &Value::Null,
    );
    let v = call(
        &mut b,
        "send_message",
        json!({"chat": chat, "text": "bye C"}),
    )
    .await;
    assert_type(&v, "message_created");
    for x in [&mut a1, &mut a2, &mut d] {
        assert_type(&x.recv_json().await, "new_message");
    }
    c2.assert_silent(QUIET_MS).await;

    // Leaving: the caller is initiator and removed user at once.
    let v = call(
        &mut d,
        "remove_from_chat",
        json!({"users": [4], "chat": chat, "event_response_key": "leave"}),
    )
    .await;
    let data = assert_type(&v, "user_removed_successful");
    assert_eq!(data["event_response_key"], "leave");
    assert_eq!(data["user_ids"], json!([4]));
    let after = data["chat"].clone();
    assert_eq!(member_ids(&after), vec![1, 2]);
    assert_eq!(
        d.recv_json().await,
        json!({"type": "chat_removed", "data": {"chat": after}})
    );
    for x in [&mut a1, &mut a2, &mut b] {
        assert_eq!(
            x.recv_json().await,
            json!({"type": "user_removed", "data": {"user_ids": [4], "chat": after}})
        );
    }
    d.assert_silent(QUIET_MS).await;
    c1.assert_silent(0).await;
}
dual_backend_test!(remove_from_chat);

// ------------------------------------------------------------------------- bad input

async fn bad_input_gets_the_right_error_and_nothing_is_stored(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let mut outsider = open(&gw, &t3).await;
    let chat = group(&mut a, &mut [&mut b], &[2]).await;

    let raw: [(&str, &str, Value); 9] = [
        ("not json at all", "field_error", Value::Null),
        (
            "{\"method\": \"send_message\", ",
            "field_error",
            Value::Null,
        ),
        ("[1, 2, 3]", "field_error", Value::Null),
        ("\"send_message\"", "field_error", Value::Null),
        (
            r#"{"args": {"chat": 1, "text": "x", "event_response_key": "nomethod"}}"#,
            "field_error",
            json!("nomethod"),
        ),
        (
            r#"{"method": "delete_everything", "args": {"event_response_key": "unknown"}}"#,
            "access_error",
            json!("unknown"),
        ),
        (
            r#"{"method": "send_message", "args": {"event_response_key": "missing"}}"#,
            "field_error",
            json!("missing"),
        ),
        (
            r#"{"method": "send_message", "args": {"chat": "abc", "text": "x", "event_response_key": "typed"}}"#,
            "field_error",
            json!("typed"),
        ),
        (
            r#"{"method": "send_message", "args": [1]}"#,
            "field_error",
            Value::Null,
        ),
    ];
    for (text, kind, key) in raw {
        a.send_text(text).await;
        let v = a.recv_json().await;
        assert_error(&v, kind, &key);
        assert_usable(&mut a).await;
    }
    let detail = {
        a.send_text(r#"{"method": "send_message", "args": {"chat": [], "text": "x"}}"#)
            .await;
        a.recv_json().await["data"]["detail"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        detail.contains("args.chat"),
        "the detail names the field: {detail}"
    );

    let cases = [
        (
            json!({"chat": 31337, "text": "x", "event_response_key": "nochat"}),
            "access_error",
        ),
        (
            json!({"chat": chat, "event_response_key": "empty"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "text": "   ", "files": [], "event_response_key": "blank"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "files": [{"name": "x.bin", "data": "@@@ not base64 @@@"}], "event_response_key": "b64"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "files": [{"name": "x.bin"}], "event_response_key": "nodata"}),
            "field_error",
        ),
        (
            json!({"chat": chat, "text": "y".repeat(20_000), "event_response_key": "long"}),
            "field_error",
        ),
    ];
    for (args, kind) in cases {
        let v = call(&mut a, "send_message", args.clone()).await;
        assert_error(&v, kind, &args["event_response_key"]);
    }
    let v = call(
        &mut outsider,
        "send_message",
        json!({"chat": chat, "text": "intruder", "event_response_key": 0}),
    )
    .await;
    assert_error(&v, "access_error", &json!(0));
    a.send_binary(b"\x00\x01binary").await;
    assert_error(&a.recv_json().await, "field_error", &Value::Null);

    b.assert_silent(QUIET_MS).await;
    assert!(
        stored(&gw, &t1, chat).await.is_empty(),
        "nothing was stored"
    );
    assert_usable(&mut a).await;
    assert_usable(&mut outsider).await;
    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "text": "finally"}),
    )
    .await;
    assert_type(&v, "message_created");
    assert_type(&b.recv_json().await, "new_message");
}
dual_backend_test!(bad_input_gets_the_right_error_and_nothing_is_stored);

/// Oversize frames and files need a gateway with small limits.
async fn oversize(backend: Backend) {
    let mut opts = Options {
        backend,
        ..Options::default()
    };
    opts.limits.max_upload_frame_bytes = 16 * 1024;
    opts.limits.max_attachment_bytes = 1024;
    let Some(gw) = TestGateway::start(opts).await else {
        return;
    };
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let chat = group(&mut a, &mut [&mut b], &[2]).await;

    // A frame over the limit: dropped unread, no key can be recovered.
    let big = json!({"method": "send_message", "args": {"chat": chat, "text": "z".repeat(20 * 1024), "event_response_key": "big"}});
    a.send_json(&big).await;
    let v = a.recv_json().await;
    assert_error(&v, "field_error", &Value::Null);
    assert!(
        v["data"]["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("frame too large"),
        "{v}"
    );
    assert_usable(&mut a).await;

    // A file over the attachment limit, in a frame under the frame limit.
    let file = vec![7u8; 2000];
    let v = call(&mut a, "send_message", json!({"chat": chat, "text": "see file", "files": [{"name": "big.bin", "data": b64(&file)}], "event_response_key": "f"})).await;
    assert_error(&v, "field_error", &json!("f"));
    // One just under the limit is fine.
    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "files": [{"name": "ok.bin", "data": b64(&file[..1000])}]}),
    )
    .await;
    assert_type(&v, "message_created");
    assert_type(&b.recv_json().await, "new_message");
    b.assert_silent(QUIET_MS).await;
    assert_eq!(
        stored(&gw, &t1, chat).await.len(),
        1,
        "only the valid message was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_sqlite() {
    oversize(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_postgres() {
    oversize(Backend::Postgres).await;
}

// ------------------------------------------------------------------------- other dialects

async fn events_from_other_dialects(gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let t3 = user(&gw, 3).await;
    let service = gw.service();
    let p1 = service
        .authenticate(&t1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let p2 = service
        .authenticate(&t2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let mut c = open(&gw, &t3).await;

    // A direct chat created implicitly elsewhere (e.g. a first message on type-content).
    let room = service
        .direct_room(&p1, UserId(3))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v = a.recv_json().await;
    assert_eq!(
        assert_type(&v, "chat_created")["event_response_key"],
        Value::Null
    );
    let v = c.recv_json().await;
    assert_eq!(assert_type(&v, "new_chat")["chat"]["id"], room.id().0);
    b.assert_silent(QUIET_MS).await;

    let chat = group(&mut a, &mut [&mut b], &[2]).await;
    // A message sent elsewhere.
    let (_, m) = service
        .send_message(
            &p2,
            chat_core::SendMessage::text(RoomRef::Id(RoomId(chat)), "from afar"),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v = a.recv_json().await;
    assert_eq!(
        assert_type(&v, "new_message")["message"]["text"],
        "from afar"
    );
    let v = b.recv_json().await;
    assert_eq!(
        assert_type(&v, "message_created")["event_response_key"],
        Value::Null
    );

    // Typing and presence have no words here.
    service
        .typing(&p2, &RoomRef::Id(RoomId(chat)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.close().await;
    let mut c = open(&gw, &t3).await;
    a.assert_silent(QUIET_MS).await;
    c.assert_silent(0).await;

    // An edit and a deletion become messages_updated, for everyone.
    let (_, edited) = service
        .edit_message(&p2, m.message.id, "fixed text", None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let updated_at = {
        let v = a.recv_json().await;
        let u = &assert_type(&v, "messages_updated")["updates"][0];
        assert_eq!(u["id"], m.message.id.0);
        assert_eq!(u["fields"]["text"], "fixed text");
        u["fields"]["updated_at"].clone()
    };
    assert!(updated_at.is_string(), "{updated_at}");
    assert_eq!(edited.message.text, "fixed text");
    assert_type(&b.recv_json().await, "messages_updated");
    service
        .delete_messages(&p2, &[MessageId(m.message.id.0)], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let want = json!({"type": "messages_updated", "data": {"updates": [
        {"id": m.message.id.0, "fields": {"is_deleted": true, "text": ""}}]}});
    assert_eq!(a.recv_json().await, want);
    assert_eq!(b.recv_json().await, want);

    // A read elsewhere.
    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "text": "read me"}),
    )
    .await;
    let id = assert_type(&v, "message_created")["message"]["id"].clone();
    assert_type(&b.recv_json().await, "new_message");
    service
        .mark_read(&p2, &RoomRef::Id(RoomId(chat)), None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        b.recv_json().await,
        json!({"type": "messages_read", "data": {"chat": chat}})
    );
    assert_eq!(
        a.recv_json().await,
        json!({"type": "messages_updated", "data": {"updates": [{"id": id, "fields": {"is_read": true}}]}})
    );
}
dual_backend_test!(events_from_other_dialects);

// ------------------------------------------------------------------------- durability

async fn acknowledged_messages_survive_a_restart(mut gw: TestGateway) {
    let t1 = user(&gw, 1).await;
    let t2 = user(&gw, 2).await;
    let mut a = open(&gw, &t1).await;
    let mut b = open(&gw, &t2).await;
    let chat = group(&mut a, &mut [&mut b], &[2]).await;
    let v = call(
        &mut a,
        "send_message",
        json!({"chat": chat, "text": "durable"}),
    )
    .await;
    let id = assert_type(&v, "message_created")["message"]["id"].clone();
    drop(a);
    drop(b);
    gw.restart().await;
    let history = stored(&gw, &t2, chat).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], id);
    let mut b = open(&gw, &t2).await;
    let v = call(
        &mut b,
        "send_message",
        json!({"chat": chat, "text": "after restart"}),
    )
    .await;
    assert_type(&v, "message_created");
}
dual_backend_test!(acknowledged_messages_survive_a_restart);
